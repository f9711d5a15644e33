// Shared by the runtime tests (runtime*.test.ts): tiny word models trained briefly on a toy
// grammar, their batching-off twins, and comparisons of what two models answer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { RnnlmError } from '../../lib/errors';
import { LanguageModel, networkOf, type CreateOptions, type Generation, type Prediction, type Score } from '../../lib/model';
import { WordTokenizer } from '../../lib/tokenizers';
import { Random } from '../../lib/util/random';

export const CELLS = ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'] as const;

const SUBJECTS = ['the cat', 'the dog', 'a cow', 'the crow', 'my car', 'a dove', 'the bird', 'her doll'];
const VERBS = ['sees', 'likes', 'chases', 'finds', 'catches', 'carries', 'calls', 'dreams of'];
const OBJECTS = ['the ball', 'a tree', 'the cake', 'a door', 'the box', 'a drum', 'the bone', 'a bell'];
const ENDS = ['.', '!', 'today .', 'at night .', ', then sleeps .'];

/** Sentences of a toy grammar (words share first letters, for prefix tests); ~45 words. */
export function sentences(n: number, seed = 1): string[] {
  const rng = new Random(seed);
  const pick = (a: string[]) => a[Math.floor(rng.next() * a.length)];
  return Array.from({ length: n }, () => `${pick(SUBJECTS)} ${pick(VERBS)} ${pick(OBJECTS)} ${pick(ENDS)}`);
}

export const TEXT = sentences(300).join(' ');
export const TOKENIZER = WordTokenizer.fit(TEXT);

/** Ids of another text of the grammar: prompts and contexts of any length. */
export const OTHER = TOKENIZER.encode(sentences(200, 7).join(' '));
/** The first n tokens of OTHER (from token `from`), as text (words joined by spaces: the same tokens). */
export const words = (n: number, from = 0) => Array.from(OTHER.subarray(from, from + n), (id) => TOKENIZER.tokenOf(id)).join(' ');
export const ids = (n: number, from = 0) => Array.from(OTHER.subarray(from, from + n));

export const tiny = (more: CreateOptions = {}) =>
  LanguageModel.create({ tokenizer: TOKENIZER, embeddingSize: 16, hiddenSize: 16, layers: 2, device: 'cpu', seed: 1, ...more });

/** A word model trained for one epoch (stream mode on TEXT, or sentences mode on its sentences). */
export async function trained(more: CreateOptions = {}, mode: 'stream' | 'sentences' = 'stream'): Promise<LanguageModel> {
  const m = await tiny(more);
  const fit = { epochs: 1, progress: false, optimizer: { type: 'adam', lr: 0.01 } } as const;
  if (mode === 'stream') await m.fit(TEXT, { ...fit, batchSize: 8, seqLength: 16 });
  else await m.fit(sentences(300), { ...fit, batchSize: 16 });
  return m;
}

const dir = mkdtempSync(join(tmpdir(), 'rnnlm-runtime-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let saved = 0;

/** The same weights, mode and tokenizer in a model that serves one request at a time. */
export async function aloneTwin(m: LanguageModel): Promise<LanguageModel> {
  const path = join(dir, `m${saved++}.safetensors`);
  await m.save(path);
  return LanguageModel.load(path, { device: 'cpu', batching: false });
}

/** Records the most rows (batch size) that any recurrent step of the model has run with since the call. */
export function rowsSeen(m: LanguageModel): { max: number } {
  const s = networkOf(m).stream;
  const seen = { max: 0 };
  const step = s.rnnForward.bind(s);
  // The native method is read-only on the prototype: an own property shadows it.
  Object.defineProperty(s, 'rnnForward', {
    configurable: true,
    value: (rnn: Parameters<typeof step>[0], args: Parameters<typeof step>[1]) => {
      seen.max = Math.max(seen.max, args.x.shape[1]);
      return step(rnn, args);
    },
  });
  return seen;
}

/** Largest |a[i] - b[i]| (arrays of the same length). */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

export function expectSameGeneration(got: Generation, want: Generation, what = '') {
  expect(got.ids, what).toEqual(want.ids);
  expect(maxDiff(got.logProbs, want.logProbs), what).toBeLessThanOrEqual(1e-5);
  expect(got.text, what).toBe(want.text);
  expect(got.finishReason, what).toBe(want.finishReason);
}

export function expectSamePredictions(got: Prediction[], want: Prediction[], what = '', tol = 1e-5) {
  expect(got.map((p) => p.id), what).toEqual(want.map((p) => p.id));
  expect(got.map((p) => p.token), what).toEqual(want.map((p) => p.token));
  expect(maxDiff(got.map((p) => p.probability), want.map((p) => p.probability)), what).toBeLessThanOrEqual(tol);
}

export function expectSameScore(got: Score, want: Score, what = '') {
  expect(got.tokens, what).toBe(want.tokens);
  expect(got.unknown, what).toBe(want.unknown);
  expect(Math.abs(got.logProb - want.logProb), what).toBeLessThanOrEqual(1e-4 * Math.abs(want.logProb));
  if (want.tokenLogProbs) expect(maxDiff(got.tokenLogProbs!, want.tokenLogProbs), what).toBeLessThanOrEqual(1e-5);
}

/** Every token's probability after a context, by id (predictNext with topK = the vocabulary). */
export async function distribution(p: Promise<Prediction[]>): Promise<Map<number, number>> {
  return new Map((await p).map((x) => [x.id, x.probability]));
}

/** The error a promise (or a call) rejects with; fails when it resolves. */
export async function failure(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection, but it resolved');
}

/** Rejects with an RnnlmError of this code whose message matches. */
export async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string, message?: RegExp): Promise<void> {
  const e = await failure(p);
  expect(e, String(e)).toBeInstanceOf(RnnlmError);
  expect((e as RnnlmError).code, (e as Error).message).toBe(code);
  if (message) expect((e as Error).message).toMatch(message);
}

/** Resolves with p's value, or fails when p takes longer than ms (a request left hanging). */
export function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
