// The files rnnlm writes (model checkpoints): a model that would not load back is refused
// before any file is touched.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CONFIG_LIMITS } from '../lib/checkpoint';
import { RnnlmError } from '../lib/errors';
import { LanguageModel, type CreateOptions } from '../lib/model';
import { WordTokenizer, type Tokenizer } from '../lib/tokenizers';

const root = mkdtempSync(join(tmpdir(), 'rnnlm-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};

const text = 'the cat sat on the mat . the dog sat on the log . a bird sang in the tree . '.repeat(12);
const tokenizer = WordTokenizer.fit(text);
const small: CreateOptions = { tokenizer, embeddingSize: 6, hiddenSize: 6, layers: 1, device: 'cpu', seed: 4 };

async function withModel<T>(fn: (m: LanguageModel) => Promise<T>, options: CreateOptions = small): Promise<T> {
  const m = await LanguageModel.create(options);
  try {
    return await fn(m);
  } finally {
    m.dispose();
  }
}

async function errorOf(p: Promise<unknown>): Promise<RnnlmError> {
  try {
    await p;
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(RnnlmError);
    return e as RnnlmError;
  }
  throw new Error('expected an RnnlmError, but it resolved');
}

describe('a tokenizer that would not load back is refused at create and at save', () => {
  /** A tokenizer-like object (the duck type create accepts) around a real tokenizer. */
  const fake = (over: Partial<Record<'vocabSize' | 'toJSON', unknown>>): Tokenizer =>
    ({
      kind: 'word', hasUnk: true, tokens: () => tokenizer.tokens(), idOf: (t: string) => tokenizer.idOf(t), tokenOf: (i: number) => tokenizer.tokenOf(i),
      split: (s: string) => tokenizer.split(s), encode: (s: string) => tokenizer.encode(s), encodeSentences: (s: string[]) => tokenizer.encodeSentences(s),
      decode: (ids: ArrayLike<number>) => tokenizer.decode(ids), toJSON: () => tokenizer.toJSON(), vocabSize: tokenizer.vocabSize, ...over,
    }) as Tokenizer;

  test('create: a vocabSize of 0, 1, -5, 2.5 or 2^24 + 1 is ERR_INVALID_ARGUMENT, in the loader\'s range', async () => {
    const { min, max } = CONFIG_LIMITS.vocabSize;
    for (const vocabSize of [0, 1, -5, 2.5, NaN, max + 1]) {
      const e = await errorOf(LanguageModel.create({ ...small, tokenizer: fake({ vocabSize }) }));
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.message).toBe(`LanguageModel.create: tokenizer.vocabSize must be an integer in [${min}, ${max}] (got ${vocabSize})`);
    }
  });

  test('create: a tokenizer whose JSON the loader refuses, or whose JSON disagrees with its vocabSize', async () => {
    const json = tokenizer.toJSON();
    const cases: [Tokenizer, RegExp][] = [
      [fake({ toJSON: () => ({ ...json, tokens: json.tokens.slice(4) }) }), /tokens\[0\] must be <pad>/],
      [fake({ toJSON: () => ({ ...json, type: 'bpe' }) }), /type must be 'word' or 'char'/],
      [fake({ vocabSize: tokenizer.vocabSize - 1 }), new RegExp(`the tokenizer has ${tokenizer.vocabSize} tokens but config.vocabSize is ${tokenizer.vocabSize - 1}`)],
      [fake({ toJSON: () => { throw new Error('no JSON today'); } }), /no JSON today/],
    ];
    for (const [t, why] of cases) {
      const e = await errorOf(LanguageModel.create({ ...small, tokenizer: t }));
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.message).toMatch(/^LanguageModel\.create: the tokenizer would not load back from a checkpoint: /);
      expect(e.message).toMatch(why);
    }
    // One that stores what the loader accepts is fine, and round-trips.
    const d = freshDir();
    await withModel((m) => m.save(join(d, 'ok.safetensors')), { ...small, tokenizer: fake({}) });
    const back = await LanguageModel.load(join(d, 'ok.safetensors'), { device: 'cpu' });
    expect(back.tokenizer!.tokens()).toEqual(tokenizer.tokens());
    back.dispose();
  });

  test('save: a tokenizer that changed into one that would not load back is refused before the file is touched', async () => {
    const d = freshDir();
    const path = join(d, 'model.safetensors');
    let broken = false;
    const t = fake({ toJSON: () => (broken ? { ...tokenizer.toJSON(), version: 2 } : tokenizer.toJSON()) });
    await withModel(async (m) => {
      await m.save(path);
      const before = readFileSync(path);
      broken = true;
      const e = await errorOf(m.save(path));
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.message).toMatch(/^save: the tokenizer would not load back from a checkpoint: .*version 2 is not supported/);
      expect(readFileSync(path).equals(before)).toBe(true);
      expect(readdirSync(d)).toEqual(['model.safetensors']);
    }, { ...small, tokenizer: t });
  });
});
