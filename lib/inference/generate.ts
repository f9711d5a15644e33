/**
 * Next-token prediction and sampling, as requests to the model's batching scheduler
 * (runtime/scheduler.ts): a request feeds its context, then reads the next token's distribution
 * (predictNext) or draws tokens one per step (generate, generateStream) with its own options and
 * seed. Sessions (session.ts) run the same requests from their saved state.
 */
import type { CacheMemory, CacheOptions } from '../cache';
import { DEFAULTS } from '../defaults';
import { invalidArgument } from '../errors';
import type { TokenIds } from '../inputs';
import { Options, signalOf } from '../options';
import type { Draw } from '../runtime/scheduler';
import type { StateRef } from '../runtime/rows';
import { SOS_ID } from '../tokenizers';
import { Random } from '../util/random';
import { CONTROL_KEYS, Controls, specials, vocabulary, type TokenControls } from './controls';
import { requestCache } from './cached';
import { deferred, submit, textOf, type InferenceHost } from './host';
import { sampleToken, topTokens } from './sampling';
import { TokenText, type GeneratedToken, type TopToken } from './text';

export type { GeneratedToken, TopToken } from './text';

/** One of predictNext's tokens. */
export interface Prediction {
  token: string;
  id: number;
  probability: number;
}

/** Options of LanguageModel.predictNext. */
export interface PredictOptions extends TokenControls {
  /** How many of the most likely tokens (integer in [1, vocabSize]). Default 5. */
  topK?: number;
  /** Cancels the call: it rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * A continuous cache over the context (lib/cache.ts): the probabilities are the mixture of the
   * model's and the cache's, which favours the context's own words. Not on a session's calls (a
   * session's cache is set when it is made). Default: none.
   */
  cache?: CacheOptions;
}

/** Options of LanguageModel.generate and generateStream. */
export interface GenerateOptions extends TokenControls {
  /**
   * Text (or token ids) to continue. Default: none — a model trained on sentences with a tokenizer
   * starts a sentence (after <sos>); any other model starts from the zero state (its first token
   * drawn from the decoder's bias alone).
   */
  prompt?: string | TokenIds;
  /** Most tokens to generate (integer >= 1). Default 100. */
  maxTokens?: number;
  /** Softmax temperature in [0, 100]: 0 is greedy, < 1 sharper, > 1 flatter. Default 1. */
  temperature?: number;
  /** Sample among the k most likely tokens; 0 for all. Default 0. */
  topK?: number;
  /** Nucleus sampling: the smallest set of tokens holding this much probability, in (0, 1]. Default 1 (all). */
  topP?: number;
  /** Seed of the sampler (integer in [0, 2^31 - 1]): the same seed draws the same tokens, batched or alone. Default: a random one. */
  seed?: number;
  /** End before the first occurrence of this string (or of any of these), which is left out. Default: none. */
  stop?: string | string[];
  /** A tokenizer model ends at a drawn `<eos>` (default true); false: it goes on through sentence ends for maxTokens. */
  stopAtEos?: boolean;
  /** Called with each token as it is produced (its text held back while it may begin a stop string). */
  onToken?: (token: GeneratedToken) => void;
  /** Cancels the call: it rejects with the signal's reason (its batch row is freed at the next step). */
  signal?: AbortSignal;
  /** Resolve with a Generation (text, ids, log-probabilities, why it ended) instead of the text. */
  details?: boolean;
  /**
   * Also give the k most likely tokens of each step (integer in [0, 20]; 0: none), as each token's
   * `top` and the Generation's `topLogProbs`: ranked by the model's log-probabilities (before
   * temperature, logitBias and prefix), without the tokens the call never draws (specials, ban).
   * The tokens drawn are the same as without it. Default 0.
   */
  topLogProbs?: number;
  /**
   * A continuous cache over the prompt and what is generated (as PredictOptions.cache): tokens are
   * drawn from the mixture, and logProbs and topLogProbs are the mixture's. Not on a session's
   * calls. Default: none.
   */
  cache?: CacheOptions;
}

/** What generate resolves with when `details: true`. */
export interface Generation {
  /** The generated text (the prompt not included), cut before a stop string. */
  text: string;
  /** Every token drawn (up to the one that completed a stop string; a final `<eos>` left out). */
  ids: number[];
  /** Each drawn token's log-probability under the model (before temperature and controls). */
  logProbs: number[];
  /** 'length': maxTokens drawn; 'eos': the model ended the sentence; 'stop': a stop string. */
  finishReason: 'length' | 'eos' | 'stop';
  /** With `topLogProbs: k`: each step's k most likely tokens, aligned with ids. */
  topLogProbs?: TopToken[][];
}

export const GENERATE_KEYS = ['prompt', 'maxTokens', 'temperature', 'topK', 'topP', 'seed', 'stop', 'stopAtEos', 'onToken', 'signal', 'details', 'topLogProbs', 'cache', ...CONTROL_KEYS];

/** A token's text as predictNext and topLogProbs show it (a model of token ids: the id). */
const tokenName = (host: InferenceHost, id: number) => (host.tokenizer ? host.tokenizer.tokenOf(id) : String(id));

/** Where a request starts: a session's state (and what is fed after it), or the start state. */
export interface Start {
  /** The state to continue; null: zeros. */
  init: StateRef | null;
  /** Tokens fed first (a sentence model's <sos> at the start, the context). */
  feed: Int32Array;
  /** Where the state after the request goes (a session that keeps what it generated). */
  save?: StateRef | null;
  /** The session's cache memory (a session made with a cache). */
  cache?: CacheMemory;
}

/** A prompt's ids after the model's start (<sos> first for a sentence model). */
export function startFeed(ids: Int32Array, sentenceStart: boolean): Int32Array {
  if (!sentenceStart) return ids;
  const out = new Int32Array(ids.length + 1);
  out[0] = SOS_ID;
  out.set(ids, 1);
  return out;
}

/** The topK most likely next tokens after a start, with their probabilities. */
export function predictNext(host: InferenceHost, start: Start, options: PredictOptions, where = 'predictNext'): Promise<Prediction[]> {
  const o = new Options(where, options, ['topK', 'signal', 'cache', ...CONTROL_KEYS]);
  const topK = o.integer('topK', DEFAULTS.predictNext.topK, { min: 1, max: host.network.config.vocabSize });
  const controls = new Controls(o, vocabulary(host));
  const signal = signalOf(where, o.raw('signal'));
  const cache = requestCache(host.network, o, where, start.cache);
  const d = deferred<Prediction[]>();
  let out: Prediction[] = [];
  submit(host, {
    feed: start.feed, init: start.init, then: 'dist', signal, cache,
    onDist: (row) => {
      out = topTokens(controls.adjust(row, true), topK, controls.exclude).map(({ id }) => ({
        token: tokenName(host, id),
        id,
        // The model's probability (a bias changes the ranking, not the figures).
        probability: Math.exp(row[id]),
      }));
    },
    resolve: () => d.resolve(out),
    reject: d.reject,
  });
  return d.promise;
}

/** A generation request; resolves with its Generation. Tokens go to `sink` as they become safe to show. */
export function startGeneration(
  host: InferenceHost, start: Start, options: GenerateOptions, where: string, sink?: TokenSink, extraKeys: string[] = [],
): Promise<Generation> {
  const net = host.network;
  const o = new Options(where, options, [...GENERATE_KEYS, ...extraKeys]);
  const maxTokens = o.integer('maxTokens', DEFAULTS.generate.maxTokens, { min: 1, max: 1_000_000 });
  const sampling = {
    temperature: o.number('temperature', DEFAULTS.generate.temperature, { min: 0, max: 100 }),
    topK: o.integer('topK', DEFAULTS.generate.topK, { min: 0, max: net.config.vocabSize }),
    topP: o.number('topP', DEFAULTS.generate.topP, { min: 0, max: 1, exclusiveMin: true }),
  };
  const rng = new Random(o.integer('seed', Math.floor(Math.random() * 2 ** 31), { min: 0, max: 2 ** 31 - 1 }));
  const stopRaw = o.raw('stop');
  const stops = stopRaw === undefined ? [] : typeof stopRaw === 'string' ? [stopRaw] : stopRaw;
  if (!Array.isArray(stops) || !stops.every((s) => typeof s === 'string' && s.length > 0)) {
    throw invalidArgument(`${where}: stop must be a non-empty string or an array of them`);
  }
  const stopAtEos = o.boolean('stopAtEos', DEFAULTS.generate.stopAtEos);
  const onToken = o.func<(t: GeneratedToken) => void>('onToken');
  o.boolean('details', false);
  const nTop = o.integer('topLogProbs', DEFAULTS.generate.topLogProbs, { min: 0, max: 20 });
  const signal = signalOf(where, o.raw('signal'));
  const controls = new Controls(o, vocabulary(host));
  const cache = requestCache(net, o, where, start.cache);
  const { eos } = specials(host);
  // The CUDA sampler draws from the whole distribution only: top-k and top-p draw on the host.
  const deviceFilters = net.backend.device === 'cpu' || (sampling.topK === 0 && sampling.topP >= 1);
  const text = new TokenText(stops as string[], (ids) => textOf(host.tokenizer, ids));
  const ids: number[] = [], logProbs: number[] = [], tops: TopToken[][] = [];
  let finishReason: Generation['finishReason'] = 'length';
  const emit = (tokens: GeneratedToken[]) => {
    for (const t of tokens) {
      onToken?.(t);
      sink?.(t);
    }
  };
  const draw = (index: number): Draw => {
    const first = index === 0;
    const exclude = deviceFilters ? controls.deviceExclude(first) : null;
    // With topLogProbs the device still draws (the host sampler draws other tokens from the same
    // seed) and the host reads the row as well.
    if (exclude) return { device: true, ...sampling, seed: rng.seed(), exclude, withRow: nTop > 0 };
    return { device: false, pick: (row) => sampleToken(controls.adjust(row, first), sampling, rng, controls.exclude) };
  };
  const d = deferred<Generation>();
  submit(host, {
    feed: start.feed, init: start.init, save: start.save ?? null, then: 'sample', limit: maxTokens, signal, draw, cache,
    onToken: (id, logProb, row) => {
      if (id === eos && stopAtEos) {
        finishReason = 'eos';
        return true;
      }
      // The model's row as it is (not controls.adjust'ed): a bias or prefix steers the draw only.
      const top = nTop > 0 ? topTokens(row!, nTop, controls.exclude).map((t) => ({ token: tokenName(host, t.id), ...t })) : undefined;
      ids.push(id);
      logProbs.push(logProb);
      if (top) tops.push(top);
      emit(text.push(id, logProb, top));
      if (text.cut >= 0) {
        finishReason = 'stop';
        return true;
      }
      return ids.length >= maxTokens;
    },
    resolve: () => {
      try {
        if (text.cut < 0) emit(text.flush());
      } catch (e) {
        return d.reject(e);
      }
      const all = textOf(host.tokenizer, ids);
      const g: Generation = { text: text.cut >= 0 ? all.slice(0, text.cut) : all, ids, logProbs, finishReason };
      d.resolve(nTop > 0 ? { ...g, topLogProbs: tops } : g);
    },
    reject: (e) => {
      sink?.fail?.(e);
      d.reject(e);
    },
  });
  return d.promise;
}

/** Where a stream's tokens go as they are produced, and its failure the moment it happens. */
export type TokenSink = ((t: GeneratedToken) => void) & { fail?: (e: unknown) => void };

/**
 * generateStream: the tokens of a generation as an async iterator; leaving the loop early cancels
 * it. `run` starts the generation with an internal signal (the user's, or the consumer leaving);
 * the options are checked first, so that a bad one rejects the first next().
 */
export function streamGeneration(
  where: string, options: unknown, run: (options: GenerateOptions, sink: TokenSink) => Promise<Generation>,
): AsyncIterableIterator<GeneratedToken> {
  const ac = new AbortController();
  const buffered: GeneratedToken[] = [];
  const waiters: (() => void)[] = [];
  const wakeAll = () => {
    for (const w of waiters.splice(0)) w();
  };
  let finished = false, failure: { e: unknown } | undefined;
  let done: Promise<void>;
  let userSignal: AbortSignal | undefined;
  const userAbort = () => ac.abort(userSignal!.reason);
  try {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidArgument(`${where}: options must be an object`);
    userSignal = signalOf(where, (options as GenerateOptions).signal);
    if (userSignal?.aborted) userAbort();
    else userSignal?.addEventListener('abort', userAbort, { once: true });
    const sink: TokenSink = (t) => {
      buffered.push(t);
      wakeAll();
    };
    // Known at once (not a few promise hops later): the consumer sees no token after a failure.
    sink.fail = (e) => {
      failure ??= { e };
      wakeAll();
    };
    done = run({ ...(options as GenerateOptions), signal: ac.signal }, sink).then(() => void (finished = true), (e) => void (failure ??= { e }));
  } catch (e) {
    failure = { e };
    done = Promise.resolve();
  }
  void done.finally(() => {
    userSignal?.removeEventListener('abort', userAbort);
    wakeAll();
  });
  const it: AsyncIterableIterator<GeneratedToken> = {
    async next() {
      for (;;) {
        // A failure (cancelled, disposed) surfaces at once, before tokens still buffered.
        if (failure) throw failure.e;
        if (buffered.length > 0) return { value: buffered.shift()!, done: false };
        if (finished) return { value: undefined, done: true };
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    async return() {
      // The consumer left: cancel the request and wait until its row is freed.
      if (!finished && !failure) ac.abort(new Error(`${where}: the consumer stopped iterating`));
      await done;
      finished = true;
      failure = undefined;
      buffered.length = 0;
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}
