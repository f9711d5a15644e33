// The continuous cache pointer (lib/cache.ts) against a plain-JavaScript reference of Grave et al.'s
// definition, in float64: the whole text's log-probabilities and last-layer outputs from one
// forward pass, then for each target the mixture over the `size` most recent (h_i, x_{i+1}) pairs.
// Sizes smaller than a window, than the text and larger than it (the ring wraps, or never fills).
import { describe, expect, test } from 'vitest';
import { CharTokenizer, LanguageModel } from '../../lib/index';
import { cachePass, mixedLogProb, tuneCacheOn } from '../../lib/cache';
import { Network } from '../../lib/nn/network';
import { Random } from '../../lib/util/random';
import { backend } from '../helpers';

const V = 13, H = 6;
const ids = (() => {
  const r = new Random(3);
  return Int32Array.from({ length: 97 }, () => Math.floor(r.next() * r.next() * V)); // skewed: words repeat
})();

/** Reference: per target, log((1 - lambda) p_model + lambda p_cache) over the last `size` pairs. */
async function reference(net: Network, size: number, theta: number, lambda: number): Promise<number> {
  net.resetState(1);
  const N = ids.length - 1;
  const lp = Array.from(await net.stream.read(net.logProbs(ids.subarray(0, N), N, 1)));
  const h = Array.from(await net.stream.read(net.lastOutput));
  let nll = 0;
  for (let t = 0; t < N; t++) {
    const target = ids[t + 1];
    const pModel = Math.exp(lp[t * V + target]);
    const from = Math.max(0, t - size);
    if (t === from) {
      nll -= Math.log(pModel);
      continue;
    }
    const scores: number[] = [];
    for (let i = from; i < t; i++) {
      let dot = 0;
      for (let j = 0; j < H; j++) dot += h[t * H + j] * h[i * H + j];
      scores.push(theta * dot);
    }
    const max = Math.max(...scores);
    const z = scores.reduce((a, s) => a + Math.exp(s - max), 0);
    const hit = scores.reduce((a, s, k) => a + (ids[from + k + 1] === target ? Math.exp(s - max) : 0), 0);
    nll -= Math.log((1 - lambda) * pModel + lambda * (hit / z));
  }
  return nll / N;
}

describe('continuous cache', () => {
  const net = new Network(backend, { vocabSize: V, embeddingSize: 5, hiddenSize: H, layers: 2, cell: 'lstm', dropout: 0, tieWeights: false, dtype: 'f64', paddingIdx: -1 });
  net.initialize(8);
  for (const [size, seqLength] of [[5, 7], [30, 7], [1000, 10], [12, 40]] as const) {
    test(`size ${size}, windows of ${seqLength}: equals the definition (float64, 1e-12)`, async () => {
      const [theta, lambda] = [2.5, 0.3];
      let nll = 0;
      const n = await cachePass(net, ids, size, seqLength, (lp, view, target) => {
        nll -= mixedLogProb(lp, view, target, theta, lambda);
      });
      expect(n).toBe(ids.length - 1);
      const want = await reference(net, size, theta, lambda);
      expect(Math.abs(nll / n - want)).toBeLessThan(1e-12);
      // ... and the cache matters here: lambda 0 gives the model's own loss, which differs.
      expect(Math.abs(want - (await reference(net, size, theta, 0)))).toBeGreaterThan(1e-3);
    });
  }

  test('LanguageModel: evaluate with cache lambda 0 is plain evaluate; tuneCache picks the best of its grid; bad options are refused', async () => {
    const text = 'the cat sat on the mat . the dog sat on the log . '.repeat(30);
    const tokenizer = CharTokenizer.fit(text);
    const m = await LanguageModel.create({ tokenizer, embeddingSize: 8, hiddenSize: 16, layers: 1, device: 'cpu', seed: 2 });
    try {
      await m.fit(text, { epochs: 2, batchSize: 4, seqLength: 16, progress: false });
      const plain = await m.evaluate(text, { batchSize: 1 });
      const none = await m.evaluate(text, { cache: { lambda: 0 } });
      expect(none.tokens).toBe(plain.tokens);
      expect(Math.abs(none.loss - plain.loss)).toBeLessThan(1e-5);
      const tuned = await m.tuneCache(text, { size: 100, thetas: [0.1, 1], lambdas: [0.1, 0.5] });
      expect(tuned.baseline).toBeCloseTo(plain.perplexity, 3);
      for (const theta of [0.1, 1])
        for (const lambda of [0.1, 0.5]) {
          const p = (await m.evaluate(text, { cache: { size: 100, theta, lambda } })).perplexity;
          expect(p).toBeGreaterThanOrEqual(tuned.perplexity - 1e-6);
          if (theta === tuned.theta && lambda === tuned.lambda) expect(p).toBeCloseTo(tuned.perplexity, 6);
        }
      // A repetitive text: the cache helps.
      expect(tuned.perplexity).toBeLessThan(tuned.baseline);
      for (const [opts, message] of [
        [{ cache: { size: 0 } }, /evaluate: cache: size must be/],
        [{ cache: { lambda: 2 } }, /evaluate: cache: lambda must be/],
        [{ cache: {}, batchSize: 4 }, /with cache the text is read as one sequence; leave batchSize out/],
        [{ cache: {}, mode: 'sentences' }, /cache is for mode 'stream'/],
      ] as const) {
        const e = await m.evaluate(text, opts as never).catch((x) => x);
        expect(e.code).toBe('ERR_INVALID_ARGUMENT');
        expect(e.message).toMatch(message);
      }
      const e = await m.tuneCache(text, { thetas: [] }).catch((x) => x);
      expect(e.message).toMatch(/tuneCache: thetas must be 1 to 100 numbers/);
    } finally {
      m.dispose();
    }
  }, 60_000);

  test('tuneCache: a best theta at the grid\'s top edge is tried against larger ones, twice at most', async () => {
    // Made so that sharper attention is better: h_t ~ one-hot of the token just read (embedding I,
    // weight_ih 5 I, no recurrence), and a periodic text: the entries after the same token predict
    // the next one exactly, so p_cache(target) rises with theta.
    const n = 13;
    const sharp = new Network(backend, { vocabSize: n, embeddingSize: n, hiddenSize: n, layers: 1, cell: 'rnn_tanh', dropout: 0, tieWeights: false, dtype: 'f64', paddingIdx: -1 });
    try {
      sharp.initialize(1);
      const eye = (k: number) => Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? k : 0));
      sharp.writeParam('encoder.weight', eye(1));
      sharp.writeParam('rnn.weight_ih_l0', eye(5));
      sharp.writeParam('rnn.weight_hh_l0', new Float64Array(n * n));
      const text = Int32Array.from({ length: 90 }, (_, i) => [3, 7, 1, 9, 4, 11, 5][i % 7]);
      const t = { seqLength: 10, size: 30, thetas: [0.5, 1], lambdas: [0.3], extend: false };
      const grid = await tuneCacheOn(sharp, text, t);
      expect(grid.theta).toBe(1);
      const wide = await tuneCacheOn(sharp, text, { ...t, extend: true });
      expect(wide.theta).toBe(9); // 1.5, 2, 3 then 4.5, 6, 9: the best each time, and no third pass
      expect(wide.perplexity).toBeLessThan(grid.perplexity);
      let nll = 0;
      const count = await cachePass(sharp, text, 30, 10, (lp, view, target) => void (nll -= mixedLogProb(lp, view, target, 9, 0.3)));
      expect(Math.abs(Math.exp(nll / count) - wide.perplexity)).toBeLessThan(1e-9);
      // Where the best is not the largest theta (the untrained network prefers flat attention), nothing more is tried.
      expect((await tuneCacheOn(net, ids, { ...t, extend: true })).theta).toBe(0.5);
    } finally {
      sharp.dispose();
    }
  });

  test('a text of one token is refused', async () => {
    await expect(cachePass(net, Int32Array.from([1]), 5, 5, () => {})).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/at least 2 tokens/) });
  });
});
