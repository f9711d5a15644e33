/**
 * score: the log-probability a model gives to texts (or token ids), per input, batched like every
 * request (runtime/scheduler.ts): each input's tokens are fed and the log-probability of each
 * target gathered on the device. What is scored follows the model, as evaluate does: a tokenizer
 * model trained on sentences scores `<sos> text <eos>` (the text's tokens and `<eos>`); any other
 * model every token after the first. A session scores every token of the input after its state.
 */
import type { CacheOptions } from '../cache';
import { DEFAULTS } from '../defaults';
import { invalidArgument } from '../errors';
import type { TokenIds } from '../inputs';
import { Options, signalOf } from '../options';
import { EOS_ID, SOS_ID, UNK_ID } from '../tokenizers';
import { requestCache, type RequestCache } from './cached';
import { deferred, sentenceModel, submit, type InferenceHost } from './host';
import type { Start } from './generate';

/** Options of LanguageModel.score. */
export interface ScoreOptions {
  /** Also each scored token's log-probability (tokenLogProbs). Default false. */
  tokenLogProbs?: boolean;
  /** Cancels the call: it rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * A continuous cache over each input (lib/cache.ts; each input its own): every token scored by
   * the mixture of the model's and the cache's probabilities, as evaluate's cache. Not on a
   * session's calls (a session's cache is set when it is made). Default: none.
   */
  cache?: CacheOptions;
}

/** What score measures of one input. */
export interface Score {
  /** Sum of the scored tokens' natural-log probabilities. */
  logProb: number;
  /** Tokens scored. */
  tokens: number;
  /** exp(-logProb / tokens). */
  perplexity: number;
  /** How many of the scored tokens are `<unk>` (0 for a model of token ids). */
  unknown: number;
  /** Each scored token's log-probability, in order (with tokenLogProbs: true). */
  tokenLogProbs?: number[];
}

export const SCORE_KEYS = ['tokenLogProbs', 'signal', 'cache'];

/** One input, or many (an array whose items are texts or id arrays). */
export function scoreInputs(input: unknown): { many: boolean; items: unknown[] } {
  const many = Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string' || typeof x === 'object');
  return many ? { many, items: input as unknown[] } : { many: false, items: [input] };
}

/** The model's score of each input (a fresh start each). */
export function scoreModel(host: InferenceHost, items: unknown[], options: ScoreOptions): Promise<Score[]> {
  const o = new Options('score', options, SCORE_KEYS);
  const perToken = o.boolean('tokenLogProbs', DEFAULTS.score.tokenLogProbs);
  const signal = signalOf('score', o.raw('signal'));
  const cache = requestCache(host.network, o, 'score', undefined);
  const sentences = sentenceModel(host);
  const jobs = items.map((item, i) => {
    const what = items.length > 1 ? `score input [${i}]` : 'score input';
    const ids = host.inputs.prompt(item, what);
    if (sentences) {
      const feed = new Int32Array(ids.length + 1), targets = new Int32Array(ids.length + 1);
      feed[0] = SOS_ID;
      feed.set(ids, 1);
      targets.set(ids);
      targets[ids.length] = EOS_ID;
      return { feed, targets, pre: -1 };
    }
    if (ids.length < 2) throw invalidArgument(`${what} has ${ids.length} token${ids.length === 1 ? '' : 's'}; scoring needs at least 2 (the first is context, each later one is scored)`);
    return { feed: ids.subarray(0, ids.length - 1), targets: ids.subarray(1), pre: -1 };
  });
  const one = (j: (typeof jobs)[number]) => run(host, { init: null, feed: j.feed }, j.targets, j.pre, perToken, signal, cache);
  if (!cache) return Promise.all(jobs.map(one));
  // With a cache the inputs run one at a time anyway (inference/cached.ts): queued one after another,
  // so that one waits on the signal, not thousands.
  return (async () => {
    const out: Score[] = [];
    for (const j of jobs) out.push(await one(j));
    return out;
  })();
}

/**
 * Scores `ids` continuing from a start (a session's state): every token, the first from the start's
 * state. With `save`, the state after all of them is written there.
 */
export function scoreFrom(host: InferenceHost, start: Start, ids: Int32Array, options: ScoreOptions, where: string, keep: boolean): Promise<Score> {
  const o = new Options(where, options, [...SCORE_KEYS, 'append']);
  const perToken = o.boolean('tokenLogProbs', DEFAULTS.score.tokenLogProbs);
  const signal = signalOf(where, o.raw('signal'));
  const cache = requestCache(host.network, o, where, start.cache);
  if (ids.length === 0) throw invalidArgument(`${where}: the input has no tokens`);
  // Fed: the start's own tokens, then the input (all of it when the state is kept); scored: the input.
  const n0 = start.feed.length;
  const feed = new Int32Array(n0 + ids.length - (keep ? 0 : 1));
  feed.set(start.feed);
  feed.set(ids.subarray(0, feed.length - n0), n0);
  const targets = new Int32Array(feed.length).fill(-1);
  // targets[t] is scored after feed[t]: the input's token k comes after feed[n0 + k - 1].
  for (let k = 1; k < ids.length; k++) targets[n0 + k - 1] = ids[k];
  let pre = -1;
  if (n0 > 0) targets[n0 - 1] = ids[0];
  else pre = ids[0];
  return run(host, { ...start, feed }, targets, pre, perToken, signal, cache);
}

function run(host: InferenceHost, start: Start, targets: Int32Array, pre: number, perToken: boolean, signal?: AbortSignal, cache?: () => RequestCache): Promise<Score> {
  const d = deferred<Score>();
  const scored: number[] = [];
  if (pre >= 0) scored.push(pre);
  for (const t of targets) if (t >= 0) scored.push(t);
  // One token scored from the state itself (nothing to feed): its log-probability is read from the
  // state's next-token distribution.
  const fromState = start.feed.length === 0 && pre >= 0;
  let stateScore: number[] = [];
  submit(host, {
    feed: start.feed, init: start.init, save: start.save ?? null, targets, pre,
    then: fromState ? 'dist' : 'none', onDist: (row) => void (stateScore = [row[pre]]), signal, cache,
    resolve: (got) => {
      const lps = fromState ? stateScore : got;
      let logProb = 0;
      for (const lp of lps) logProb += lp;
      const unknown = host.tokenizer ? scored.filter((t) => t === UNK_ID).length : 0;
      const score: Score = { logProb, tokens: lps.length, perplexity: Math.exp(-logProb / lps.length), unknown };
      if (perToken) score.tokenLogProbs = lps;
      d.resolve(score);
    },
    reject: d.reject,
  });
  return d.promise;
}
