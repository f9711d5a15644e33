/**
 * What inference needs of a model (LanguageModel builds it; nothing here holds a model): the
 * network, the vocabulary and data checks, the batching scheduler and the access rules.
 */
import { invalidArgument } from '../errors';
import type { DataMode, Inputs } from '../inputs';
import type { Network } from '../nn/network';
import type { Access } from '../runtime/access';
import type { Scheduler } from '../runtime/scheduler';
import type { Tokenizer } from '../tokenizers';

export interface InferenceHost {
  readonly network: Network;
  readonly tokenizer?: Tokenizer;
  readonly inputs: Inputs;
  /** The data mode of the last training; a tokenizer model trained on sentences starts with <sos>. */
  readonly mode?: DataMode;
  readonly scheduler: Scheduler;
  readonly access: Access;
  decode(ids: number[]): string;
}

/** A tokenizer model trained on sentences: prompts and sessions start with <sos>, scores end with <eos>. */
export const sentenceModel = (host: InferenceHost) => host.mode === 'sentences' && host.tokenizer !== undefined;

/** Text of token ids: the tokenizer's decode, or the ids joined by spaces. */
export function textOf(tokenizer: Tokenizer | undefined, ids: number[]): string {
  return tokenizer ? tokenizer.decode(ids) : ids.join(' ');
}

/** A promise with its settle functions (the scheduler's jobs settle them). */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void, reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** The signal option of every inference call. */
export function signalOf(where: string, v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw invalidArgument(`${where}: signal must be an AbortSignal`);
  return v;
}
