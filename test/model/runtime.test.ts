// The inference runtime (lib/runtime, lib/inference): continuous batching returns what each
// request returns alone, and sessions hold the state that the model's calls over the whole
// context have. More in runtime-score, runtime-controls, runtime-access and runtime-input.
import { describe, expect, test } from 'vitest';
import { LanguageModel, networkOf, type Generation, type Prediction, type Score, type Session, type TokenIds } from '../../lib/model';
import { EOS_ID } from '../../lib/tokenizers';
import {
  CELLS, TOKENIZER, aloneTwin, sentences, distribution, expectSameGeneration, expectSamePredictions, expectSameScore, ids,
  maxDiff, rejectsWith, rowsSeen, tiny, trained, words,
} from './runtime-fixtures';

/** What a request returned, in a form two models' answers can be compared in. */
type Outcome =
  | { gen: Generation }
  | { pred: Prediction[] }
  | { score: Score | Score[] }
  | { parts: Outcome[] };

function expectSame(got: Outcome, want: Outcome, what: string) {
  if ('gen' in want) expectSameGeneration((got as { gen: Generation }).gen, want.gen, what);
  else if ('pred' in want) expectSamePredictions((got as { pred: Prediction[] }).pred, want.pred, what);
  else if ('score' in want) {
    const g = [(got as { score: Score | Score[] }).score].flat(), w = [want.score].flat();
    expect(g.length, what).toBe(w.length);
    w.forEach((s, i) => expectSameScore(g[i], s, `${what} [${i}]`));
  } else {
    const g = (got as { parts: Outcome[] }).parts;
    expect(g.length, what).toBe(want.parts.length);
    want.parts.forEach((p, i) => expectSame(g[i], p, `${what} part ${i}`));
  }
}

/** A request; `tick` (when given) is called after each token that a generation produces. */
type Request = (m: LanguageModel, tick?: (n: number) => void) => Promise<Outcome>;
const gen = (options: Parameters<LanguageModel['generate']>[0]): Request => async (m, tick) => {
  let n = 0;
  return { gen: await m.generate({ ...options, details: true, onToken: () => tick?.(++n) }) };
};
const pred = (context: string | TokenIds, options = {}): Request => async (m) => ({ pred: await m.predictNext(context, options) });
const score = (input: string | TokenIds | string[]): Request => async (m) => ({ score: await m.score(input as string, { tokenLogProbs: true }) });
const session: Request = async (m) => {
  const s = m.session();
  await s.append(words(45, 100)); // two chunks and more
  const parts: Outcome[] = [{ pred: await s.predictNext({ topK: 6 }) }];
  parts.push({ gen: await s.generate({ seed: 105, maxTokens: 6, append: true, details: true, stopAtEos: false }) });
  await s.append(ids(3, 200));
  parts.push({ pred: await s.predictNext({ topK: 6 }) });
  parts.push({ score: await s.score(words(4, 300), { tokenLogProbs: true }) });
  s.dispose();
  return { parts };
};

/**
 * 15 requests of every kind: prompts of 0 to 100 tokens (more than PREFILL_CHUNK = 32: fed in
 * chunks), sampling with seeds, greedy, top-k / top-p, host-side draws (bias, a long ban list),
 * ending by length, <eos> and stop strings.
 */
const WAVE1: Request[] = [
  gen({ prompt: words(5), seed: 101, maxTokens: 40, stopAtEos: false }),
  gen({ prompt: words(40, 10), temperature: 0, maxTokens: 3 }),
  gen({ prompt: Int32Array.from(ids(70, 20)), topK: 4, seed: 102, maxTokens: 12 }),
  pred(words(100, 30), { topK: 8 }),
  score(words(80, 40)),
  gen({ seed: 103, temperature: 0.9, topP: 0.8, maxTokens: 30, stop: ['.', '!'] }),
];
const WAVE2: Request[] = [
  gen({ prompt: words(33, 50), seed: 104, maxTokens: 30, logitBias: { '<eos>': 3 } }),
  pred(ids(2, 60), { topK: 5 }),
  score([words(3, 70), words(50, 80), words(10, 90)]),
  session,
];
const WAVE3: Request[] = [
  gen({ prompt: words(1, 110), seed: 106, maxTokens: 20, ban: Array.from({ length: 18 }, (_, i) => 4 + i) }),
  gen({ prompt: words(36, 120), seed: 107, temperature: 1.3, maxTokens: 25, stop: ['s the', 'xyz'] }),
  pred(words(6, 130), { prefix: 'c', topK: 10 }),
  gen({ prompt: [], seed: 108, maxTokens: 9, topK: 3, temperature: 0.7 }),
  gen({ prompt: words(12, 140), seed: 109, maxTokens: 10, prefix: 'c', stopAtEos: false }), // first draw on the host, then the device
];
const ALL = [...WAVE1, ...WAVE2, ...WAVE3];

/** Runs ALL on m in three waves, then each alone on the batching-off twin: the same answers. Returns the most rows stepped together. */
async function batchedEqualsAlone(m: LanguageModel, alone: LanguageModel, what: string): Promise<number> {
  const rows = rowsSeen(m), aloneRows = rowsSeen(alone);
  const results: Promise<Outcome>[] = [];
  // Wave 2 starts once request 0 has produced 3 tokens; wave 3 once request 1 has ended.
  results.push(WAVE1[0](m, (n) => {
    if (n === 3) results.push(...WAVE2.map((r) => r(m)));
  }));
  results.push(...WAVE1.slice(1).map((r) => r(m)));
  await results[1];
  expect(results).toHaveLength(WAVE1.length + WAVE2.length); // wave 2 came first
  results.push(...WAVE3.map((r) => r(m)));
  const got = await Promise.all(results);
  // Results in request order: wave 1, 2, 3 as listed.
  for (let i = 0; i < ALL.length; i++) expectSame(got[i], await ALL[i](alone), `${what} request ${i}`);
  expect(aloneRows.max).toBe(1);
  const reasons = new Set(got.filter((o): o is { gen: Generation } => 'gen' in o).map((o) => o.gen.finishReason));
  expect([...reasons].sort()).toEqual(['eos', 'length', 'stop']);
  return rows.max;
}

describe('batched = alone', () => {
  for (const cell of CELLS) {
    test(`${cell}: ${ALL.length} requests arriving and ending at different steps return what each returns alone`, async () => {
      const m = await trained({ cell });
      const alone = await aloneTwin(m);
      try {
        expect(await batchedEqualsAlone(m, alone, cell)).toBeGreaterThanOrEqual(6); // the requests did share steps
      } finally {
        m.dispose();
        alone.dispose();
      }
    });
  }

  test('batching off: concurrent requests are served one at a time, in arrival order', async () => {
    const m = await tiny({ batching: false });
    try {
      const events: string[] = [];
      const calls = [0, 1, 2, 3].map((k) => {
        const done = (v: unknown) => (events.push(`${k} done`), v);
        if (k === 2) return m.predictNext(words(40)).then(done);
        if (k === 3) return m.score(words(40)).then(done);
        return m.generate({ prompt: words(3 + 30 * k), maxTokens: 3, stopAtEos: false, seed: k, onToken: () => events.push(`${k} token`) }).then(done);
      });
      await Promise.all(calls);
      expect(events).toEqual(['0 token', '0 token', '0 token', '0 done', '1 token', '1 token', '1 token', '1 done', '2 done', '3 done']);
    } finally {
      m.dispose();
    }
  });

  test('maxBatchSize 3: the requests wait for rows and return the same; never more than 3 rows at once', async () => {
    const m = await trained({ maxBatchSize: 3 });
    const alone = await aloneTwin(m);
    try {
      expect(await batchedEqualsAlone(m, alone, 'maxBatchSize 3')).toBe(3);
    } finally {
      m.dispose();
      alone.dispose();
    }
  });
});

test('batched rows that draw alike are sampled by one op a step (their seeds read from the device), with the same tokens as alone', async () => {
  const m = await trained({});
  const alone = await aloneTwin(m);
  try {
    const calls = Array.from({ length: 8 }, (_, i) => ({ prompt: ids(3, 40 + i), maxTokens: 40, stopAtEos: false, seed: 900 + i, details: true }) as const);
    const s = networkOf(m).stream, sample = s.sample.bind(s);
    let ops = 0, rows = 0;
    Object.defineProperty(s, 'sample', { value: (...a: Parameters<typeof sample>) => void (ops++, (rows += a[0].shape[0]), sample(...a)) });
    const together = await Promise.all(calls.map((c) => m.generate(c)));
    for (const [i, c] of calls.entries()) expectSameGeneration(together[i], await alone.generate(c), `request ${i}`);
    // Every token was drawn on the device (320 rows), in far fewer ops than rows.
    expect(rows).toBe(8 * 40);
    expect(ops).toBeLessThan(rows / 4);
  } finally {
    m.dispose();
    alone.dispose();
  }
});

describe('sessions', () => {
  // Three kinds of model: a word model trained on a stream, one trained on sentences (its session
  // starts after <sos>), and a model of token ids.
  const kinds = [
    { name: 'stream word model', make: () => trained() },
    { name: 'sentence word model', make: () => trained({}, 'sentences') },
    { name: 'model of token ids', make: () => LanguageModel.create({ vocabSize: 60, embeddingSize: 16, hiddenSize: 16, layers: 2, device: 'cpu', seed: 3 }) },
  ];
  const all = (m: LanguageModel) => ({ topK: m.config.vocabSize - (m.tokenizer ? 2 : 0) });
  const same = async (a: Promise<Prediction[]>, b: Promise<Prediction[]>, what: string) => {
    const [x, y] = [await distribution(a), await distribution(b)];
    expect([...x.keys()].sort(), what).toEqual([...y.keys()].sort());
    expect(maxDiff([...x.keys()].map((k) => x.get(k)!), [...x.keys()].map((k) => y.get(k)!)), what).toBeLessThanOrEqual(1e-5);
  };

  for (const { name, make } of kinds) {
    test(`${name}: predictNext after appends = model.predictNext(whole context); a long context in pieces; fork; reset`, async () => {
      const m = await make();
      try {
        const V = all(m);
        const s = m.session();
        expect(s.length).toBe(0);
        await same(s.predictNext(V), m.predictNext([], V), 'no tokens yet');
        await s.append(ids(3));
        await same(s.predictNext(V), m.predictNext(ids(3), V), 'one append');
        await s.append(ids(5, 3));
        await s.append(ids(1, 8));
        await same(s.predictNext(V), m.predictNext(ids(9), V), 'three appends');
        // > 100 tokens in pieces of 7, 40, 60 and 1.
        for (const [from, n] of [[9, 7], [16, 40], [56, 60], [116, 1]]) await s.append(ids(n, from));
        await same(s.predictNext(V), m.predictNext(ids(117), V), '117 tokens in pieces');
        const sentence = m.mode === 'sentences' ? 1 : 0; // the <sos> it started with
        expect(s.length).toBe(117 + sentence);

        const f = s.fork();
        await f.append(ids(4, 200));
        await same(f.predictNext(V), m.predictNext([...ids(117), ...ids(4, 200)], V), 'the fork');
        await same(s.predictNext(V), m.predictNext(ids(117), V), 'the parent after the fork appended');
        expect(f.length).toBe(s.length + 4);
        await s.append(ids(2, 300));
        await same(f.predictNext(V), m.predictNext([...ids(117), ...ids(4, 200)], V), 'the fork after the parent appended');

        s.reset();
        await same(s.predictNext(V), m.predictNext([], V), 'after reset');
        expect(s.length).toBe(0);
        await s.append(ids(6, 400));
        await same(s.predictNext(V), m.predictNext(ids(6, 400), V), 'after reset');
        s.dispose();
        f.dispose();
      } finally {
        m.dispose();
      }
    });

    test(`${name}: generate (with and without append), score (with and without append)`, async () => {
      const m = await make();
      try {
        const V = all(m);
        const ctx = ids(40);
        const s = m.session();
        await s.append(ctx);
        // generate without append leaves the state as it was.
        await s.generate({ seed: 1, maxTokens: 5 });
        await same(s.predictNext(V), m.predictNext(ctx, V), 'after generate without append');
        // Twice with append, the second time ending at <eos> if a tokenizer model draws it.
        let context = [...ctx];
        // Ending by length, by <eos> if a tokenizer model draws it, and by a stop string (the ids up to the one completing it).
        const eosBias: Record<string, number> = m.tokenizer ? { '<eos>': 4 } : {};
        const stop = m.tokenizer ? 'the' : '5';
        const reasons = new Set<string>();
        for (const options of [{ seed: 2, maxTokens: 7, stopAtEos: false }, { seed: 3, maxTokens: 30, logitBias: eosBias }, { seed: 4, maxTokens: 40, stop, stopAtEos: false }]) {
          const g = await s.generate({ ...options, append: true, details: true });
          reasons.add(g.finishReason);
          context = [...context, ...g.ids, ...(g.finishReason === 'eos' ? [EOS_ID] : [])];
          await same(s.predictNext(V), m.predictNext(context, V), `after generate with append (${g.finishReason})`);
        }
        expect(reasons).toContain('stop');
        expect(reasons).toContain('length');
        const stream = m.mode !== 'sentences';
        // session.score scores every token of its input after the state: the terms model.score has for them.
        const x = ids(12, 500);
        const whole = await m.score([...context, ...x], { tokenLogProbs: true });
        const got = await s.score(x, { tokenLogProbs: true });
        // Stream: term k scores token k + 1; sentences: term k scores token k (after <sos>).
        const at = stream ? context.length - 1 : context.length;
        expect(maxDiff(got.tokenLogProbs!, whole.tokenLogProbs!.slice(at, at + x.length))).toBeLessThanOrEqual(1e-5);
        expect(got.tokens).toBe(x.length);
        await same(s.predictNext(V), m.predictNext(context, V), 'after score without append');
        await s.score(x, { append: true });
        await same(s.predictNext(V), m.predictNext([...context, ...x], V), 'after score with append');

        // A fresh session: for a stream model, after appending the first token it scores the rest as model.score does.
        const t = m.session();
        const all3 = ids(30, 600);
        if (stream) {
          await t.append(all3.slice(0, 1));
          const want = await m.score(all3, { tokenLogProbs: true });
          const rest = await t.score(all3.slice(1), { tokenLogProbs: true });
          expect(Math.abs(rest.logProb - want.logProb)).toBeLessThanOrEqual(1e-4 * Math.abs(want.logProb));
          expect(maxDiff(rest.tokenLogProbs!, want.tokenLogProbs!)).toBeLessThanOrEqual(1e-5);
        } else {
          // A sentence session starts after <sos>: model.score's terms but the final <eos>.
          const want = await m.score(all3, { tokenLogProbs: true });
          const got3 = await t.score(all3, { tokenLogProbs: true });
          expect(maxDiff(got3.tokenLogProbs!, want.tokenLogProbs!.slice(0, -1))).toBeLessThanOrEqual(1e-5);
        }
        t.dispose();
        s.dispose();
      } finally {
        m.dispose();
      }
    });
  }

  test('a session made before a fit in sentences mode starts after <sos> once the model is trained so', async () => {
    const m = await tiny();
    try {
      const s = m.session();
      await m.fit(sentences(100), { epochs: 1, progress: false, batchSize: 16 });
      expect(m.mode).toBe('sentences');
      await s.append(ids(4));
      expect(s.length).toBe(5); // <sos> and 4 words
      await same(s.predictNext(all(m)), m.predictNext(ids(4), all(m)), 'the session made before fit');
      s.dispose();
    } finally {
      m.dispose();
    }
  });

  test('session.score of one token: scored from the state (fresh stream session: the zero state; after an append: its state)', async () => {
    const m = await trained();
    try {
      const x = ids(1, 50);
      const V = all(m);
      const fresh = m.session();
      const want0 = (await m.predictNext([], V)).find((p) => p.id === x[0])!;
      const got0 = await fresh.score(x, { tokenLogProbs: true });
      expect(got0.tokens).toBe(1);
      expect(Math.abs(got0.logProb - Math.log(want0.probability))).toBeLessThanOrEqual(1e-5);
      const s = m.session();
      await s.append(ids(20));
      const want = (await m.predictNext(ids(20), V)).find((p) => p.id === x[0])!;
      const got = await s.score(x, { tokenLogProbs: true });
      expect(got.tokens).toBe(1);
      expect(got.tokenLogProbs).toHaveLength(1);
      expect(Math.abs(got.logProb - Math.log(want.probability))).toBeLessThanOrEqual(1e-5);
      expect(got.perplexity).toBeCloseTo(Math.exp(-got.logProb), 9);
      fresh.dispose();
      s.dispose();
    } finally {
      m.dispose();
    }
  });

  test('an abort landing as a session call ends leaves the session as before the call (rejected) or after it (resolved), never in between', async () => {
    const m = await trained();
    try {
      const V = all(m);
      const A = ids(6), B = ids(5, 40);
      const greedy = (await m.generate({ prompt: A, temperature: 0, maxTokens: 3, stopAtEos: false, details: true })).ids;
      const before = await distribution(m.predictNext(A, V));
      const gap = (x: Map<number, number>, y: Map<number, number>) => maxDiff([...y.keys()].map((k) => x.get(k)!), [...y.values()]);
      type Call = (s: Session, signal: AbortSignal) => Promise<unknown>;
      const calls: [string, Call, number[]][] = [
        ['append', (s, signal) => s.append(B, { signal }), B],
        ['score with append', (s, signal) => s.score(B, { signal, append: true }), B],
        ['generate with append', (s, signal) => s.generate({ temperature: 0, maxTokens: 3, stopAtEos: false, append: true, signal }), greedy],
      ];
      for (const [what, call, added] of calls) {
        const after = await distribution(m.predictNext([...A, ...added], V));
        expect(gap(before, after)).toBeGreaterThan(1e-4); // the two states can be told apart
        // The abort comes after the k-th token of a generation running beside it: at every step in turn.
        for (let k = 1; k <= 6; k++) {
          const s = m.session();
          await s.append(A);
          const ac = new AbortController();
          let n = 0;
          const outcome = call(s, ac.signal).then(() => 'resolved', () => 'rejected');
          await m.generate({ prompt: ids(1, 9), maxTokens: 8, stopAtEos: false, seed: 1, onToken: () => void (++n === k && ac.abort(new Error('late'))) });
          const state = await distribution(s.predictNext(V));
          const o = await outcome;
          const where = `${what}, abort after token ${k}: ${o}`;
          // Soft: every case that fails is reported.
          expect.soft(s.length, where).toBe(o === 'resolved' ? A.length + added.length : A.length);
          expect.soft(gap(state, o === 'resolved' ? after : before), `${where}, the state`).toBeLessThanOrEqual(1e-5);
          s.dispose();
        }
      }
    } finally {
      m.dispose();
    }
  });

  test('generateStream with append keeps the streamed tokens; calls on one session run in call order, not awaited', async () => {
    const m = await trained();
    try {
      const V = { topK: 40 };
      const s = m.session();
      await s.append(ids(10));
      const streamed: number[] = [];
      for await (const t of s.generateStream({ seed: 9, maxTokens: 8, stopAtEos: false, append: true })) streamed.push(t.id);
      expect(streamed).toHaveLength(8);
      await same(s.predictNext(V), m.predictNext([...ids(10), ...streamed], V), 'after generateStream with append');

      // Not awaited: each call sees the state the calls before it left.
      const order: string[] = [];
      const t = m.session();
      const a1 = t.append(words(50, 20)).then(() => order.push('append 1'));
      const p1 = t.predictNext(V).then((r) => (order.push('predict 1'), r));
      const a2 = t.append(words(3, 70)).then(() => order.push('append 2'));
      const g = t.generate({ seed: 4, maxTokens: 3, append: true, details: true, stopAtEos: false }).then((r) => (order.push('generate'), r));
      const p2 = t.predictNext(V).then((r) => (order.push('predict 2'), r));
      const f = t.fork(); // after the calls before it
      const p3 = f.predictNext(V);
      await Promise.all([a1, a2]);
      expect(order.slice(0, 2)).toEqual(['append 1', 'predict 1']);
      const gen3 = (await g).ids;
      await same(p1, m.predictNext(ids(50, 20), V), 'predict 1');
      await same(p2, m.predictNext([...ids(50, 20), ...ids(3, 70), ...gen3], V), 'predict 2');
      await same(p3, m.predictNext([...ids(50, 20), ...ids(3, 70), ...gen3], V), 'the fork made after them');
      expect(order).toEqual(['append 1', 'predict 1', 'append 2', 'generate', 'predict 2']);
      t.dispose();
      f.dispose();
      s.dispose();
    } finally {
      m.dispose();
    }
  });

  test('dispose: later calls reject with ERR_DISPOSED; one made before it settles; the model is unaffected', async () => {
    const m = await tiny();
    try {
      const s = m.session();
      await s.append(words(40));
      // Made before dispose: it ends one way or the other (the session's comment and the spec leave which open).
      const before = s.predictNext().then(() => 'resolved', (e) => (e as { code?: string }).code);
      s.dispose();
      expect(s.disposed).toBe(true);
      expect(['resolved', 'ERR_DISPOSED']).toContain(await before);
      await rejectsWith(s.append(words(2)), 'ERR_DISPOSED');
      await rejectsWith(s.predictNext(), 'ERR_DISPOSED');
      await rejectsWith(s.generate({ maxTokens: 2 }), 'ERR_DISPOSED');
      await rejectsWith(s.score(words(3)), 'ERR_DISPOSED');
      await rejectsWith(s.generateStream({ maxTokens: 2 }).next(), 'ERR_DISPOSED');
      await rejectsWith(() => s.fork(), 'ERR_DISPOSED');
      await rejectsWith(() => s.reset(), 'ERR_DISPOSED');
      s.dispose(); // twice: nothing
      expect(await m.predictNext(words(3))).toHaveLength(5);
    } finally {
      m.dispose();
    }
  });
});
