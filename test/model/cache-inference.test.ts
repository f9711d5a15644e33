// The continuous cache on score, predictNext, generate and sessions (lib/inference/cached.ts)
// against a reference of Grave et al.'s mixture written here from the definition, in float64: the
// model's distribution and last-layer output at every position of the whole sequence from one
// forward pass, then at each position the mixture over the `size` most recent (h_i, x_{i+1}) pairs.
// A session holds the sequence across calls, so its answers must equal the reference of everything
// it was given, whatever the calls (appends in pieces, scores and generations that keep their
// tokens or not, forks, resets, aborts).
import { describe, expect, test } from 'vitest';
import type { CacheOptions } from '../../lib/cache';
import { LanguageModel, networkOf, type Prediction, type Score } from '../../lib/model';
import { EOS_ID, PAD_ID, SOS_ID } from '../../lib/tokenizers';
import { ids, rejectsWith, sentences, trained, words } from './runtime-fixtures';

type Settings = Required<CacheOptions>;

/** The mixture's log-distribution after each prefix seq[0..t], in float64 (an empty cache: the model's own). */
async function reference(m: LanguageModel, seq: number[], c: Settings): Promise<number[][]> {
  const net = networkOf(m);
  const N = seq.length, V = net.config.vocabSize, H = net.config.hiddenSize;
  net.resetState(1);
  const lp = await net.stream.read(net.logProbs(Int32Array.from(seq), N, 1));
  const h = await net.stream.read(net.lastOutput);
  const rows: number[][] = [];
  for (let t = 0; t < N; t++) {
    const p = Array.from({ length: V }, (_, w) => Math.exp(lp[t * V + w]));
    const from = Math.max(0, t - c.size);
    if (t === from) {
      rows.push(p.map(Math.log));
      continue;
    }
    const scores: number[] = [];
    for (let i = from; i < t; i++) {
      let dot = 0;
      for (let j = 0; j < H; j++) dot += h[t * H + j] * h[i * H + j];
      scores.push(c.theta * dot);
    }
    const max = Math.max(...scores);
    const z = scores.reduce((a, s) => a + Math.exp(s - max), 0);
    const mix = p.map((x) => (1 - c.lambda) * x);
    scores.forEach((s, k) => (mix[seq[from + k + 1]] += (c.lambda * Math.exp(s - max)) / z));
    rows.push(mix.map(Math.log));
  }
  return rows;
}

const TOL = 2e-5;

/** predictNext's answer is the reference row's top tokens, with its probabilities. */
function expectTop(got: Prediction[], row: number[], exclude: Set<number>, what: string) {
  const want = row.map((lp, id) => ({ id, lp })).filter((x) => !exclude.has(x.id)).sort((a, b) => b.lp - a.lp);
  got.forEach((p, k) => expect(Math.abs(p.probability - Math.exp(row[p.id])), `${what}: token ${p.id}`).toBeLessThan(TOL));
  // The same set up to ties within the tolerance: each returned token at least as likely as the first one left out.
  const left = want.find((x) => !got.some((p) => p.id === x.id))!;
  for (const p of got) expect(Math.log(p.probability), what).toBeGreaterThan(left.lp - TOL);
  expect(got.length).toBe(Math.min(got.length, want.length));
}

describe('the continuous cache on inference calls', () => {
  const c: Settings = { size: 9, theta: 0.7, lambda: 0.3 }; // small: the ring wraps within the tests
  const specials = new Set([PAD_ID, SOS_ID]); // never predicted nor drawn

  test('score and predictNext equal the definition; lambda 0 is no cache; each input has its own cache', async () => {
    const m = await trained();
    try {
      const seq = ids(40);
      const rows = await reference(m, seq, c);
      const sc = await m.score(seq, { cache: c, tokenLogProbs: true });
      expect(sc.tokens).toBe(39);
      sc.tokenLogProbs!.forEach((lp, k) => expect(Math.abs(lp - rows[k][seq[k + 1]]), `token ${k + 1}`).toBeLessThan(TOL));
      // The cache matters here (a repetitive grammar): the mixture differs from the model.
      const plain = await m.score(seq, { tokenLogProbs: true });
      expect(Math.abs(plain.logProb - sc.logProb)).toBeGreaterThan(0.1);
      const none = await m.score(seq, { cache: { ...c, lambda: 0 }, tokenLogProbs: true });
      expect(Math.abs(none.logProb - plain.logProb)).toBeLessThan(1e-4);
      // Several inputs: each scored with its own cache, as alone.
      const [a, b] = await m.score([seq, ids(25, 100)], { cache: c });
      expect(Math.abs(a.logProb - sc.logProb)).toBeLessThan(1e-5);
      expect(Math.abs(b.logProb - (await m.score(ids(25, 100), { cache: c })).logProb)).toBeLessThan(1e-5);
      // score equals evaluate with the same cache (one text).
      const ev = await m.evaluate(seq, { cache: c });
      expect(Math.abs(ev.loss + sc.logProb / sc.tokens)).toBeLessThan(1e-6);

      for (const n of [1, 12, 40]) {
        const r = n === 40 ? rows : await reference(m, seq.slice(0, n), c);
        expectTop(await m.predictNext(seq.slice(0, n), { cache: c, topK: 6 }), r[n - 1], specials, `context of ${n}`);
      }
    } finally {
      m.dispose();
    }
  });

  test('generate with a cache draws from the mixture: its log-probabilities are the definition\'s of what it drew', async () => {
    const m = await trained();
    try {
      const prompt = ids(15, 30);
      const g = await m.generate({ prompt: words(15, 30), cache: c, seed: 5, maxTokens: 12, stopAtEos: false, details: true, topLogProbs: 3 });
      expect(g.ids.length).toBe(12);
      const seq = [...prompt, ...g.ids];
      const rows = await reference(m, seq, c);
      g.ids.forEach((id, k) => expect(Math.abs(g.logProbs[k] - rows[prompt.length - 1 + k][id]), `token ${k}`).toBeLessThan(TOL));
      // topLogProbs rank the mixture too.
      g.topLogProbs!.forEach((top, k) => top.forEach((t) => expect(Math.abs(t.logProb - rows[prompt.length - 1 + k][t.id])).toBeLessThan(TOL)));
      // Seeded: the same draws again; greedy = the mixture's argmax path.
      expect((await m.generate({ prompt: words(15, 30), cache: c, seed: 5, maxTokens: 12, stopAtEos: false, details: true })).ids).toEqual(g.ids);
      const greedy = await m.generate({ prompt: words(15, 30), cache: c, temperature: 0, maxTokens: 6, stopAtEos: false, details: true });
      const gr = await reference(m, [...prompt, ...greedy.ids], c);
      greedy.ids.forEach((id, k) => {
        const row = gr[prompt.length - 1 + k];
        const best = row.reduce((b, lp, w) => (!specials.has(w) && lp > row[b] ? w : b), EOS_ID);
        expect(row[id]).toBeGreaterThan(row[best] - TOL);
      });
    } finally {
      m.dispose();
    }
  });

  test('a session with a cache answers as the definition over everything it holds, whatever the calls', async () => {
    const m = await trained();
    try {
      const s = m.session({ cache: c });
      let seq: number[] = [];
      const check = async (what: string) => {
        const rows = await reference(m, seq, c);
        expectTop(await s.predictNext({ topK: 5 }), rows[seq.length - 1], specials, what);
      };
      // Appends in pieces (the ring of 9 wraps).
      for (const [from, n] of [[0, 3], [3, 1], [4, 11], [15, 6]]) {
        await s.append(ids(n, from));
        seq = [...seq, ...ids(n, from)];
        await check(`after appending ${n}`);
      }
      // A score that does not keep its tokens (longer than the cache: every slot is overwritten, then restored).
      const x = ids(14, 200);
      const rows = await reference(m, [...seq, ...x], c);
      const got = await s.score(x, { tokenLogProbs: true });
      // Term k scores x[k] after seq and x[0..k).
      got.tokenLogProbs!.forEach((lp, k) => expect(Math.abs(lp - rows[seq.length - 1 + k][x[k]]), `score term ${k}`).toBeLessThan(TOL));
      await check('after a score without append');
      // generate without and with append.
      await s.generate({ seed: 2, maxTokens: 10, stopAtEos: false });
      await check('after generate without append');
      const g = await s.generate({ seed: 3, maxTokens: 7, stopAtEos: false, append: true, details: true });
      const gr = await reference(m, [...seq, ...g.ids], c);
      g.ids.forEach((id, k) => expect(Math.abs(g.logProbs[k] - gr[seq.length - 1 + k][id])).toBeLessThan(TOL));
      seq = [...seq, ...g.ids];
      await check('after generate with append');
      await s.score(x, { append: true });
      seq = [...seq, ...x];
      await check('after a score with append');
      // A generation that keeps its tokens, aborted midway, leaves the session (state and memory) as it was.
      const ac = new AbortController();
      let drawn = 0;
      const onToken = () => void (++drawn === 4 && ac.abort(new Error('stop')));
      await expect(s.generate({ seed: 9, maxTokens: 20, stopAtEos: false, append: true, signal: ac.signal, onToken })).rejects.toThrow('stop');
      expect(drawn).toBe(4);
      await check('after an aborted generate');

      // A fork continues from a copy; the two then differ.
      const f = s.fork();
      await f.append(ids(5, 400));
      await s.append(ids(3, 500));
      const fseq = [...seq, ...ids(5, 400)];
      seq = [...seq, ...ids(3, 500)];
      await check('the parent after the fork');
      expectTop(await f.predictNext({ topK: 5 }), (await reference(m, fseq, c))[fseq.length - 1], specials, 'the fork');
      // Reset: an empty memory again.
      s.reset();
      await s.append(ids(4, 600));
      seq = ids(4, 600);
      await check('after reset');
      f.dispose();
      s.dispose();
    } finally {
      m.dispose();
    }
  });

  test('a sentence model scores <sos> text <eos> with the cache; calls with and without caches run together', async () => {
    const m = await trained({}, 'sentences');
    try {
      const text = sentences(3, 9).join(' ');
      const tok = Array.from(m.tokenizer!.encode(text));
      const seq = [SOS_ID, ...tok, EOS_ID];
      const rows = await reference(m, seq, c);
      const sc = await m.score(text, { cache: c, tokenLogProbs: true });
      expect(sc.tokens).toBe(tok.length + 1);
      sc.tokenLogProbs!.forEach((lp, k) => expect(Math.abs(lp - rows[k][seq[k + 1]])).toBeLessThan(TOL));

      // Concurrently: batched calls and calls with caches (which take turns on the network) answer as alone.
      const alone = [await m.score(text, { cache: c }), await m.generate({ prompt: 'the cat', seed: 1, maxTokens: 8 }), await m.predictNext('the dog', { cache: c })];
      const [score, text2, top] = await Promise.all([m.score(text, { cache: c }), m.generate({ prompt: 'the cat', seed: 1, maxTokens: 8 }), m.predictNext('the dog', { cache: c })]);
      expect(Math.abs(score.logProb - (alone[0] as Score).logProb)).toBeLessThan(1e-5);
      expect(text2).toBe(alone[1]);
      expect(top.map((p) => p.id)).toEqual((alone[2] as Prediction[]).map((p) => p.id));
    } finally {
      m.dispose();
    }
  });

  test('a call with a cache waiting its turn rejects at once when aborted, and with ERR_DISPOSED when the model goes', async () => {
    const m = await trained();
    const long = Array.from({ length: 20 }, (_, i) => ids(100, i * 10)).flat();
    let firstDone = false;
    const first = m.score(long, { cache: c }).then((r) => ((firstDone = true), r));
    const ac = new AbortController();
    const second = m.score(long, { cache: c, signal: ac.signal });
    ac.abort(new Error('no longer'));
    await expect(second).rejects.toThrow('no longer');
    expect(firstDone).toBe(false); // it did not wait for the call before it
    expect((await first).tokens).toBe(long.length - 1);
    const s = m.session({ cache: c });
    await s.append(ids(30));
    const third = m.score(long, { cache: c }), fourth = s.predictNext();
    m.dispose();
    await rejectsWith(third, 'ERR_DISPOSED');
    await rejectsWith(fourth, 'ERR_DISPOSED');
  });

  test('lambda 0 draws what no cache draws; lambda 1 with every cached word banned is refused; tuneCache\'s result passes as a cache; long windows are cut', async () => {
    const m = await trained();
    try {
      const prompt = words(20, 40);
      for (const extra of [{}, { topK: 5 }, { temperature: 0.7 }]) {
        const plain = await m.generate({ prompt, seed: 4, maxTokens: 15, stopAtEos: false, details: true, ...extra });
        const zero = await m.generate({ prompt, seed: 4, maxTokens: 15, stopAtEos: false, details: true, cache: { lambda: 0 }, ...extra });
        expect(zero.ids).toEqual(plain.ids);
      }
      // lambda 1: only the cache's words have probability; ban them all and nothing can be drawn.
      const seen = [...new Set(ids(20, 40))].map((id) => m.tokenizer!.tokenOf(id));
      for (const extra of [{ temperature: 0 }, { seed: 1 }, { seed: 1, topK: 5 }]) {
        await rejectsWith(m.generate({ prompt, cache: { lambda: 1 }, ban: seen, maxTokens: 3, ...extra }), 'ERR_INVALID_ARGUMENT', /no token can be drawn/);
      }
      const tuned = await m.tuneCache(words(200), { size: 50 });
      expect((await m.evaluate(words(200), { cache: tuned })).perplexity).toBeCloseTo(tuned.perplexity, 6);
      // evaluate's seqLength only cuts the text into windows: past 128 it is cut at 128 (the [T, T] products).
      const net = networkOf(m), alloc = net.stream.alloc.bind(net.stream);
      let largest = 0;
      Object.defineProperty(net.stream, 'alloc', { configurable: true, value: (d: never, n: number) => ((largest = Math.max(largest, n)), alloc(d, n)) });
      const long = await m.evaluate(words(1000), { cache: { size: 50 }, seqLength: 65536 });
      expect(largest).toBeLessThan(128 * 128 + 1000);
      expect(Math.abs(long.loss - (await m.evaluate(words(1000), { cache: { size: 50 }, seqLength: 35 })).loss)).toBeLessThan(1e-6);
    } finally {
      m.dispose();
    }
  });

  test('bad cache options are refused, naming the call', async () => {
    const m = await trained();
    try {
      await rejectsWith(m.predictNext('the cat', { cache: { size: 0 } }), 'ERR_INVALID_ARGUMENT', /predictNext: cache: size must be/);
      await rejectsWith(m.score('the cat sees', { cache: { lambda: 2 } }), 'ERR_INVALID_ARGUMENT', /score: cache: lambda must be/);
      await rejectsWith(m.generate({ cache: { theta: 0 } }), 'ERR_INVALID_ARGUMENT', /generate: cache: theta must be/);
      await rejectsWith(m.predictNext('the cat', { cache: { size: 5, colour: 1 } as never }), 'ERR_INVALID_ARGUMENT', /colour/);
      expect(() => m.session({ cache: { size: 1.5 } })).toThrow(/session: cache: size must be/);
      const s = m.session({ cache: {} });
      await rejectsWith(s.predictNext({ cache: {} } as never), 'ERR_INVALID_ARGUMENT', /a session's cache is set when the session is made/);
      await rejectsWith(s.score('the cat', { cache: {} } as never), 'ERR_INVALID_ARGUMENT', /a session's cache is set when the session is made/);
      await rejectsWith(m.beamSearch('the cat', { cache: {} } as never), 'ERR_INVALID_ARGUMENT', /cache/);
      s.dispose();
    } finally {
      m.dispose();
    }
  });
});
