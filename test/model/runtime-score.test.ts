// score against evaluate (the same tokens scored, the same total) and against predictNext (each
// term is the log of the probability predictNext gives), in both data modes.
import { describe, expect, test } from 'vitest';
import { LanguageModel } from '../../lib/model';
import { UNK_ID } from '../../lib/tokenizers';
import { TOKENIZER, aloneTwin, ids, maxDiff, rejectsWith, sentences, trained, words } from './runtime-fixtures';

const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('score and evaluate agree', () => {
  test('stream mode: evaluate(text, { batchSize: 1 }) loss * tokens = -score(text).logProb, the same tokens', async () => {
    const m = await trained();
    try {
      for (const n of [2, 3, 40, 200]) {
        const text = words(n, 5); // 200 tokens: several of evaluate's 35-step windows, several of score's 32-token chunks
        const e = await m.evaluate(text, { batchSize: 1 });
        const s = await m.score(text);
        expect(s.tokens, `${n} tokens`).toBe(n - 1);
        expect(e.tokens).toBe(s.tokens);
        expect(relative(e.loss * e.tokens, -s.logProb), `${n} tokens`).toBeLessThanOrEqual(1e-4);
        expect(relative(s.perplexity, Math.exp(-s.logProb / s.tokens))).toBeLessThanOrEqual(1e-12);
        expect(relative(s.perplexity, e.perplexity)).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      m.dispose();
    }
  });

  test('sentences mode: evaluate(sentences) loss * tokens = -(sum of score(each).logProb); score(array) gives one Score per input, in order', async () => {
    const m = await trained({}, 'sentences');
    try {
      expect(m.mode).toBe('sentences');
      const some = [...sentences(12, 9), words(1), words(60, 3)]; // a one-word sentence, a long one
      const e = await m.evaluate(some);
      const each = await m.score(some, { tokenLogProbs: true });
      expect(each).toHaveLength(some.length);
      for (let i = 0; i < some.length; i++) {
        const alone = await m.score(some[i], { tokenLogProbs: true });
        // <sos> text <eos>: the text's tokens and <eos> are scored.
        expect(alone.tokens).toBe(TOKENIZER.encode(some[i]).length + 1);
        expect(each[i].tokens).toBe(alone.tokens);
        expect(relative(each[i].logProb, alone.logProb)).toBeLessThanOrEqual(1e-4);
        expect(maxDiff(each[i].tokenLogProbs!, alone.tokenLogProbs!)).toBeLessThanOrEqual(1e-5);
      }
      const total = each.reduce((a, s) => a + s.logProb, 0);
      expect(e.tokens).toBe(each.reduce((a, s) => a + s.tokens, 0));
      expect(relative(e.loss * e.tokens, -total)).toBeLessThanOrEqual(1e-4);
    } finally {
      m.dispose();
    }
  });

  test('tokenLogProbs: each term is the log of what predictNext gives that token, and they sum to logProb', async () => {
    for (const mode of ['stream', 'sentences'] as const) {
      const m = await trained({ cell: 'gru' }, mode);
      try {
        const x = ids(20, 40);
        const s = await m.score(x, { tokenLogProbs: true });
        const V = m.config.vocabSize - 2; // every token but <pad> and <sos>
        expect(s.tokenLogProbs).toHaveLength(s.tokens);
        expect(Math.abs(s.tokenLogProbs!.reduce((a, b) => a + b, 0) - s.logProb)).toBeLessThanOrEqual(1e-9 * Math.abs(s.logProb));
        // Stream: term k scores token k + 1 after tokens 0..k; sentences: token k after <sos> and tokens 0..k-1, then <eos>.
        const targets = mode === 'stream' ? x.slice(1) : [...x, 3];
        for (let k = 0; k < targets.length; k += 4) {
          const context = mode === 'stream' ? x.slice(0, k + 1) : x.slice(0, k);
          const p = (await m.predictNext(context, { topK: V })).find((q) => q.id === targets[k])!;
          expect(Math.abs(s.tokenLogProbs![k] - Math.log(p.probability)), `${mode} term ${k}`).toBeLessThanOrEqual(1e-5);
        }
        expect((await m.score(x)).tokenLogProbs).toBeUndefined();
      } finally {
        m.dispose();
      }
    }
  });

  test('a large vocabulary (50,000): the scored positions of a step go through the decoder in several passes; the same scores', async () => {
    // The scheduler bounds its [positions, vocabulary] scratch: 4 inputs x 32 positions per step exceed one pass here.
    const m = await LanguageModel.create({ vocabSize: 50_000, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu', seed: 5 });
    const alone = await aloneTwin(m);
    try {
      const inputs = [0, 1, 2, 3].map((k) => Array.from({ length: 100 + 7 * k }, (_, i) => (i * 7919 + k * 104_729) % 50_000));
      const many = await m.score(inputs, { tokenLogProbs: true });
      for (let k = 0; k < inputs.length; k++) {
        const one = await alone.score(inputs[k], { tokenLogProbs: true });
        expect(many[k].tokens).toBe(one.tokens);
        expect(maxDiff(many[k].tokenLogProbs!, one.tokenLogProbs!), `input ${k}`).toBeLessThanOrEqual(1e-5);
        const e = await m.evaluate(inputs[k], { batchSize: 1 });
        expect(relative(e.loss * e.tokens, -many[k].logProb)).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      m.dispose();
      alone.dispose();
    }
  });

  test('unknown counts the scored <unk> tokens (a word out of the vocabulary); 0 for a model of token ids', async () => {
    const m = await trained();
    const sm = await trained({}, 'sentences');
    const idm = await LanguageModel.create({ vocabSize: 30, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu' });
    try {
      const text = 'zebra the cat sees a xylophone and the dog sees a quokka .';
      const encoded = Array.from(TOKENIZER.encode(text));
      const unk = encoded.filter((id) => id === UNK_ID).length;
      expect(unk).toBe(4); // zebra, xylophone, and, quokka: the premise of this test
      expect(encoded[0]).toBe(UNK_ID);
      // Stream mode: the first token is context only.
      const s = await m.score(text);
      expect(s.unknown).toBe(unk - 1);
      expect(s.tokens).toBe(encoded.length - 1);
      // Sentences mode: every token is scored (and <eos>).
      const t = await sm.score(text);
      expect(t.unknown).toBe(unk);
      expect((await m.score(words(30))).unknown).toBe(0);
      // The evaluation of the same text counts the same targets.
      expect((await m.evaluate(text, { batchSize: 1 })).tokens).toBe(s.tokens);
      // A model of token ids has no <unk>: id 1 is a token like any other.
      expect((await idm.score([1, 1, 2, 1])).unknown).toBe(0);
    } finally {
      m.dispose();
      sm.dispose();
      idm.dispose();
    }
  });

  test('a stream model refuses to score fewer than 2 tokens; a sentence model scores one word and <eos>', async () => {
    const m = await trained();
    const sm = await trained({}, 'sentences');
    try {
      await rejectsWith(m.score(words(1)), 'ERR_INVALID_ARGUMENT', /score input has 1 token/);
      await rejectsWith(m.score([5]), 'ERR_INVALID_ARGUMENT', /at least 2/);
      await rejectsWith(m.score([words(3), words(1)]), 'ERR_INVALID_ARGUMENT', /score input \[1\]/);
      expect((await sm.score(words(1))).tokens).toBe(2);
    } finally {
      m.dispose();
      sm.dispose();
    }
  });
});
