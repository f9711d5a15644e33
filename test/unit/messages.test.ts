// Messages of refused input: each says what was wrong and what to do instead; the TypeScript
// types refuse what the run time refuses (the @ts-expect-error lines fail the typecheck if not).
import { describe, expect, test } from 'vitest';
import { RnnlmError } from '../../lib/errors';
import { LanguageModel, type TextInput } from '../../lib/model';
import { CharTokenizer, WordTokenizer } from '../../lib/tokenizers';

async function message(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(RnnlmError);
    return `${(e as RnnlmError).code}: ${(e as RnnlmError).message}`;
  }
  throw new Error('expected an RnnlmError, but nothing was thrown');
}

describe('messages', () => {
  test('a token id that is not an integer is called that, not out of range', async () => {
    const m = await LanguageModel.create({ vocabSize: 50, embeddingSize: 4, hiddenSize: 4, layers: 1, device: 'cpu' });
    try {
      const text = await message(m.evaluate([3, 4.5, 1]));
      expect(text).toMatch(/^ERR_VOCAB: evaluate data: token id 4.5 at index 1 is not an integer$/);
      expect(await message(m.evaluate([3, 50, 1]))).toMatch(/^ERR_VOCAB: evaluate data: token id 50 at index 1 is not in \[0, 50\)/);
    } finally {
      m.dispose();
    }
  });

  test('a Buffer or another typed array: refused by the types and at run time, saying why', async () => {
    const m = await LanguageModel.create({ vocabSize: 300, embeddingSize: 4, hiddenSize: 4, layers: 1, device: 'cpu' });
    try {
      // @ts-expect-error a Buffer holds bytes, not token ids
      const buffer: TextInput = Buffer.from('some text');
      // @ts-expect-error
      const floats: TextInput = new Float64Array([1, 2, 3]);
      // @ts-expect-error
      const bytes: TextInput = new Uint8Array([1, 2, 3]);
      expect(await message(m.evaluate(buffer))).toMatch(/got a Buffer, which holds bytes, not token ids: decode it to a string first \(buffer.toString\('utf8'\)\)/);
      expect(await message(m.fit(buffer))).toMatch(/^ERR_INVALID_ARGUMENT: training data .*got a Buffer/);
      expect(await message(m.evaluate(floats))).toMatch(/got a Float64Array; token ids are a number\[\], Int32Array, Uint32Array or Uint16Array/);
      expect(await message(m.evaluate(bytes))).toMatch(/got a Uint8Array; token ids are/);
      expect(await message(m.evaluate([[1, 2], buffer as never], { mode: 'sentences' }))).toMatch(/evaluate data\[1\] must be .*got a Buffer/);
      // Prompts and contexts are read by the same check.
      expect(await message(m.predictNext(buffer as never))).toMatch(/^ERR_INVALID_ARGUMENT: predictNext context must be .*got a Buffer.*decode it/);
      expect(await message(m.generate({ prompt: floats as never }))).toMatch(/generate prompt must be .*got a Float64Array/);
      // What the types accept, the run time accepts.
      for (const ids of [[1, 2, 3], Int32Array.of(1, 2, 3), Uint32Array.of(1, 2, 3), Uint16Array.of(1, 2, 3)] satisfies TextInput[]) {
        expect((await m.evaluate(ids)).tokens).toBe(2);
      }
    } finally {
      m.dispose();
    }
  });

  test('new LanguageModel() is refused with the way to make one', async () => {
    const Ctor = LanguageModel as unknown as new () => unknown;
    expect(await message(() => new Ctor())).toMatch(/^ERR_INVALID_ARGUMENT: new LanguageModel\(\) is not supported: make a model with LanguageModel.create\(options\) or LanguageModel.load\(path\)/);
  });

  test('new WordTokenizer() / new CharTokenizer() are refused with the way to make one', async () => {
    for (const [Cls, name] of [[WordTokenizer, 'WordTokenizer'], [CharTokenizer, 'CharTokenizer']] as const) {
      const Ctor = Cls as unknown as new (...args: unknown[]) => unknown;
      const expected = new RegExp(`^ERR_INVALID_ARGUMENT: new ${name}\\(\\) is not supported: make one with ${name}.fit\\(text, options\\)`);
      expect(await message(() => new Ctor())).toMatch(expected);
      expect(await message(() => new Ctor(['<pad>', '<unk>', '<sos>', '<eos>', 'a'], true))).toMatch(expected);
    }
  });

  test('an unseen character in the validation text says it is in the validation text', async () => {
    const text = 'abcabc abc '.repeat(10);
    const m = await LanguageModel.create({ tokenizer: CharTokenizer.fit(text), embeddingSize: 4, hiddenSize: 4, layers: 1, device: 'cpu' });
    try {
      expect(await message(m.fit(text, { batchSize: 2, seqLength: 4, progress: false, validation: 'abz' }))).toMatch(/^ERR_VOCAB: validation data: .*'z'/);
      expect(await message(m.fit(text, { batchSize: 2, seqLength: 4, progress: false, validation: ['ab', 'zz'] , mode: 'stream' }))).toMatch(/validation data must be a string/);
      expect(await message(m.fit(text.split(' '), { batchSize: 2, progress: false, validation: ['ab', 'az'] }))).toMatch(/^ERR_VOCAB: validation data\[1\]: .*'z'/);
    } finally {
      m.dispose();
    }
  });

  test('counts are singular for one: "has 1 token"', async () => {
    const m = await LanguageModel.create({ vocabSize: 10, embeddingSize: 4, hiddenSize: 4, layers: 1, device: 'cpu' });
    try {
      expect(await message(m.evaluate([3]))).toMatch(/evaluate data has 1 token: /);
      expect(await message(m.fit([3], { batchSize: 1 }))).toMatch(/the training text has 1 token: /);
      expect(await message(m.fit([3, 4, 5], { batchSize: 1 }))).toMatch(/3 tokens/);
    } finally {
      m.dispose();
    }
  });
});
