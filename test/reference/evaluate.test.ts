// What evaluate and fit count: every target token of a text, whatever its length and the batch
// size (checked against references computed here from the network's log-probabilities), and,
// with token ids, every id alike: no id is padding, nothing is added to sentences of ids.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { RnnlmError } from '../../lib/errors';
import { networkOf } from '../../lib/advanced';
import { LanguageModel } from '../../lib/model';
import { CharTokenizer } from '../../lib/tokenizers';
import { Random } from '../../lib/util/random';

const dir = mkdtempSync(join(tmpdir(), 'rnnlm-evaluate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const V = 7;
const idModel = () => LanguageModel.create({ vocabSize: V, embeddingSize: 6, hiddenSize: 8, layers: 2, device: 'cpu', seed: 5 });

/** Random ids in [0, V), many of them 0. */
function randomIds(n: number, seed: number): number[] {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => (rng.next() < 0.3 ? 0 : Math.floor(rng.next() * V)));
}

/** Sum of -log p(ids[t + 1] | ids[0..t]) over a sequence run from a zero state in a batch of one. */
async function referenceNll(m: LanguageModel, ids: number[]): Promise<number> {
  const net = networkOf(m);
  const inputs = Int32Array.from(ids.slice(0, -1));
  net.resetState(1);
  const lp = (await net.stream.read(net.logProbs(inputs, inputs.length, 1))) as Float32Array;
  let nll = 0;
  for (let t = 0; t < inputs.length; t++) nll -= lp[t * V + ids[t + 1]];
  return nll;
}

describe('evaluate counts every target token', () => {
  test('tokens == N - 1 for any length, batch size and window (N = 2 included)', async () => {
    const m = await idModel();
    try {
      for (const N of [2, 3, 5, 11, 36, 37, 100]) {
        const ids = randomIds(N, N);
        for (const batchSize of [1, 2, 3, 10, 64]) {
          for (const seqLength of [1, 4, 35]) {
            const r = await m.evaluate(ids, { batchSize, seqLength });
            expect(r.tokens, `N ${N}, batchSize ${batchSize}, seqLength ${seqLength}`).toBe(N - 1);
            expect(Number.isFinite(r.loss)).toBe(true);
          }
        }
      }
    } finally {
      m.dispose();
    }
  });

  test('batchSize 1: the loss is the mean over every target, as a straightforward per-token reference computes it', async () => {
    const m = await idModel();
    try {
      for (const [N, seqLength] of [[2, 35], [25, 1], [25, 7], [80, 35]]) {
        const ids = randomIds(N, 100 + N);
        const r = await m.evaluate(ids, { batchSize: 1, seqLength });
        expect(r.loss).toBeCloseTo((await referenceNll(m, ids)) / (N - 1), 5);
      }
    } finally {
      m.dispose();
    }
  });

  test('batchSize > 1: overlapping columns, the remainder continuing the last one', async () => {
    const m = await idModel();
    try {
      for (const [N, B, T] of [[37, 4, 5], [100, 7, 35], [12, 10, 3]]) {
        const ids = randomIds(N, 200 + N);
        const b = Math.min(B, N - 1), c = Math.floor((N - 1) / b);
        // Column k scores ids[k·c + 1 .. (k + 1)·c]; the last one goes on to the end.
        let nll = 0;
        for (let k = 0; k < b; k++) nll += await referenceNll(m, ids.slice(k * c, k === b - 1 ? N : (k + 1) * c + 1));
        const r = await m.evaluate(ids, { batchSize: B, seqLength: T });
        expect(r.tokens).toBe(N - 1);
        expect(r.loss).toBeCloseTo(nll / (N - 1), 5);
      }
    } finally {
      m.dispose();
    }
  });

  test("a short text at the defaults: 'This program is free software.' has 29 targets, all scored", async () => {
    const text = 'This program is free software.';
    const tokenizer = CharTokenizer.fit(text);
    const m = await LanguageModel.create({ tokenizer, embeddingSize: 6, hiddenSize: 8, layers: 1, device: 'cpu' });
    try {
      const ids = Array.from(tokenizer.encode(text));
      const r = await m.evaluate(text);
      expect(r.tokens).toBe(ids.length - 1);
      const one = await m.evaluate(text, { batchSize: 1 });
      expect(one.tokens).toBe(ids.length - 1);
    } finally {
      m.dispose();
    }
  });
});

describe('token ids: no id is special', () => {
  test('a stream of ids containing 0: every target counts, in evaluate and in fit', async () => {
    const m = await idModel();
    try {
      const ids = randomIds(400, 1);
      expect(ids.filter((id) => id === 0).length).toBeGreaterThan(50);
      const r = await m.evaluate(ids, { batchSize: 1 });
      expect(r.tokens).toBe(ids.length - 1);
      expect(r.loss).toBeCloseTo((await referenceNll(m, ids)) / (ids.length - 1), 5);
      // Training: PyTorch's batchify, every target of its columns.
      const [log] = await m.fit(ids, { batchSize: 4, seqLength: 10, progress: false });
      expect(log.tokens).toBe((Math.floor(ids.length / 4) - 1) * 4);
    } finally {
      m.dispose();
    }
  });

  test("id 0 is a token like any other: its embedding row is trained", async () => {
    const m = await idModel();
    try {
      const net = networkOf(m);
      const inputs = Int32Array.from([0, 3, 0, 5]), targets = Int32Array.from([3, 0, 5, 0]);
      net.resetState(2);
      net.zeroGrad();
      net.forward({ seqLength: 2, batchSize: 2, inputs, targets }, { training: true });
      net.backward();
      const grad = await net.readGrad('encoder.weight');
      expect(Array.from(grad.subarray(0, 6)).some((g) => g !== 0)).toBe(true);
      expect((await net.readLoss()).count).toBe(4);
    } finally {
      m.dispose();
    }
  });

  test('sentences of ids are used as they are (nothing added), every id a target, padding not counted', async () => {
    const m = await idModel();
    try {
      const sentences = [[0, 5, 0], [3, 0], [1, 2, 3, 4, 0, 6], [0, 0]];
      const r = await m.evaluate(sentences, { mode: 'sentences', batchSize: 4 });
      expect(r.tokens).toBe(sentences.reduce((a, s) => a + s.length - 1, 0));
      let nll = 0;
      for (const s of sentences) nll += await referenceNll(m, s);
      expect(r.loss).toBeCloseTo(nll / r.tokens, 5);
      const [log] = await m.fit(sentences, { mode: 'sentences', batchSize: 3, progress: false });
      expect(log.tokens).toBe(r.tokens);
      await expect(m.evaluate([[1, 2], [4]], { mode: 'sentences' })).rejects.toMatchObject({
        code: 'ERR_INVALID_ARGUMENT',
        message: expect.stringMatching(/evaluate data\[1\] has 1 token id; a sentence of ids is used as it is \(no <sos> or <eos> is added\) and needs at least 2/),
      });
    } finally {
      m.dispose();
    }
  });

  test('a padded batch of id sentences gives id 0 (the padding input) no gradient when 0 is not in them', async () => {
    const m = await idModel();
    try {
      await m.fit([[1, 2, 3, 4, 5, 6], [2, 3]], { mode: 'sentences', batchSize: 2, shuffle: false, progress: false, optimizer: { type: 'sgd', lr: 1e-6 } });
      expect(Array.from((await networkOf(m).readGrad('encoder.weight')).subarray(0, 6))).toEqual(new Array(6).fill(0));
    } finally {
      m.dispose();
    }
  });
});

describe('validation text', () => {
  const text = 'the cat sees the dog. the dog sees the cat. '.repeat(8);
  const tokenizer = CharTokenizer.fit(text);
  const make = () => LanguageModel.create({ tokenizer, embeddingSize: 6, hiddenSize: 8, layers: 1, device: 'cpu', seed: 2 });

  test('too short to evaluate: refused before training (no step, no callback, no checkpoint)', async () => {
    const m = await make();
    try {
      const before = await networkOf(m).stream.read(networkOf(m).allParams);
      const path = join(dir, 'short-validation.safetensors');
      let called = false;
      let err: unknown;
      try {
        await m.fit(text, { epochs: 2, batchSize: 4, seqLength: 8, progress: false, validation: 't', checkpoint: { path }, onEpochEnd: () => void (called = true) });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RnnlmError);
      expect((err as RnnlmError).code).toBe('ERR_INVALID_ARGUMENT');
      expect((err as RnnlmError).message).toMatch(/^validation data has 1 token: scoring needs at least 2/);
      expect(called).toBe(false);
      expect(existsSync(path)).toBe(false);
      expect(await networkOf(m).stream.read(networkOf(m).allParams)).toEqual(before);
    } finally {
      m.dispose();
    }
  });

  test('two tokens are enough, and the epoch log agrees with evaluate', async () => {
    const m = await make();
    try {
      const [log] = await m.fit(text, { epochs: 1, batchSize: 4, seqLength: 8, progress: false, validation: 'th' });
      const r = await m.evaluate('th', { batchSize: 10, seqLength: 8 });
      expect(r.tokens).toBe(1);
      expect(log.valLoss).toBe(r.loss);
    } finally {
      m.dispose();
    }
  });
});
