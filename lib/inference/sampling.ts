/**
 * Choosing the next token from a row of log-probabilities (one small copy per token
 * from the device): greedy, temperature, top-k and nucleus (top-p) sampling, and the
 * k most likely tokens. Token ids in `exclude` (e.g. <pad>, <sos>) are never chosen.
 */
import { invalidArgument } from '../errors';
import type { Random } from '../util/random';

/** Every token a call allows has probability 0 (a cache with lambda 1 gives probability to its words only). */
export function nothingToDraw(): Error {
  return invalidArgument('no token can be drawn: every token this call allows (not banned, matching the prefix) has probability 0; with a cache of lambda 1 only the words in the cache have any');
}

export interface SamplingOptions {
  /** 0 = greedy (argmax); 1 = the model's distribution; < 1 sharper, > 1 flatter. */
  temperature: number;
  /** Sample only among the k most likely tokens (0 = no limit). */
  topK: number;
  /** Sample only among the smallest set of tokens whose probability reaches topP (1 = no limit). */
  topP: number;
}

/** The k most likely tokens, most likely first. */
export function topTokens(logProbs: ArrayLike<number>, k: number, exclude: ReadonlySet<number>): { id: number; logProb: number }[] {
  const best: { id: number; logProb: number }[] = [];
  for (let i = 0; i < logProbs.length; i++) {
    const lp = logProbs[i];
    if (lp === -Infinity || exclude.has(i)) continue;
    if (best.length === k && lp <= best[k - 1].logProb) continue;
    let j = best.length < k ? best.length : k - 1;
    best[j] = { id: i, logProb: lp };
    while (j > 0 && best[j].logProb > best[j - 1].logProb) {
      [best[j], best[j - 1]] = [best[j - 1], best[j]];
      j--;
    }
  }
  return best;
}

export function sampleToken(
  logProbs: ArrayLike<number>,
  opts: SamplingOptions,
  rng: Random,
  exclude: ReadonlySet<number>,
): number {
  if (opts.temperature === 0) {
    const best = topTokens(logProbs, 1, exclude);
    if (best.length === 0) throw nothingToDraw();
    return best[0].id;
  }
  const V = logProbs.length;
  if (opts.topK === 0 && opts.topP >= 1) {
    // The common case in one pass over typed memory (this runs once per generated token).
    const skip = new Uint8Array(V);
    for (const i of exclude) if (i < V) skip[i] = 1;
    let mx = -Infinity;
    for (let i = 0; i < V; i++) if (logProbs[i] > mx && !skip[i]) mx = logProbs[i];
    if (mx === -Infinity) throw nothingToDraw();
    const p = new Float64Array(V);
    let total = 0;
    const inv = 1 / opts.temperature;
    for (let i = 0; i < V; i++) if (!skip[i]) total += p[i] = Math.exp((logProbs[i] - mx) * inv);
    let u = rng.next() * total, last = -1;
    for (let i = 0; i < V; i++) {
      if (p[i] === 0) continue;
      last = i;
      u -= p[i];
      if (u <= 0) return i;
    }
    return last;
  }
  let ids: number[] = [];
  for (let i = 0; i < V; i++) if (!exclude.has(i)) ids.push(i);
  ids.sort((a, b) => logProbs[b] - logProbs[a]);
  if (ids.length === 0 || logProbs[ids[0]] === -Infinity) throw nothingToDraw();
  if (opts.topK > 0) ids = ids.slice(0, opts.topK);
  const mx = logProbs[ids[0]];
  const p = ids.map((i) => Math.exp((logProbs[i] - mx) / opts.temperature));
  let total = p.reduce((a, b) => a + b, 0);
  if (opts.topP < 1) {
    // ids are sorted by probability: keep the shortest prefix reaching topP of the mass.
    let acc = 0, keep = 0;
    while (keep < p.length && acc < opts.topP * total) acc += p[keep++];
    ids = ids.slice(0, keep);
    p.length = keep;
    total = acc;
  }
  let u = rng.next() * total;
  for (let j = 0; j < ids.length; j++) {
    u -= p[j];
    if (u <= 0) return ids[j];
  }
  return ids[ids.length - 1];
}
