/**
 * The continuous cache pointer (Grave et al. 2016, "Improving Neural Language Models with a
 * Continuous Cache"): the model's next-token distribution mixed with one built from the recent
 * past, free at training time. With h_t the last layer's output at step t and (h_i, x_{i+1}) the
 * `size` most recent pairs before it,
 *   p_cache(w) = sum_{i : x_{i+1} = w} exp(theta h_t . h_i) / sum_i exp(theta h_t . h_i)
 *   p(w)       = (1 - lambda) p_model(w) + lambda p_cache(w).
 * A word that occurred recently in a similar context becomes likelier: names, topics, a user's
 * own phrases. The text is read as one sequence (a batch of one, in windows of seqLength), as the
 * cache follows it; the products h_t . h_i run on the device (linearForward against a ring of the
 * last `size` outputs), the mixture on the host.
 */
import { tensor, type Tensor } from './backend/types';
import { invalidArgument } from './errors';
import type { Network } from './nn/network';
import { Options } from './options';

/** The cache of evaluate (and tuneCache's results). */
export interface CacheOptions {
  /** Past positions it holds (integer in [1, 100000]). Default 2000. */
  size?: number;
  /** Sharpness of its attention over them (> 0). Default 0.3. */
  theta?: number;
  /** Weight of the cache's distribution in the mixture, in [0, 1]. Default 0.1. */
  lambda?: number;
}
export type CacheSettings = Required<CacheOptions>;

export const CACHE_DEFAULTS: CacheSettings = { size: 2000, theta: 0.3, lambda: 0.1 };

export function parseCache(where: string, raw: unknown): CacheSettings {
  const o = new Options(`${where}: cache`, raw ?? {}, ['size', 'theta', 'lambda']);
  return {
    size: o.integer('size', CACHE_DEFAULTS.size, { min: 1, max: 100_000 }),
    theta: o.number('theta', CACHE_DEFAULTS.theta, { min: 0, max: 1e4, exclusiveMin: true }),
    lambda: o.number('lambda', CACHE_DEFAULTS.lambda, { min: 0, max: 1 }),
  };
}

/**
 * One pass over ids with a cache of `size`: for each target, the model's log-probability, the
 * products h_t . h_i with the cache's valid entries and the words that followed them, handed to
 * `visit` (the arrays are reused: read them in the call).
 */
export async function cachePass(
  net: Network,
  ids: Int32Array,
  size: number,
  seqLength: number,
  visit: (logProb: number, dots: Float32Array | Float64Array, words: Int32Array, n: number, target: number) => void,
  signal?: AbortSignal,
): Promise<number> {
  if (ids.length < 2) throw invalidArgument(`the cache needs a text of at least 2 tokens (got ${ids.length})`);
  const { hiddenSize: H, vocabSize: V, dtype } = net.config;
  const s = net.stream;
  // The ring of the last `size` outputs and the words after them (slot ages kept on the host).
  const ring = s.alloc(dtype, size * H);
  const scratch = s.alloc(dtype, seqLength * (size + seqLength) + seqLength);
  const pick = s.alloc('i32', seqLength);
  const words = new Int32Array(size + seqLength), dots = dtype === 'f64' ? new Float64Array(size + seqLength) : new Float32Array(size + seqLength);
  const slotWord = new Int32Array(size);
  let filled = 0, next = 0; // slots in use; the slot the next pair goes to (the oldest when full)
  let counted = 0;
  try {
    net.resetState(1);
    for (let start = 0; start < ids.length - 1; start += seqLength) {
      signal?.throwIfAborted();
      const T = Math.min(seqLength, ids.length - 1 - start);
      const inputs = ids.subarray(start, start + T), targets = ids.subarray(start + 1, start + 1 + T);
      const lp = net.logProbs(inputs, T, 1);
      net.carryState();
      const y = net.lastOutput; // [T, H]
      // The targets' log-probabilities, gathered on the device (lp as a [T * V, 1] table).
      s.write(tensor(pick, 0, [T]), Int32Array.from(targets, (w, t) => t * V + w));
      const gathered = tensor(scratch, T * (size + T), [T, 1]);
      s.embeddingForward(tensor(lp.buffer, lp.offset, [T * V, 1]), tensor(pick, 0, [T]), gathered);
      const past = tensor(scratch, 0, [T, size]), within = tensor(scratch, T * size, [T, T]);
      if (filled > 0) s.linearForward(y, tensor(ring, 0, [size, H]), null, past);
      s.linearForward(y, y, null, within);
      const [lps, pastDots, withinDots] = await Promise.all([s.read(gathered), filled > 0 ? s.read(past) : null, s.read(within)]);
      for (let t = 0; t < T; t++) {
        // The `size` most recent pairs before t: the window's first t and the ring's newest size - t.
        let n = 0;
        const fromRing = Math.min(filled, size - Math.min(t, size));
        for (let k = 0; k < fromRing; k++) {
          const slot = (next - 1 - k + size) % size;
          dots[n] = pastDots![t * size + slot];
          words[n++] = slotWord[slot];
        }
        for (let i = Math.max(0, t - size); i < t; i++) {
          dots[n] = withinDots[t * T + i];
          words[n++] = targets[i];
        }
        visit(lps[t], dots, words, n, targets[t]);
      }
      counted += T;
      // The window's pairs into the ring (the oldest out): one or two copies.
      for (let t = Math.max(0, T - size); t < T; ) {
        const run = Math.min(T - t, size - next);
        s.copy(tensor(y.buffer, y.offset + t * H, [run * H]), tensor(ring, next * H, [run * H]));
        for (let k = 0; k < run; k++) slotWord[next + k] = targets[t + k];
        next = (next + run) % size;
        filled = Math.min(size, filled + run);
        t += run;
      }
    }
    return counted;
  } finally {
    ring.free();
    scratch.free();
    pick.free();
  }
}

/** p_cache(target): the attention exp(theta h_t . h_i) of the n entries, summed over those followed by the target (n > 0). */
function cacheProbability(dots: ArrayLike<number>, words: Int32Array, n: number, target: number, theta: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, theta * dots[i]);
  let z = 0, hit = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(theta * dots[i] - max);
    z += e;
    if (words[i] === target) hit += e;
  }
  return hit / z;
}

/** The mixture's log-probability of the target (cachePass's visit arguments, one theta and lambda). */
export function mixedLogProb(logProb: number, dots: ArrayLike<number>, words: Int32Array, n: number, target: number, theta: number, lambda: number): number {
  if (n === 0 || lambda === 0) return logProb;
  return Math.log((1 - lambda) * Math.exp(logProb) + lambda * cacheProbability(dots, words, n, target, theta));
}

/** evaluate with a cache: the mean negative log-likelihood of the mixture over every target. */
export async function evaluateWithCache(net: Network, ids: Int32Array, seqLength: number, cache: CacheSettings, signal?: AbortSignal): Promise<{ loss: number; perplexity: number; tokens: number }> {
  let nll = 0;
  const tokens = await cachePass(net, ids, cache.size, seqLength, (lp, dots, words, n, target) => {
    nll -= mixedLogProb(lp, dots, words, n, target, cache.theta, cache.lambda);
  }, signal);
  const loss = nll / tokens;
  return { loss, perplexity: Math.exp(loss), tokens };
}

/** What tuneCache found: the best theta and lambda on the text, its perplexity with them and without a cache. */
export interface CacheTuning extends CacheSettings {
  perplexity: number;
  baseline: number;
}

/** Searches theta x lambda on one pass over the text (the products do not depend on them). */
export async function tuneCacheOn(net: Network, ids: Int32Array, seqLength: number, size: number, thetas: number[], lambdas: number[], signal?: AbortSignal): Promise<CacheTuning> {
  const nll = new Float64Array(thetas.length * lambdas.length);
  let base = 0;
  const hits = new Float64Array(thetas.length);
  const tokens = await cachePass(net, ids, size, seqLength, (lp, dots, words, n, target) => {
    base -= lp;
    const p = Math.exp(lp);
    // p_cache(target) at each theta; with an empty cache the model's own, so that the mixture is p (as mixedLogProb).
    for (let a = 0; a < thetas.length; a++) hits[a] = n > 0 ? cacheProbability(dots, words, n, target, thetas[a]) : p;
    for (let a = 0; a < thetas.length; a++)
      for (let b = 0; b < lambdas.length; b++) nll[a * lambdas.length + b] -= Math.log((1 - lambdas[b]) * p + lambdas[b] * hits[a]);
  }, signal);
  let best = 0;
  for (let k = 1; k < nll.length; k++) if (nll[k] < nll[best]) best = k;
  return {
    size,
    theta: thetas[Math.floor(best / lambdas.length)],
    lambda: lambdas[best % lambdas.length],
    perplexity: Math.exp(nll[best] / tokens),
    baseline: Math.exp(base / tokens),
  };
}
