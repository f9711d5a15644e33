/**
 * A session: a recurrent state that persists between calls, for autocomplete and chat-like use.
 * `append` feeds only the new tokens; predictNext, generate, generateStream and score continue
 * from the state without changing it unless asked (`append: true`); fork copies it. The state is
 * one sequence's h (and c): 2 x layers x hiddenSize numbers on the model's device. Calls on one
 * session run in call order; calls on different sessions are batched together. A session made
 * with a cache also keeps the memory of its recent outputs (lib/cache.ts), which every call mixes
 * in and only calls that keep their tokens change; its calls run at batch 1 (inference/cached.ts).
 */
import type { DeviceBuffer } from '../backend/types';
import { CacheMemory, parseCache, type CacheOptions } from '../cache';
import { RnnlmError } from '../errors';
import type { TokenIds } from '../inputs';
import { Options, signalIn, signalOf } from '../options';
import { untilSettled } from '../runtime/access';
import { stateRef, stateSize, type StateRef } from '../runtime/rows';
import { GENERATE_KEYS, predictNext, startFeed, startGeneration, streamGeneration, type GenerateOptions, type Generation, type PredictOptions, type Prediction, type Start } from './generate';
import { requestCache, type RequestCache } from './cached';
import { sentenceModel, submit, type InferenceHost } from './host';
import { SCORE_KEYS, scoreFrom, type Score, type ScoreOptions } from './score';
import type { GeneratedToken } from './text';

/** Options of Session.generate and generateStream: generate's, and whether the session keeps what was generated. */
export interface SessionGenerateOptions extends GenerateOptions {
  /** Append the generated tokens to the session (a drawn `<eos>` included). Default false. */
  append?: boolean;
}

/** Options of LanguageModel.session. */
export interface SessionOptions {
  /**
   * A continuous cache over everything the session holds (lib/cache.ts): its predictions, scores
   * and draws mix the model's distribution with one over the words that followed its most similar
   * recent states — a user's own words come back. Default: none.
   */
  cache?: CacheOptions;
}

/** Options of Session.score. */
export interface SessionScoreOptions extends ScoreOptions {
  /** Append the scored tokens to the session. Default false. */
  append?: boolean;
}

export class Session {
  #buf?: DeviceBuffer;
  /** The memory of a session made with a cache. */
  #cache?: CacheMemory;
  #length = 0;
  /** Settles when the calls made so far have (never rejects). */
  #chain: Promise<unknown> = Promise.resolve();
  #disposed = false;
  /** Why the state could not be made (fork's copy failed): every call rejects with it. */
  #broken?: { e: unknown };

  /** Made by LanguageModel.session(). */
  constructor(readonly host: InferenceHost, options: SessionOptions = {}) {
    const o = new Options('session', options, ['cache']);
    if (o.has('cache')) {
      const net = host.network;
      this.#cache = new CacheMemory(net.stream, net.config.dtype, net.config.hiddenSize, parseCache('session', o.raw('cache')));
      host.sessions.add(this.#cache);
    }
  }

  /** Tokens in the session's state (a sentence model's starting `<sos>` included). */
  get length(): number {
    return this.#length;
  }
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Feeds text or token ids after what the session holds. */
  append(input: string | TokenIds, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#run('append', options, async () => {
      const o = new Options('session.append', options, ['signal']);
      const ids = this.host.inputs.prompt(input, 'session.append input');
      const start = this.#start(ids, true);
      const cache = requestCache(this.host.network, o, 'session.append', start.cache);
      if (start.feed.length === 0) return;
      await feedOnly(this.host, start, signalOf('session.append', o.raw('signal')), cache);
      this.#length += start.feed.length;
    });
  }

  /** The most likely next tokens after the session's state (as model.predictNext after its whole text). */
  predictNext(options: PredictOptions = {}): Promise<Prediction[]> {
    return this.#run('predictNext', options, () => predictNext(this.host, this.#start(new Int32Array(0), false), options, 'session.predictNext'));
  }

  /** Continues the session by sampling; with append: true the session keeps the generated tokens. */
  generate(options: SessionGenerateOptions & { details: true }): Promise<Generation>;
  generate(options?: SessionGenerateOptions): Promise<string>;
  generate(options: SessionGenerateOptions = {}): Promise<string | Generation> {
    return this.#run('generate', options, async () => {
      const g = await this.#generate(options);
      return options?.details ? g : g.text;
    });
  }

  /** generate's tokens as they are produced; leaving the loop early cancels the call. */
  generateStream(options: SessionGenerateOptions = {}): AsyncIterableIterator<GeneratedToken> {
    return streamGeneration('session.generateStream', options, (o, sink) => this.#run('generateStream', o, () => this.#generate(o, sink)));
  }

  async #generate(options: SessionGenerateOptions, sink?: (t: GeneratedToken) => void): Promise<Generation> {
    const keep = new Options('session.generate', options, [...GENERATE_KEYS, 'append']).boolean('append', false);
    const start = this.#start(new Int32Array(0), keep);
    const g = await startGeneration(this.host, start, options, 'session.generate', sink, ['append']);
    if (keep) this.#length += start.feed.length + g.ids.length + (g.finishReason === 'eos' ? 1 : 0);
    return g;
  }

  /** The log-probability of the input continuing the session (every token scored). */
  score(input: string | TokenIds, options: SessionScoreOptions = {}): Promise<Score> {
    return this.#run('score', options, async () => {
      const keep = new Options('session.score', options, [...SCORE_KEYS, 'append']).boolean('append', false);
      const ids = this.host.inputs.prompt(input, 'session.score input');
      const start = this.#start(new Int32Array(0), keep);
      const s = await scoreFrom(this.host, start, ids, options, 'session.score', keep);
      if (keep) this.#length += start.feed.length + ids.length;
      return s;
    });
  }

  /** A new session with a copy of this one's state (as it is after the calls made before fork). */
  fork(): Session {
    this.#check('fork');
    const child = new Session(this.host);
    child.#chain = this.#chain.then(() => {
      if (this.#cache) {
        child.#cache = this.#cache.clone();
        this.host.sessions.add(child.#cache);
      }
      if (this.#length === 0 || !this.#buf) return;
      child.#length = this.#length;
      const s = this.host.network.stream;
      const n = this.#buf.length;
      child.#buf = this.#alloc(n);
      s.copy({ buffer: this.#buf, offset: 0, shape: [n] }, { buffer: child.#buf, offset: 0, shape: [n] });
    });
    // A failed copy (the model was disposed) is the child's calls' error, never an unhandled rejection.
    child.#chain = child.#chain.catch((e) => void (child.#broken = { e }));
    return child;
  }

  /** Back to no tokens (after the calls made before it). */
  reset(): void {
    this.#check('reset');
    this.#chain = this.#chain.then(() => {
      this.#length = 0;
      this.#cache?.clear();
    }, () => {});
  }

  /** Frees the state once the calls made before it have ended; later calls reject with ERR_DISPOSED. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    void this.#chain.finally(() => {
      this.#buf?.free();
      this.#cache?.free();
    }).catch(() => {});
  }

  #check(what: string): void {
    if (this.#disposed) throw new RnnlmError('ERR_DISPOSED', `session.${what}: this session was disposed`);
  }

  /**
   * Runs calls in call order, each as an inference call of the model. A call whose signal aborts
   * while it waits for the calls before it rejects at once (and then leaves the state alone).
   */
  #run<T>(what: string, options: unknown, fn: () => Promise<T>): Promise<T> {
    try {
      this.#check(what);
    } catch (e) {
      return Promise.reject(e);
    }
    const signal = signalIn(options);
    const before = this.#chain;
    const p = (async () => {
      await untilSettled(before, signal);
      if (this.#broken) throw this.#broken.e;
      return this.host.access.shared(fn, signal);
    })();
    // The next call waits for this one to settle (its own outcome is not theirs), and for the
    // call before when this one left early on its signal.
    this.#chain = Promise.all([before, p.catch(() => {})]).then(() => {});
    return p;
  }

  /** A request from the session's state: its tokens after the start (and <sos> first in a fresh sentence session); saving the state when `keep`. */
  #start(ids: Int32Array, keep: boolean): Start {
    const fresh = this.#length === 0;
    const feed = startFeed(ids, fresh && sentenceModel(this.host));
    return { init: fresh ? null : this.#ref(), feed, save: keep ? this.#ref() : null, cache: this.#cache };
  }

  #ref(): StateRef {
    const shape = this.host.scheduler.stateShape;
    this.#buf ??= this.#alloc(stateSize(shape));
    return stateRef(this.#buf, shape);
  }

  #alloc(n: number): DeviceBuffer {
    const buf = this.host.network.stream.alloc(this.host.scheduler.stateShape.dtype, n);
    this.host.sessions.add(buf);
    return buf;
  }
}

/** A session's device memory: its state buffer, its cache memory. */
interface Freeable {
  readonly released: boolean;
  free(): void;
}

/**
 * The state buffers (and cache memories) of a model's sessions, freed with the model. Held weakly: a session dropped
 * without dispose() goes with its garbage collection (its buffer's own finalizer frees it).
 */
export class SessionStates {
  #refs = new Set<WeakRef<Freeable>>();
  add(buf: Freeable): void {
    if (this.#refs.size >= 1024) for (const r of this.#refs) if (!r.deref() || r.deref()!.released) this.#refs.delete(r);
    this.#refs.add(new WeakRef(buf));
  }
  freeAll(): void {
    for (const r of this.#refs) r.deref()?.free();
    this.#refs.clear();
  }
}

/** Feeds a start and saves its state (an append): a job with nothing after its feed. */
function feedOnly(host: InferenceHost, start: Start, signal?: AbortSignal, cache?: () => RequestCache): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    submit(host, { feed: start.feed, init: start.init, save: start.save ?? null, then: 'none', signal, cache, resolve: () => resolve(), reject });
  });
}
