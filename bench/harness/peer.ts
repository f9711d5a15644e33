/** What every benchmark peer implements (bench/harness/worker.ts drives one peer per process). */
import { Random } from '../../lib/util/random';
import type { BenchConfig } from './configs';

export interface Peer {
  /** Library versions and settings worth reporting (backend, threads, SIMD). */
  readonly info: Record<string, string | number | boolean>;
  /** Notes printed with the figures (e.g. a different formulation the peer needs). */
  readonly notes: string[];
  /**
   * Trains `steps` windows of batchSize x seqLength (Adam, global-norm clipping, state carried).
   * `steady`: device allocations counted over steps after the first ones, where the peer can tell.
   */
  train(steps: number): Promise<{ loss: number; steady?: { allocations: number; steps: number } }>;
  /** Samples about `tokens` tokens one by one (batch 1, temperature 1); returns how many it made. */
  generate(tokens: number): Promise<number>;
  /** Bytes of device memory at the peak, where the peer can tell. */
  peakDeviceBytes?(): number | undefined;
  dispose(): void;
}

/** Thrown by a peer's factory when it cannot run here; the reason is reported in the results. */
export class PeerUnavailable extends Error {}

export type PeerFactory = (config: BenchConfig, seed: number) => Promise<Peer>;

/** Token ids for the benchmarks: uniform over the vocabulary but for the 4 special ids. */
export function syntheticTokens(n: number, vocabSize: number, seed: number): Int32Array {
  const rng = new Random(seed);
  return Int32Array.from({ length: n }, () => 4 + Math.floor(rng.next() * Math.max(1, vocabSize - 4)));
}

/**
 * Why a peer's first training loss cannot be right, or undefined when it can. A fresh model on
 * syntheticTokens (uniform over vocabSize - 4 ids) starts near ln(vocabSize - 4) nats: a first
 * loss far from that (NaN, a denormal, a sum instead of a mean) means the peer trains something
 * other than the model, and its speed is no figure for it.
 */
export function implausibleFirstLoss(loss: number, vocabSize: number): string | undefined {
  const floor = Math.log(Math.max(2, vocabSize - 4));
  if (Number.isFinite(loss) && loss > 0.5 * floor && loss < 2 * Math.log(vocabSize)) return undefined;
  return `its first training step's loss is ${loss}, where a fresh model on uniform tokens starts near ln(${vocabSize - 4}) = ${floor.toFixed(2)}: it does not compute the model, so its training figure is not reported`;
}
