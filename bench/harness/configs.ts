/** The benchmark configurations (README, "Benchmarks"), a tiny one for smoke tests, and the scaling sweeps. */
import type { Cell } from '../../lib/backend/types';
import { GATES } from '../../lib/nn/layout';

export interface BenchConfig {
  name: string;
  cell: Cell;
  layers: number;
  hiddenSize: number;
  embeddingSize: number;
  batchSize: number;
  seqLength: number;
  vocabSize: number;
}

const lstm = (name: string, layers: number, H: number, E: number, B: number, T: number, V: number): BenchConfig => ({
  name, cell: 'lstm', layers, hiddenSize: H, embeddingSize: E, batchSize: B, seqLength: T, vocabSize: V,
});

export const CONFIGS: readonly BenchConfig[] = [
  lstm('zaremba-small', 2, 200, 200, 20, 20, 10_000),
  lstm('zaremba-medium', 2, 650, 650, 20, 35, 10_000),
  lstm('zaremba-large', 2, 1500, 1500, 20, 35, 10_000),
  { name: 'keras-gru', cell: 'gru', layers: 1, hiddenSize: 1024, embeddingSize: 256, batchSize: 64, seqLength: 30, vocabSize: 303 },
  lstm('char-lstm', 3, 512, 64, 64, 128, 65),
];

/** What `--quick` runs for every peer: small enough for CI, the same code paths as the rest. */
export const QUICK = lstm('quick', 2, 64, 64, 8, 16, 1_000);

/** Configurations a CPU-only machine runs by default (the GPU runs all of them). */
export const CPU_DEFAULT = ['zaremba-small', 'keras-gru', 'char-lstm'];

/** Training cost as the model or the batch doubles, around zaremba-small. */
export function scalingConfigs(): { axis: 'hiddenSize' | 'batchSize'; value: number; config: BenchConfig }[] {
  const base = CONFIGS[0];
  const out: { axis: 'hiddenSize' | 'batchSize'; value: number; config: BenchConfig }[] = [];
  for (const H of [200, 400, 800, 1600]) {
    out.push({ axis: 'hiddenSize', value: H, config: { ...base, name: `scale-h${H}`, hiddenSize: H, embeddingSize: H } });
  }
  for (let B = 1; B <= 128; B *= 2) out.push({ axis: 'batchSize', value: B, config: { ...base, name: `scale-b${B}`, batchSize: B } });
  return out;
}

export function findConfig(name: string): BenchConfig | undefined {
  return name === QUICK.name ? QUICK : CONFIGS.find((c) => c.name === name);
}

/**
 * Multiply-adds x 2 of one token's forward pass, the matrix products only (the usual "model
 * FLOPs"; elementwise cell math, the softmax and the embedding gather left out): per layer
 * 2 G H (I + H) (G gates, I = E for the first layer, H after), the decoder's 2 H V.
 */
export function forwardFlopsPerToken(c: BenchConfig): number {
  const G = GATES[c.cell];
  let rnn = 0;
  for (let l = 0; l < c.layers; l++) rnn += 2 * G * c.hiddenSize * ((l === 0 ? c.embeddingSize : c.hiddenSize) + c.hiddenSize);
  return rnn + 2 * c.hiddenSize * c.vocabSize;
}

/** One training token's: forward + backward (a data and a weight gradient, each a product of the forward's size) = 3 x forward. */
export const trainingFlopsPerToken = (c: BenchConfig) => 3 * forwardFlopsPerToken(c);
