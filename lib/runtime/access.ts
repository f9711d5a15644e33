/**
 * Who may use a model when. Inference calls run concurrently (any number); `fit` runs alone: it
 * waits for the inference in flight, and inference asked for during fit waits until fit pauses
 * for one of its callbacks (onEpochEnd) or ends. During a callback inference runs at once, and fit
 * waits for all of it before training on — also calls made before the callback (so a callback that
 * awaits a session whose earlier call was waiting for fit does not deadlock). A second fit while
 * one runs is refused (ERR_BUSY). Calls that use the network's own activation memory (evaluate,
 * beamSearch) also take turns among themselves. A call waiting its turn rejects as soon as its
 * signal aborts.
 */
import { RnnlmError } from '../errors';

export class Access {
  private fitting?: { callbackOpen: boolean };
  /** Calls waiting for fit to pause or end. */
  private fitWaiters: (() => void)[] = [];
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private networkTurn: Promise<void> = Promise.resolve();

  constructor(private readonly checkAlive: () => void) {}

  /** Runs an inference call: concurrently with others, never during fit's training. */
  async shared<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    this.checkAlive();
    if (signal instanceof AbortSignal) signal.throwIfAborted();
    // (A waiter left by an aborted call is woken with the others, for nothing.)
    while (this.fitting && !this.fitting.callbackOpen) await untilSettled(new Promise<void>((r) => this.fitWaiters.push(r)), signal);
    this.checkAlive();
    this.inFlight++;
    try {
      return await fn();
    } finally {
      if (--this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Runs fn when no other call uses the network's activation memory (inside shared()); rejects at once if the signal aborts while it waits. */
  async network<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const before = this.networkTurn;
    let release!: () => void;
    this.networkTurn = new Promise<void>((r) => (release = r));
    try {
      await untilSettled(before, signal);
      this.checkAlive();
      return await fn();
    } finally {
      // The next turn starts after the one before this (over already, unless this call left early on its signal).
      void before.then(release);
    }
  }

  /** Runs fit: alone (ERR_BUSY if one runs), after the inference in flight. */
  async exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.checkAlive();
    if (this.fitting) throw new RnnlmError('ERR_BUSY', `${what}: the model is already training; await the running fit first (one fit at a time per model)`);
    const state = (this.fitting = { callbackOpen: false });
    try {
      await this.idle();
      this.checkAlive();
      return await fn();
    } finally {
      if (this.fitting === state) this.fitting = undefined;
      for (const w of this.fitWaiters.splice(0)) w();
    }
  }

  /**
   * A user callback of fit, during which inference runs at once. Training goes on only once every
   * call the callback started has ended, awaited or not (they share the stream).
   */
  async callback(fn: () => void | Promise<void>): Promise<void> {
    const state = this.fitting;
    if (!state) return fn();
    state.callbackOpen = true;
    for (const w of this.fitWaiters.splice(0)) w();
    try {
      await fn();
    } finally {
      // Also a call that a finished call started (e.g. in its .then) before this resumes.
      await this.idle();
      state.callbackOpen = false;
    }
  }

  private async idle(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }
}

/**
 * Resolves when `p` settles (either way); rejects at once with the signal's reason if it aborts
 * first. A call waiting its turn (for fit, for the calls before it on a session) waits with it.
 */
export function untilSettled(p: Promise<unknown>, signal?: AbortSignal): Promise<void> {
  const settled = p.then(() => {}, () => {});
  if (!signal) return settled;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    void settled.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
