/**
 * The continuous cache pointer (Grave et al. 2016, "Improving Neural Language Models with a
 * Continuous Cache"): the model's next-token distribution mixed with one built from the recent
 * past, free at training time. With h_t the last layer's output at step t and (h_i, x_{i+1}) the
 * `size` most recent pairs before it,
 *   p_cache(w) = sum_{i : x_{i+1} = w} exp(theta h_t . h_i) / sum_i exp(theta h_t . h_i)
 *   p(w)       = (1 - lambda) p_model(w) + lambda p_cache(w).
 * A word that occurred recently in a similar context becomes likelier: names, topics, a user's
 * own phrases. The cache follows one sequence (a batch of one, fed in windows): CacheMemory holds
 * its pairs, a ring of the last `size` outputs on the device; the products h_t . h_i run on the
 * device (linearForward against the ring, and a window against itself), the mixture on the host.
 */
import { tensor, type DeviceBuffer, type FloatArray, type Stream, type Tensor } from './backend/types';
import { invalidArgument } from './errors';
import type { Network } from './nn/network';
import { Scratch } from './nn/scratch';
import { Options, signalOf } from './options';
import { DEFAULTS } from './defaults';

/** The cache of evaluate, score, predictNext, generate and sessions (and tuneCache's results). */
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

/** Also takes tuneCache's result as it is (its perplexity and baseline are ignored). */
export function parseCache(where: string, raw: unknown): CacheSettings {
  const o = new Options(`${where}: cache`, raw ?? {}, ['size', 'theta', 'lambda', 'perplexity', 'baseline']);
  return {
    size: o.integer('size', CACHE_DEFAULTS.size, { min: 1, max: 100_000 }),
    theta: o.number('theta', CACHE_DEFAULTS.theta, { min: 0, max: 1e4, exclusiveMin: true }),
    lambda: o.number('lambda', CACHE_DEFAULTS.lambda, { min: 0, max: 1 }),
  };
}

/** The longest window a pass feeds at once (evaluate's seqLength above it changes nothing). */
const MAX_WINDOW = 128;

/** A position's model distribution (or one log-probability) and the cache entries it attends to. */
export interface CacheView {
  /** The n entries' products h_t . h_i and the words that followed them (reused arrays: read them in the call). */
  dots: Float64Array;
  words: Int32Array;
  n: number;
}

/**
 * The recent past of one sequence: its last `size` outputs h_i (a ring on the device) and the
 * word after each. `pending`: the sequence's last output is not in the ring yet, as the word after
 * it is not known (a session between calls); it goes in with that word. A call that must leave
 * the memory as it found it (a session's predictNext) runs between begin() and rollback(): the
 * slots it overwrites are backed up first, on the device.
 */
export class CacheMemory {
  readonly size: number;
  pending = false;
  /** Scratch of the passes: products, gathered log-probabilities, a distribution. */
  readonly scratch: Scratch;
  private readonly ring: DeviceBuffer;
  private readonly words: Int32Array;
  private filled = 0;
  /** The slot the next pair goes to (the oldest when full). */
  private next = 0;
  private undo?: { filled: number; next: number; pending: boolean; words: Int32Array; backed: number };
  private backup?: DeviceBuffer;
  private freed = false;
  /** Host arrays of entries (CacheView's). */
  readonly view: CacheView;

  constructor(
    private readonly stream: Stream,
    private readonly dtype: 'f32' | 'f64',
    private readonly hiddenSize: number,
    readonly settings: CacheSettings,
  ) {
    this.size = settings.size;
    this.ring = stream.alloc(dtype, this.size * hiddenSize);
    // Zeros: the products with slots not yet filled are computed (and never used).
    stream.fill(tensor(this.ring, 0, [this.ring.length]), 0);
    this.words = new Int32Array(this.size);
    this.scratch = new Scratch(stream, dtype);
    this.view = { dots: new Float64Array(this.size), words: new Int32Array(this.size), n: 0 };
  }

  get released(): boolean {
    return this.freed;
  }

  /** Queues y [T, H] . h_i for every slot into out [T, size]; false (nothing queued) while the ring is empty. */
  dots(y: Tensor, out: Tensor): boolean {
    if (this.filled === 0) return false;
    this.stream.linearForward(y, tensor(this.ring, 0, [this.size, this.hiddenSize]), null, out);
    return true;
  }

  /**
   * Into `view`: the entries position t of a window of T attends to, the `size` most recent pairs
   * before it — the ring's newest size - t (products in past [T, size]) and the window's first t
   * (products in within [T, T], the word after window position i from after(i)).
   */
  entries(t: number, T: number, past: ArrayLike<number> | null, within: ArrayLike<number> | null, after: (i: number) => number): CacheView {
    const { dots, words } = this.view;
    let n = 0;
    const fromRing = Math.min(this.filled, this.size - Math.min(t, this.size));
    for (let k = 0; k < fromRing; k++) {
      const slot = (this.next - 1 - k + this.size) % this.size;
      dots[n] = past![t * this.size + slot];
      words[n++] = this.words[slot];
    }
    for (let i = Math.max(0, t - this.size); i < t; i++) {
      dots[n] = within![t * T + i];
      words[n++] = after(i);
    }
    this.view.n = n;
    return this.view;
  }

  /** Rows [0, n) of y ([n, H]) with the words after them into the ring, the oldest out (only the last `size` stay). */
  push(y: Tensor, n: number, after: (r: number) => number): void {
    const H = this.hiddenSize;
    for (let r = Math.max(0, n - this.size); r < n; ) {
      const run = Math.min(n - r, this.size - this.next);
      this.keep(run);
      this.stream.copy(tensor(y.buffer, y.offset + r * H, [run * H]), tensor(this.ring, this.next * H, [run * H]));
      for (let k = 0; k < run; k++) this.words[this.next + k] = after(r + k);
      this.next = (this.next + run) % this.size;
      this.filled = Math.min(this.size, this.filled + run);
      r += run;
    }
  }

  /** From here on, what is overwritten can be restored (rollback) until commit. */
  begin(): void {
    this.undo = { filled: this.filled, next: this.next, pending: this.pending, words: this.words.slice(), backed: 0 };
  }
  commit(): void {
    this.undo = undefined;
  }
  rollback(): void {
    const u = this.undo;
    if (!u) return;
    this.undo = undefined;
    // The slots written since begin run from u.next, in order: u.backed of them were backed up.
    this.copySlots(this.backup!, this.ring, u.next, u.backed);
    this.filled = u.filled;
    this.next = u.next;
    this.pending = u.pending;
    this.words.set(u.words);
  }

  /** The next `run` slots are about to be overwritten: back up those not yet backed up since begin. */
  private keep(run: number): void {
    const u = this.undo;
    if (!u || u.backed >= this.size) return;
    const n = Math.min(run, this.size - u.backed);
    this.backup ??= this.stream.alloc(this.dtype, this.size * this.hiddenSize);
    this.copySlots(this.ring, this.backup, this.next, n);
    u.backed += n;
  }

  /** Copies n slots from `first` on (wrapping) between two [size, H] buffers. */
  private copySlots(from: DeviceBuffer, to: DeviceBuffer, first: number, n: number): void {
    const H = this.hiddenSize;
    for (let done = 0; done < n; ) {
      const at = (first + done) % this.size, run = Math.min(n - done, this.size - at);
      this.stream.copy(tensor(from, at * H, [run * H]), tensor(to, at * H, [run * H]));
      done += run;
    }
  }

  /** Empty again (a session's reset). */
  clear(): void {
    this.filled = 0;
    this.next = 0;
    this.pending = false;
  }

  /** A copy with its own ring (a session's fork). */
  clone(): CacheMemory {
    const c = new CacheMemory(this.stream, this.dtype, this.hiddenSize, this.settings);
    if (this.filled > 0) this.stream.copy(tensor(this.ring, 0, [this.ring.length]), tensor(c.ring, 0, [c.ring.length]));
    c.words.set(this.words);
    c.filled = this.filled;
    c.next = this.next;
    c.pending = this.pending;
    return c;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.ring.free();
    this.backup?.free();
    this.scratch.free();
  }
}

/** The last layer's h of the network's state of one sequence ([1, H]): the output of the last token fed. */
export function stateTop(net: Network): Tensor {
  const { hx } = net.state(1);
  const { layers: L, hiddenSize: H } = net.config;
  return tensor(hx.buffer, hx.offset + (L - 1) * H, [1, H]);
}

/** A position's model distribution with the entries it attends to (the view: until the memory's next call). */
export interface CachedRow {
  row: FloatArray;
  view: CacheView;
}

/**
 * Feeds tokens at batch 1 through the network from its state of one sequence (net.state(1)), in
 * windows of seqLength, with the sequence's cache memory: the word after position i is feed[i + 1],
 * after the last one `last` (-1: not known yet; the memory keeps that position pending). For each i
 * with targets[i] >= 0, visit gets the model's log-probability of targets[i] and the entries before
 * position i. With wantLast, resolves with the last position's distribution and entries.
 */
export async function cacheFeed(
  net: Network,
  mem: CacheMemory,
  feed: Int32Array,
  last: number,
  targets: Int32Array | null,
  seqLength: number,
  visit: (logProb: number, view: CacheView, target: number) => void,
  wantLast: boolean,
  signal?: AbortSignal,
): Promise<CachedRow | null> {
  const { vocabSize: V } = net.config;
  const s = net.stream, size = mem.size, sc = mem.scratch;
  // Longer windows buy nothing but [T, T] and [T, size] products.
  seqLength = Math.min(seqLength, MAX_WINDOW);
  const after = (i: number) => (i + 1 < feed.length ? feed[i + 1] : last);
  if (mem.pending && feed.length > 0) {
    mem.push(stateTop(net), 1, () => feed[0]);
    mem.pending = false;
  }
  let result: CachedRow | null = null;
  for (let start = 0; start < feed.length; start += seqLength) {
    signal?.throwIfAborted();
    const T = Math.min(seqLength, feed.length - start);
    const lp = net.logProbs(feed.subarray(start, start + T), T, 1);
    net.carryState();
    const y = net.lastOutput; // [T, H]
    const scored: number[] = [];
    if (targets) for (let t = 0; t < T; t++) if (targets[start + t] >= 0) scored.push(t);
    // The targets' log-probabilities, gathered on the device (lp as a [T * V, 1] table).
    let gathered: Tensor | null = null;
    if (scored.length > 0) {
      const pick = sc.i32('pick', scored.length);
      s.write(pick, Int32Array.from(scored, (t) => t * V + targets![start + t]));
      gathered = sc.f('gathered', scored.length, [scored.length, 1]);
      s.embeddingForward(tensor(lp.buffer, lp.offset, [T * V, 1]), pick, gathered);
    }
    const past = sc.f('past', T * size, [T, size]), within = sc.f('within', T * T, [T, T]);
    const hasPast = mem.dots(y, past);
    s.linearForward(y, y, null, within);
    const wanted = wantLast && start + T === feed.length;
    const [lps, pastDots, withinDots, row] = await Promise.all([
      gathered ? s.read(gathered) : null,
      hasPast ? s.read(past) : null,
      s.read(within),
      wanted ? s.read(tensor(lp.buffer, lp.offset + (T - 1) * V, [V])) : null,
    ]);
    const afterIn = (i: number) => after(start + i);
    scored.forEach((t, k) => visit(lps![k], mem.entries(t, T, pastDots, withinDots, afterIn), targets![start + t]));
    if (row) result = { row: row as FloatArray, view: mem.entries(T - 1, T, pastDots, withinDots, afterIn) };
    // The window's pairs into the ring; the last position's waits while the word after it is unknown.
    const known = after(start + T - 1) >= 0 ? T : T - 1;
    mem.push(y, known, afterIn);
    mem.pending = known < T;
  }
  return result;
}

/** The distribution after the network's state of one sequence (its top output, nothing fed) and the entries it attends to. */
export async function cacheRow(net: Network, mem: CacheMemory): Promise<CachedRow> {
  const V = net.config.vocabSize, s = net.stream;
  const h = stateTop(net);
  const lp = mem.scratch.f('row', V, [1, V]);
  net.decoder.logProbs(h, lp);
  const past = mem.scratch.f('past', mem.size, [1, mem.size]);
  const hasPast = mem.dots(h, past);
  const [row, dots] = await Promise.all([s.read(lp), hasPast ? s.read(past) : null]);
  return { row: row as FloatArray, view: mem.entries(0, 1, dots, null, () => -1) };
}

/** p_cache(target): the attention exp(theta h_t . h_i) of the entries, summed over those followed by the target (n > 0). */
function cacheProbability(view: CacheView, target: number, theta: number): number {
  const { dots, words, n } = view;
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

/** The mixture's log-probability of the target, from the model's and the entries (an empty cache: the model's). */
export function mixedLogProb(logProb: number, view: CacheView, target: number, theta: number, lambda: number): number {
  if (view.n === 0 || lambda === 0) return logProb;
  return Math.log((1 - lambda) * Math.exp(logProb) + lambda * cacheProbability(view, target, theta));
}

/** A whole distribution mixed: log((1 - lambda) p_model(w) + lambda p_cache(w)) for every w. */
export function mixRow(row: ArrayLike<number>, view: CacheView, theta: number, lambda: number): Float32Array {
  const out = Float32Array.from(row);
  const { dots, words, n } = view;
  if (n === 0 || lambda === 0) return out;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, theta * dots[i]);
  const mass = new Map<number, number>();
  let z = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(theta * dots[i] - max);
    z += e;
    mass.set(words[i], (mass.get(words[i]) ?? 0) + e);
  }
  // Words outside the cache keep (1 - lambda) of their probability.
  const shift = Math.log1p(-lambda);
  for (let w = 0; w < out.length; w++) out[w] = row[w] + shift;
  for (const [w, e] of mass) out[w] = Math.log((1 - lambda) * Math.exp(row[w]) + (lambda * e) / z);
  return out;
}

/** One pass over ids with a fresh cache of `size` (evaluate, tuneCache): every target's log-probability and entries, to `visit`. */
export async function cachePass(
  net: Network,
  ids: Int32Array,
  size: number,
  seqLength: number,
  visit: (logProb: number, view: CacheView, target: number) => void,
  signal?: AbortSignal,
): Promise<number> {
  if (ids.length < 2) throw invalidArgument(`the cache needs a text of at least 2 tokens (got ${ids.length})`);
  const mem = new CacheMemory(net.stream, net.config.dtype, net.config.hiddenSize, { ...CACHE_DEFAULTS, size });
  try {
    net.resetState(1);
    const N = ids.length - 1;
    await cacheFeed(net, mem, ids.subarray(0, N), ids[N], ids.subarray(1), seqLength, visit, false, signal);
    return N;
  } finally {
    mem.free();
  }
}

/** evaluate with a cache: the mean negative log-likelihood of the mixture over every target. */
export async function evaluateWithCache(net: Network, ids: Int32Array, seqLength: number, cache: CacheSettings, signal?: AbortSignal): Promise<{ loss: number; perplexity: number; tokens: number }> {
  let nll = 0;
  const tokens = await cachePass(net, ids, cache.size, seqLength, (lp, view, target) => {
    nll -= mixedLogProb(lp, view, target, cache.theta, cache.lambda);
  }, signal);
  const loss = nll / tokens;
  return { loss, perplexity: Math.exp(loss), tokens };
}

/** What tuneCache found: the best theta and lambda on the text, its perplexity with them and without a cache. */
export interface CacheTuning extends CacheSettings {
  perplexity: number;
  baseline: number;
}

/** Options of LanguageModel.tuneCache. */
export interface TuneCacheOptions {
  /** The cache's size (as evaluate's cache.size). Default 2000. */
  size?: number;
  /** The thetas tried. Default [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3], and larger ones when 3 is the best (up to 2 more passes). */
  thetas?: number[];
  /** The lambdas tried. Default [0.05, 0.1, 0.15, 0.2, 0.25, 0.3]. */
  lambdas?: number[];
  /** Time steps per window (as evaluate's). Default 35. */
  seqLength?: number;
  signal?: AbortSignal;
}

/** tuneCache's options, checked; `extend` when the thetas are the default grid's. */
export interface TuneSettings {
  size: number;
  thetas: number[];
  lambdas: number[];
  seqLength: number;
  extend: boolean;
  signal?: AbortSignal;
}

export function parseTuneCache(options: TuneCacheOptions): TuneSettings {
  const o = new Options('tuneCache', options, ['size', 'thetas', 'lambdas', 'seqLength', 'signal']);
  const grid = (key: 'thetas' | 'lambdas', def: number[], max: number) => {
    const v = o.raw(key) ?? def;
    if (!Array.isArray(v) || v.length === 0 || v.length > 100 || !v.every((x) => typeof x === 'number' && x > 0 && x <= max)) {
      throw invalidArgument(`tuneCache: ${key} must be 1 to 100 numbers in (0, ${max}] (got ${JSON.stringify(v)})`);
    }
    return v as number[];
  };
  return {
    size: parseCache('tuneCache', o.has('size') ? { size: o.raw('size') } : {}).size,
    thetas: grid('thetas', [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3], 1e4),
    lambdas: grid('lambdas', [0.05, 0.1, 0.15, 0.2, 0.25, 0.3], 1),
    seqLength: o.integer('seqLength', DEFAULTS.evaluate.seqLength, { min: 1, max: 1 << 16 }),
    extend: !o.has('thetas'),
    signal: signalOf('tuneCache', o.raw('signal')),
  };
}

/**
 * Searches theta x lambda on the text, the grid in one pass (the products do not depend on them).
 * With `extend`, a best theta at the grid's largest may be beaten by larger ones (sharper
 * attention: character models, long texts): up to two more passes try 1.5, 2 and 3 times it.
 */
export async function tuneCacheOn(net: Network, ids: Int32Array, t: TuneSettings): Promise<CacheTuning> {
  const { seqLength, size, thetas, lambdas, extend, signal } = t;
  let best = await gridPass(net, ids, seqLength, size, thetas, lambdas, signal);
  for (let k = 0, top = Math.max(...thetas); extend && k < 2 && best.theta === top; k++) {
    const wider = [1.5, 2, 3].map((f) => f * top);
    const next = await gridPass(net, ids, seqLength, size, wider, lambdas, signal);
    if (next.perplexity >= best.perplexity) break;
    best = next;
    top = wider[wider.length - 1];
  }
  return best;
}

async function gridPass(net: Network, ids: Int32Array, seqLength: number, size: number, thetas: number[], lambdas: number[], signal?: AbortSignal): Promise<CacheTuning> {
  const nll = new Float64Array(thetas.length * lambdas.length);
  let base = 0;
  const hits = new Float64Array(thetas.length);
  const tokens = await cachePass(net, ids, size, seqLength, (lp, view, target) => {
    base -= lp;
    const p = Math.exp(lp);
    // p_cache(target) at each theta; with an empty cache the model's own, so that the mixture is p (as mixedLogProb).
    for (let a = 0; a < thetas.length; a++) hits[a] = view.n > 0 ? cacheProbability(view, target, thetas[a]) : p;
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
