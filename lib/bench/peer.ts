/** What every benchmark peer implements (lib/bench/worker.ts drives one peer per process). */
import { Random } from '../util/random';
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
