/**
 * Admission of the requests that compute (completions, next, score): at most `maxConcurrent` at
 * once — their rows are batched by the model's scheduler — and at most `maxQueue` waiting for a
 * slot in arrival order; one more is answered 503 with Retry-After at once (a bounded queue, as
 * Triton and Ollama do), so a flood costs memory for a bounded number of requests only.
 *
 * Each request has one AbortSignal (`Work.signal`) that ends it however it must end: its client
 * went away, its time ran out (504), or the server shut down before it finished (503). The model
 * cancels a request at its next step when that signal fires, and a waiting one leaves the queue.
 */
import { HttpError } from './errors';

/** Why a request stopped without an answer to send: its client left. */
export class ClientGone extends Error {
  constructor() {
    super('the client disconnected');
  }
}

/** One request's life: its signal, its timeout, and the tokens it used. */
export class Work {
  private readonly ac = new AbortController();
  private readonly timer: NodeJS.Timeout;
  /** Its client left (the answer is not sent; 499 in metrics and the access log). */
  gone = false;
  promptTokens = 0;
  completionTokens = 0;

  constructor(timeoutMs: number, private readonly onEnd: (w: Work) => void) {
    this.timer = setTimeout(() => {
      this.abort(new HttpError(504, 'timeout', `the request took longer than the server's limit of ${timeoutMs / 1000} s (--timeout)`));
    }, timeoutMs);
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  /** Cancels it (the first reason wins). */
  abort(reason: Error): void {
    if (this.ac.signal.aborted) return;
    this.gone = reason instanceof ClientGone;
    clearTimeout(this.timer);
    this.ac.abort(reason);
  }

  /** Its answer is sent or abandoned. */
  end(): void {
    clearTimeout(this.timer);
    this.onEnd(this);
  }
}

interface Waiter {
  admit: () => void;
}

export class Admission {
  private active = 0;
  private readonly waiting: Waiter[] = [];
  /** Requests begun and not finished (admitted or waiting), each with its Work. */
  readonly inFlight = new Set<Work>();
  private idle: (() => void)[] = [];

  constructor(
    private readonly maxConcurrent: number,
    private readonly maxQueue: number,
    private readonly timeoutMs: number,
  ) {}

  get queued(): number {
    return this.waiting.length;
  }

  get running(): number {
    return this.active;
  }

  /** A request's Work, aborted by its timeout from now on; call its end() when it is answered. */
  begin(): Work {
    const work = new Work(this.timeoutMs, (w) => {
      this.inFlight.delete(w);
      if (this.inFlight.size === 0) for (const f of this.idle.splice(0)) f();
    });
    this.inFlight.add(work);
    return work;
  }

  /** Runs `job` in a slot: at once if one is free, else after the requests queued before it. */
  async run<T>(work: Work, job: () => Promise<T>): Promise<T> {
    await this.acquire(work.signal);
    try {
      return await job();
    } finally {
      this.release();
    }
  }

  /** Resolves when no request is in flight. */
  settled(): Promise<void> {
    return this.inFlight.size === 0 ? Promise.resolve() : new Promise((r) => this.idle.push(r));
  }

  private acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.active < this.maxConcurrent) {
      this.active++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.maxQueue) {
      return Promise.reject(new HttpError(503, 'overloaded', `the server is at its limit (${this.maxConcurrent} requests computing, ${this.maxQueue} waiting); retry later`, null, 1));
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason);
      };
      const w: Waiter = {
        admit: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(w);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next.admit(); // the slot passes on: active stays the same
    else this.active--;
  }
}
