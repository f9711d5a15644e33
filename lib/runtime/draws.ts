/**
 * How a decoding row draws (Draw), and a decoding chunk's draws as a graph's (nn/graphs.ts; opt-in
 * with RNNLM_GRAPHS=1): the scheduler's n steps of B rows — decoder, draw, embedding, RNN, per
 * step — captured once per key and replayed. What a replay must not repeat is each token's seed:
 * the draws read theirs from the device (packSeeds, written before the replay); everything else a
 * step's ops take is in the key, so a chunk that differs in it is another graph.
 */

import { putInt64 } from '../util/int64';

/**
 * How a decoding row draws its next token: on the device (native sampler), or on the host from its
 * row of log-probabilities. `withRow`: the device draws, and the host reads the row too (onToken
 * gets it), so that looking at the distribution never changes what is drawn.
 */
export type Draw =
  | { device: true; temperature: number; topK: number; topP: number; seed: number; exclude: Int32Array; withRow?: boolean }
  | { device: false; pick: (logProbs: Float32Array) => number };

/** One device draw's fixed options (all but the seed). */
const optionsOf = (d: Extract<Draw, { device: true }>) => `${d.temperature},${d.topK},${d.topP},${d.exclude.join(' ')}`;

/**
 * The key of n steps of these draws (draws[j][b]) from state set `parity`, or null when they cannot
 * be a graph: a row draws on the host, reads its row (withRow: a read between steps), or changes
 * options after its first token (a request's first draw may exclude more; later ones are alike).
 */
export function chunkKey(draws: (Draw | undefined)[][], B: number, parity: number): string | null {
  const rows: string[] = [];
  for (let b = 0; b < B; b++) {
    const own = draws.map((ds) => ds[b]);
    if (!own.every((d): d is Extract<Draw, { device: true }> => d?.device === true && !d.withRow)) return null;
    const later = new Set(own.slice(1).map(optionsOf));
    if (later.size > 1) return null;
    rows.push(`${optionsOf(own[0])}/${[...later][0] ?? ''}`);
  }
  return `${draws.length}x${B}@${parity}|${rows.join('|')}`;
}

/**
 * The runs of consecutive rows [start, end) of one step that draw on the device alike (all but the
 * seed): each run is one sample op, its rows' seeds read from the device (packSeeds), so that 64
 * rows that draw alike cost one launch, not 64.
 */
export function sampleRuns(draws: (Draw | undefined)[]): { start: number; end: number; draw: Extract<Draw, { device: true }> }[] {
  const runs: { start: number; end: number; draw: Extract<Draw, { device: true }> }[] = [];
  draws.forEach((d, b) => {
    if (!d?.device) return;
    const last = runs[runs.length - 1];
    if (last && last.end === b && optionsOf(last.draw) === optionsOf(d)) last.end = b + 1;
    else runs.push({ start: b, end: b + 1, draw: d });
  });
  return runs;
}

/**
 * A step's draws padded to B rows: a bucket's idle rows (rows.ts bucketOf) draw as the last row,
 * with seed 0 and no row read, when every row draws on the device (they are then in its sample
 * run and in the chunk's key); else they draw nothing.
 */
export function padIdle(draws: (Draw | undefined)[], B: number): void {
  const last = draws[draws.length - 1];
  const idle = last?.device && draws.every((d) => d?.device) ? { ...last, seed: 0, withRow: false } : undefined;
  while (draws.length < B) draws.push(idle);
}

/** Every draw's seed, [n * B] pairs of 32-bit halves, in draw order (step j, row b at j * B + b). */
export function packSeeds(draws: (Draw | undefined)[][]): Int32Array {
  const out = new Int32Array(2 * draws.length * (draws[0]?.length ?? 0));
  let i = 0;
  for (const ds of draws) {
    for (const d of ds) {
      putInt64(out, i, d?.device ? d.seed : 0);
      i += 2;
    }
  }
  return out;
}
