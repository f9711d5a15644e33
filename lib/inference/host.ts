/**
 * What inference needs of a model (LanguageModel builds it; nothing here holds a model): the
 * network, the vocabulary and data checks, the batching scheduler and the access rules.
 */
import { invalidArgument } from '../errors';
import type { DataMode, Inputs } from '../inputs';
import type { Network } from '../nn/network';
import type { Access } from '../runtime/access';
import type { Job, Scheduler } from '../runtime/scheduler';
import { runCached, type RequestCache } from './cached';
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
  /** Where sessions register their state buffers and cache memories, freed with the model. */
  readonly sessions: { add(memory: { readonly released: boolean; free(): void }): void };
}

/** A tokenizer model trained on sentences: prompts and sessions start with <sos>, scores end with <eos>. */
export const sentenceModel = (host: Pick<InferenceHost, 'mode' | 'tokenizer'>) => host.mode === 'sentences' && host.tokenizer !== undefined;

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

/**
 * Hands a job to the model's scheduler, or with a cache to runCached: by default it scores nothing
 * and keeps no state.
 */
export function submit(
  host: InferenceHost,
  request: Omit<Job, 'targets' | 'pre' | 'save'> & Partial<Pick<Job, 'targets' | 'pre' | 'save'>> & { cache?: () => RequestCache },
): void {
  const { cache, ...rest } = request;
  const job: Job = { targets: null, pre: -1, save: null, ...rest };
  if (cache) runCached(host.network, host.access, job, cache);
  else host.scheduler.submit(job);
}
