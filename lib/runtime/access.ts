/**
 * Who may use a model when. Inference calls run concurrently (any number); `fit` runs alone: it
 * waits for the inference in flight, and inference asked for during fit waits until fit ends —
 * except inside fit's callbacks (onEpochEnd), where it runs at once and fit waits for it before
 * training on. A second fit while one runs is refused (ERR_BUSY). Calls that use the network's
 * own activation memory (evaluate, beamSearch, save's read) also take turns among themselves.
 */
import { RnnlmError } from '../errors';

export class Access {
  private fitting?: { callbackOpen: boolean };
  private fitEnded?: Promise<void>;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private networkTurn: Promise<void> = Promise.resolve();

  constructor(private readonly checkAlive: () => void) {}

  /** Runs an inference call: concurrently with others, never during fit's training. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    this.checkAlive();
    while (this.fitting && !this.fitting.callbackOpen) await this.fitEnded;
    this.checkAlive();
    this.inFlight++;
    try {
      return await fn();
    } finally {
      if (--this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Runs fn when no other call uses the network's activation memory (inside shared()). */
  async network<T>(fn: () => Promise<T>): Promise<T> {
    const before = this.networkTurn;
    let release!: () => void;
    this.networkTurn = new Promise<void>((r) => (release = r));
    try {
      await before;
      this.checkAlive();
      return await fn();
    } finally {
      release();
    }
  }

  /** Runs fit: alone (ERR_BUSY if one runs), after the inference in flight. */
  async exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.checkAlive();
    if (this.fitting) throw new RnnlmError('ERR_BUSY', `${what}: the model is already training; await the running fit first (one fit at a time per model)`);
    const state = (this.fitting = { callbackOpen: false });
    let ended!: () => void;
    this.fitEnded = new Promise<void>((r) => (ended = r));
    try {
      await this.idle();
      this.checkAlive();
      return await fn();
    } finally {
      if (this.fitting === state) this.fitting = undefined;
      ended();
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
