// Bad input to the runtime's options: each refused with ERR_INVALID_ARGUMENT naming the option,
// before any work (the model answers normally after).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LanguageModel } from '../../lib/model';
import { TOKENIZER, rejectsWith, tiny, words } from './runtime-fixtures';

let m: LanguageModel, idm: LanguageModel, path: string;
const dir = mkdtempSync(join(tmpdir(), 'rnnlm-runtime-input-'));
beforeAll(async () => {
  m = await tiny();
  idm = await LanguageModel.create({ vocabSize: 30, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu' });
  path = join(dir, 'm.safetensors');
  await m.save(path);
});
afterAll(() => {
  m.dispose();
  idm.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const V = TOKENIZER.vocabSize;
/** Every call that takes token controls, with the given options added. */
const controlled = (o: object): [string, () => Promise<unknown>][] => [
  ['predictNext', () => m.predictNext(words(3), o)],
  ['generate', () => m.generate({ prompt: words(3), maxTokens: 2, ...o })],
  ['generateStream', () => m.generateStream({ prompt: words(3), maxTokens: 2, ...o }).next()],
  ['session.predictNext', () => m.session().predictNext(o)],
  ['session.generate', () => m.session().generate({ maxTokens: 2, ...o })],
  ['session.generateStream', () => m.session().generateStream({ maxTokens: 2, ...o }).next()],
];

describe('token controls', () => {
  const cases: [string, object, RegExp][] = [
    ['ban not an array', { ban: 'the' }, /ban must be an array/],
    ['ban of an unknown token', { ban: ['the', 'zebra'] }, /ban\[1\].*"zebra" is not a token/],
    ['ban of an id out of range', { ban: [V] }, /ban\[0\] = \d+ is not a token id/],
    ['ban of a negative id', { ban: [-1] }, /ban\[0\] = -1/],
    ['ban of a fractional id', { ban: [4.5] }, /ban\[0\] = 4.5/],
    ['ban of every token', { ban: [...Array(V).keys()] }, /ban excludes every token/],
    ['logitBias NaN', { logitBias: { the: NaN } }, /logitBias for "the" must be a finite number/],
    ['logitBias +Infinity', { logitBias: { the: Infinity } }, /logitBias for "the"/],
    ['logitBias not an object', { logitBias: 3 }, /logitBias must be an object/],
    ['logitBias an array', { logitBias: [1, 2] }, /logitBias must be an object/],
    ['logitBias of an unknown token', { logitBias: { zebra: 1 } }, /logitBias key "zebra"/],
    ['logitBias a Map with an id out of range', { logitBias: new Map([[V + 3, 1]]) }, /logitBias key/],
    ['prefix empty', { prefix: '' }, /prefix must be a non-empty string/],
    ['prefix not a string', { prefix: 3 }, /prefix must be a non-empty string/],
    ['signal not an AbortSignal', { signal: { aborted: false } }, /signal must be an AbortSignal/],
    ['an unknown option', { bogus: 1 }, /unknown option 'bogus'/],
  ];
  for (const [name, options, message] of cases) {
    test(name, async () => {
      const failed: string[] = []; // every call that accepts it, not only the first
      for (const [what, call] of controlled(options)) {
        await rejectsWith(call, 'ERR_INVALID_ARGUMENT', message).catch((e) => failed.push(`${what}: ${(e as Error).message.split('\n')[0]}`));
      }
      expect(failed).toEqual([]);
    });
  }

  test('prefix on a model of token ids; logitBias keys that are not ids', async () => {
    await rejectsWith(idm.predictNext([3], { prefix: '1' }), 'ERR_INVALID_ARGUMENT', /prefix needs a tokenizer/);
    await rejectsWith(idm.generate({ prompt: [3], prefix: '1' }), 'ERR_INVALID_ARGUMENT', /prefix needs a tokenizer/);
    await rejectsWith(idm.predictNext([3], { logitBias: { the: 1 } }), 'ERR_INVALID_ARGUMENT', /logitBias key "the"/);
    await rejectsWith(idm.predictNext([3], { ban: ['5'] }), 'ERR_INVALID_ARGUMENT', /ban\[0\]/);
    await rejectsWith(idm.predictNext([3], { logitBias: { 30: 1 } }), 'ERR_INVALID_ARGUMENT', /logitBias key "30"/);
  });
});

describe('other options of the calls', () => {
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['generate details', () => m.generate({ prompt: words(3), details: 'yes' } as object), /details must be true or false/],
    ['generate onToken', () => m.generate({ prompt: words(3), onToken: 'print' } as object), /onToken must be a function/],
    ['generateStream onToken', () => m.generateStream({ prompt: words(3), onToken: 1 } as object).next(), /onToken/],
    ['beamSearch lengthPenalty < 0', () => m.beamSearch(words(3), { lengthPenalty: -0.5 }), /lengthPenalty/],
    ['beamSearch lengthPenalty NaN', () => m.beamSearch(words(3), { lengthPenalty: NaN }), /lengthPenalty/],
    ['beamSearch ban', () => m.beamSearch(words(3), { ban: ['zebra'] }), /ban\[0\]/],
    ['beamSearch prefix (not an option of it)', () => m.beamSearch(words(3), { prefix: 'c' } as object), /unknown option 'prefix'/],
    ['beamSearch signal', () => m.beamSearch(words(3), { signal: 'stop' } as object), /signal must be an AbortSignal/],
    ['beamSearch unknown option', () => m.beamSearch(words(3), { width: 3 } as object), /unknown option 'width'/],
    ['score tokenLogProbs', () => m.score(words(3), { tokenLogProbs: 1 } as object), /tokenLogProbs must be true or false/],
    ['score signal', () => m.score(words(3), { signal: {} } as object), /signal must be an AbortSignal/],
    ['score unknown option', () => m.score(words(3), { perToken: true } as object), /unknown option 'perToken'/],
    ['score of a bad input', () => m.score([words(3), 5] as unknown as string[]), /score input/],
    ['evaluate signal', () => m.evaluate(words(30), { signal: {} } as object), /signal must be an AbortSignal/],
    ['session.append signal', () => m.session().append(words(3), { signal: 1 } as object), /signal must be an AbortSignal/],
    ['session.append unknown option', () => m.session().append(words(3), { at: 0 } as object), /unknown option 'at'/],
    ['session.generate append', () => m.session().generate({ append: 'yes' } as object), /append must be true or false/],
    ['session.generate unknown option', () => m.session().generate({ keep: true } as object), /unknown option 'keep'/],
    ['session.score append', () => m.session().score(words(3), { append: 1 } as object), /append must be true or false/],
    ['session.score tokenLogProbs', () => m.session().score(words(3), { tokenLogProbs: 'no' } as object), /tokenLogProbs/],
    ['session.score unknown option', () => m.session().score(words(3), { topK: 3 } as object), /unknown option 'topK'/],
    ['session.score of nothing', () => m.session().score([]), /no tokens/],
    ['session.predictNext topK', () => m.session().predictNext({ topK: 0 }), /topK/],
  ];
  for (const [name, call, message] of cases) test(name, () => rejectsWith(call, 'ERR_INVALID_ARGUMENT', message));

  test('the model answers normally after all of them', async () => {
    expect(await m.predictNext(words(3))).toHaveLength(5);
    expect((await m.generate({ prompt: words(3), maxTokens: 3, details: true, stopAtEos: false })).ids).toHaveLength(3);
  });
});

describe('create and load: batching and maxBatchSize', () => {
  const bad: [object, RegExp][] = [
    [{ batching: 'yes' }, /batching must be true or false/],
    [{ batching: 1 }, /batching must be true or false/],
    [{ maxBatchSize: 0 }, /maxBatchSize must be an integer >= 1 and <= 4096/],
    [{ maxBatchSize: 5000 }, /maxBatchSize/],
    [{ maxBatchSize: 1.5 }, /maxBatchSize/],
    [{ maxBatchSize: '8' }, /maxBatchSize/],
    [{ batchingMode: 'on' }, /unknown option 'batchingMode'/],
  ];
  for (const [options, message] of bad) {
    test(`create and load refuse ${JSON.stringify(options)}`, async () => {
      await rejectsWith(LanguageModel.create({ vocabSize: 10, device: 'cpu', ...options }), 'ERR_INVALID_ARGUMENT', message);
      await rejectsWith(LanguageModel.load(path, { device: 'cpu', ...options }), 'ERR_INVALID_ARGUMENT', message);
    });
  }

  test('the accepted values: batching true/false, maxBatchSize 1 and 4096 (a model of maxBatchSize 1 still answers concurrent calls)', async () => {
    for (const options of [{ batching: false }, { batching: true, maxBatchSize: 1 }, { maxBatchSize: 4096 }]) {
      const x = await LanguageModel.load(path, { device: 'cpu', ...options });
      try {
        const got = await Promise.all([x.predictNext(words(3)), x.generate({ prompt: words(40), maxTokens: 3, seed: 1 }), x.score(words(5))]);
        expect(got).toHaveLength(3);
      } finally {
        x.dispose();
      }
    }
  });
});
