// Its own file, free of vitest: gpu/parity.ts imports it outside the test runner.
import type { Random } from '../lib/util/random';

/**
 * Random ids of a padded time-major batch: position t * B + b holds an id in [1, V) while
 * t < lengths[b] (inputs, then targets, drawn in that order per position), 0 (padding) after.
 */
export function randomIds(rng: Random, T: number, B: number, V: number, lengths: ArrayLike<number>): { inputs: Int32Array; targets: Int32Array } {
  const inputs = new Int32Array(T * B), targets = new Int32Array(T * B);
  for (let t = 0; t < T; t++)
    for (let b = 0; b < B; b++) {
      const valid = t < lengths[b];
      inputs[t * B + b] = valid ? 1 + Math.floor(rng.next() * (V - 1)) : 0;
      targets[t * B + b] = valid ? 1 + Math.floor(rng.next() * (V - 1)) : 0;
    }
  return { inputs, targets };
}
