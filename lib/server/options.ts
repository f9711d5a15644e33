/** The options of createServer (and the flags of `rnnlm serve`, the same in kebab-case), checked before anything starts. */
import { DEFAULTS } from '../defaults';
import { invalidArgument } from '../errors';
import { Options } from '../options';

export interface ServerOptions {
  /** The id the model is served as (`model` in requests and answers). Default 'rnnlm' ('rnnlm serve': the file's name). */
  modelId?: string;
  /** Largest request body in bytes (beyond: 413). Default 1 MiB. */
  maxBodyBytes?: number;
  /** Largest `max_tokens` a request may ask for (beyond: 400). Default 2048. */
  maxTokens?: number;
  /** Requests computed at once (their rows are batched together). Default 64. */
  maxConcurrent?: number;
  /** Requests waiting for a slot; one more is answered 503 with Retry-After. Default 256. */
  maxQueue?: number;
  /**
   * Seconds a request may take from its arrival, queue included (then 504; a stream ends with an
   * error event); also the time one may take to arrive (then 408), and the time a client has to
   * read an answer once it is written. Default 60.
   */
  timeout?: number;
  /** Seconds close() (and SIGTERM) lets requests in flight finish before it cancels them. Default 10. */
  shutdownTimeout?: number;
  /** One JSON line per request: true writes it to stdout; a function receives it. Default false. */
  accessLog?: boolean | ((line: string) => void);
}

export const SERVER_KEYS = ['modelId', 'maxBodyBytes', 'maxTokens', 'maxConcurrent', 'maxQueue', 'timeout', 'shutdownTimeout', 'accessLog'] as const;

export interface ServerSettings {
  modelId: string;
  maxBodyBytes: number;
  maxTokens: number;
  maxConcurrent: number;
  maxQueue: number;
  /** Milliseconds. */
  timeoutMs: number;
  shutdownMs: number;
  accessLog: ((line: string) => void) | null;
}

export function parseServerOptions(options: ServerOptions): ServerSettings {
  const d = DEFAULTS.serve;
  const o = new Options('createServer', options, SERVER_KEYS);
  const log = o.raw('accessLog');
  if (log !== undefined && typeof log !== 'boolean' && typeof log !== 'function') {
    throw invalidArgument(`createServer: accessLog must be true, false or a function (got ${JSON.stringify(log)})`);
  }
  return {
    modelId: o.string('modelId', d.modelId)!,
    maxBodyBytes: o.integer('maxBodyBytes', d.maxBodyBytes, { min: 1024, max: 2 ** 30 }),
    maxTokens: o.integer('maxTokens', d.maxTokens, { min: 1, max: 1_000_000 }),
    maxConcurrent: o.integer('maxConcurrent', d.maxConcurrent, { min: 1, max: 65_536 }),
    maxQueue: o.integer('maxQueue', d.maxQueue, { min: 0, max: 1_000_000 }),
    timeoutMs: o.number('timeout', d.timeout, { min: 0, max: 86_400, exclusiveMin: true }) * 1000,
    shutdownMs: o.number('shutdownTimeout', d.shutdownTimeout, { min: 0, max: 86_400 }) * 1000,
    accessLog: log === true ? (line) => process.stdout.write(`${line}\n`) : typeof log === 'function' ? (log as (line: string) => void) : null,
  };
}
