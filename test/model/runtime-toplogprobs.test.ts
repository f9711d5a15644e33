// topLogProbs: each generated token's k most likely alternatives under the model — what
// predictNext gives at that context — without changing what is drawn (generate, generateStream,
// sessions, batched or alone); and runtimeStats, the runtime's load.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LanguageModel, type GeneratedToken, type GenerateOptions, type Generation, type RuntimeStats, type TopToken } from '../../lib/model';
import { PAD_ID, SOS_ID } from '../../lib/tokenizers';
import { TOKENIZER, aloneTwin, expectSameGeneration, ids, maxDiff, rejectsWith, rowsSeen, tiny, trained, words } from './runtime-fixtures';

let m: LanguageModel, path: string;
const dir = mkdtempSync(join(tmpdir(), 'rnnlm-toplogprobs-'));
beforeAll(async () => {
  m = await trained();
  path = join(dir, 'm.safetensors'); // loaded with other runtime options
  await m.save(path);
});
afterAll(() => {
  m.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Sorted, k distinct tokens named as the tokenizer names them; the drawn token among them with its log-probability, or below the last. */
function expectWellFormed(g: Generation, k: number): number {
  expect(g.topLogProbs).toHaveLength(g.ids.length);
  let found = 0;
  g.topLogProbs!.forEach((top, i) => {
    expect(top, `step ${i}`).toHaveLength(k);
    expect(new Set(top.map((t) => t.id)).size).toBe(k);
    for (let j = 1; j < k; j++) expect(top[j].logProb).toBeLessThanOrEqual(top[j - 1].logProb);
    for (const t of top) expect(t.token).toBe(TOKENIZER.tokenOf(t.id));
    const drawn = top.find((t) => t.id === g.ids[i]);
    if (drawn) {
      expect(drawn.logProb, `step ${i}`).toBe(g.logProbs[i]);
      found++;
    } else expect(g.logProbs[i], `step ${i}`).toBeLessThanOrEqual(top[k - 1].logProb);
  });
  return found;
}

/** Each step's alternatives are predictNext's at that context (the prompt and the tokens drawn before): the same ids, the log of its probabilities. */
async function expectModelTops(model: LanguageModel, prompt: number[], g: Generation, k: number, ban?: number[]) {
  const want = await Promise.all(g.ids.map((_, i) => model.predictNext([...prompt, ...g.ids.slice(0, i)], { topK: k, ban })));
  g.topLogProbs!.forEach((top, i) => {
    expect(top.map((t) => t.id), `step ${i}`).toEqual(want[i].map((p) => p.id));
    expect(maxDiff(top.map((t) => t.logProb), want[i].map((p) => Math.log(p.probability))), `step ${i}`).toBeLessThanOrEqual(1e-5);
  });
}

/** Draws on the device (with and without its filters, greedy), and on the host (a bias, a prefix, a ban of more than 16 ids). */
function variants(model: LanguageModel): [string, GenerateOptions, number[]?][] {
  const many = Array.from({ length: 18 }, (_, i) => 4 + 2 * i).filter((id) => id < model.config.vocabSize);
  return [
    ['device draws', { seed: 1 }],
    ['device filters', { seed: 2, temperature: 0.5, topK: 8, topP: 0.9 }],
    ['greedy', { temperature: 0 }],
    ['a bias (host draws)', { seed: 3, logitBias: { [TOKENIZER.tokenOf(9)]: 2.5, [TOKENIZER.tokenOf(12)]: -1 } }],
    ['a prefix (first draw on the host)', { seed: 4, prefix: 'c' }],
    ['a ban of 18 ids (host draws)', { seed: 5, ban: many }, many],
  ];
}

describe('topLogProbs', () => {
  test("each step's k most likely tokens: sorted, the drawn token's log-probability, predictNext's at that context (bias and prefix left out, bans applied)", async () => {
    const prompt = ids(5);
    for (const [what, options, ban] of variants(m)) {
      for (const k of [1, 5, 20]) {
        const seen: (TopToken[] | undefined)[] = [];
        const g = await m.generate({ prompt, maxTokens: 12, stopAtEos: false, topLogProbs: k, onToken: (t) => seen.push(t.top), ...options, details: true });
        const found = expectWellFormed(g, k);
        if (k === 20) expect(found, what).toBeGreaterThan(0);
        await expectModelTops(m, prompt, g, k, ban);
        expect(seen, what).toEqual(g.topLogProbs);
        if (ban) for (const top of g.topLogProbs!) expect(top.filter((t) => ban.includes(t.id))).toEqual([]);
      }
    }
  });

  test('specials (<pad>, <sos>) are never listed, even by a model that ranks them high; a vocabulary smaller than k lists every token', async () => {
    const fresh = await tiny({ seed: 2 }); // untrained: its specials are as likely as any token
    const idm = await LanguageModel.create({ vocabSize: 12, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu', seed: 2 });
    try {
      const g = await fresh.generate({ prompt: ids(4), seed: 6, maxTokens: 10, stopAtEos: false, details: true, topLogProbs: 20 });
      expectWellFormed(g, 20);
      await expectModelTops(fresh, ids(4), g, 20);
      for (const top of g.topLogProbs!) expect(top.filter((t) => t.id === PAD_ID || t.id === SOS_ID)).toEqual([]);
      // They would be listed otherwise: the model ranks one of them among its 20 most likely at some step.
      const all = await Promise.all(g.ids.map((_, i) => fresh.predictNext([...ids(4), ...g.ids.slice(0, i)], { topK: fresh.config.vocabSize - 2 })));
      const ranked = all.map((ps) => ps.map((p) => p.probability));
      const special = (id: number) => Promise.all(g.ids.map(async (_, i) => (await fresh.score([...ids(4), ...g.ids.slice(0, i), id], { tokenLogProbs: true })).tokenLogProbs!.at(-1)!));
      const [pad, sos] = await Promise.all([special(PAD_ID), special(SOS_ID)]);
      expect(ranked.some((r, i) => Math.exp(Math.max(pad[i], sos[i])) > r[19])).toBe(true);
      // A model of token ids: no special, every id listed.
      const small = await idm.generate({ prompt: [3], seed: 1, maxTokens: 4, details: true, topLogProbs: 20 });
      for (const top of small.topLogProbs!) expect(top.map((t) => t.id).sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
      expect(small.topLogProbs![0][0].token).toBe(String(small.topLogProbs![0][0].id));
    } finally {
      fresh.dispose();
      idm.dispose();
    }
  });

  test('the same tokens with and without it for a seed (device and host draws); without it nothing is added', async () => {
    for (const [what, options] of variants(m)) {
      for (const seed of [0, 1, 2, 3]) {
        const base = { prompt: words(4, 10 * seed), maxTokens: 25, stopAtEos: false, ...options, seed, details: true } as const;
        const plain = await m.generate(base);
        const { topLogProbs, ...rest } = await m.generate({ ...base, topLogProbs: 3 });
        expectSameGeneration(rest, plain, `${what}, seed ${seed}`);
        expect(topLogProbs).toHaveLength(plain.ids.length);
        expect('topLogProbs' in plain).toBe(false);
      }
    }
    const tokens: GeneratedToken[] = [];
    for await (const t of m.generateStream({ prompt: words(3), seed: 1, maxTokens: 3 })) tokens.push(t);
    expect(tokens.filter((t) => 'top' in t)).toEqual([]);
  });

  test('batched: concurrent calls (with and without it, device and host draws) return what they return alone', async () => {
    const alone = await aloneTwin(m);
    try {
      const calls = variants(m).flatMap(([, options], i) => [
        { prompt: words(3 + i, 7 * i), maxTokens: 8 + 3 * i, stopAtEos: false, ...options, topLogProbs: 1 + i, details: true } as const,
        { prompt: words(40, 5 * i), maxTokens: 10, stopAtEos: false, ...options, details: true } as const,
      ]);
      const rows = rowsSeen(m);
      const batched = await Promise.all(calls.map((o) => m.generate(o)));
      expect(rows.max).toBeGreaterThan(1);
      for (const [i, o] of calls.entries()) {
        const want = await alone.generate(o);
        expectSameGeneration(batched[i], want, `call ${i}`);
        if (!('topLogProbs' in o)) continue;
        expect(batched[i].topLogProbs!.map((top) => top.map((t) => t.id))).toEqual(want.topLogProbs!.map((top) => top.map((t) => t.id)));
        expect(maxDiff(batched[i].topLogProbs!.flat().map((t) => t.logProb), want.topLogProbs!.flat().map((t) => t.logProb))).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      alone.dispose();
    }
  });

  test('generateStream: every token carries its alternatives, held back by a stop string or not; cut at a stop string', async () => {
    const base = { prompt: words(5), seed: 11, maxTokens: 40, stopAtEos: false, topLogProbs: 4 } as const;
    const full = await m.generate({ ...base, details: true });
    // One that comes (spanning tokens), one that never does (every token is held back until 29 characters follow, the last until the end).
    for (const stop of [full.text.slice(30, 34), 'x'.repeat(30)]) {
      const g = await m.generate({ ...base, stop, details: true });
      expect(g.finishReason).toBe(stop.startsWith('x') ? 'length' : 'stop');
      expect(g.topLogProbs).toEqual(full.topLogProbs!.slice(0, g.ids.length));
      const streamed: GeneratedToken[] = [];
      for await (const t of m.generateStream({ ...base, stop })) streamed.push(t);
      expect(streamed.length).toBeGreaterThan(0);
      expect(streamed.map((t) => t.top)).toEqual(g.topLogProbs!.slice(0, streamed.length));
      expect(streamed.map((t) => t.text).join('')).toBe(g.text);
    }
  });

  test('a session: generate and generateStream from its state give what the model gives after the same context', async () => {
    const s = m.session();
    try {
      await s.append(words(6));
      const o = { seed: 21, maxTokens: 10, stopAtEos: false, topLogProbs: 5 } as const;
      const g = await s.generate({ ...o, details: true });
      const want = await m.generate({ ...o, prompt: words(6), details: true });
      expectSameGeneration(g, want);
      expect(g.topLogProbs!.map((top) => top.map((t) => t.id))).toEqual(want.topLogProbs!.map((top) => top.map((t) => t.id)));
      await expectModelTops(m, ids(6), g, 5);
      const streamed: (TopToken[] | undefined)[] = [];
      for await (const t of s.generateStream(o)) streamed.push(t.top);
      expect(streamed).toEqual(g.topLogProbs);
    } finally {
      s.dispose();
    }
  });

  const bad: [string, unknown][] = [['1.5', 1.5], ['-1', -1], ['21', 21], ["'3'", '3'], ['NaN', NaN], ['Infinity', Infinity], ['true', true]];
  for (const [name, k] of bad) {
    test(`refused: topLogProbs ${name} (generate, generateStream, session.generate, session.generateStream)`, async () => {
      const o = { maxTokens: 2, topLogProbs: k } as GenerateOptions, prompt = words(3);
      for (const call of [() => m.generate({ prompt, ...o }), () => m.generateStream({ prompt, ...o }).next(), () => m.session().generate(o), () => m.session().generateStream(o).next()]) {
        await rejectsWith(call, 'ERR_INVALID_ARGUMENT', /topLogProbs must be an integer >= 0 and <= 20/);
      }
    });
  }
});

describe('runtimeStats', () => {
  test('requests waiting for a row and rows stepping: 0/0 before, after the calls and once disposed; read-only', async () => {
    const x = await LanguageModel.load(path, { device: 'cpu', maxBatchSize: 4 });
    const zero: RuntimeStats = { queued: 0, rows: 0 };
    try {
      expect(x.runtimeStats).toEqual(zero);
      const seen: RuntimeStats[] = [];
      await Promise.all(Array.from({ length: 10 }, (_, i) =>
        x.generate({ prompt: words(3, i), seed: i, maxTokens: 20, stopAtEos: false, onToken: () => seen.push(x.runtimeStats) })));
      expect(x.runtimeStats).toEqual(zero);
      // 4 rows at most, the other 6 calls waiting for one at first.
      expect(Math.max(...seen.map((s) => s.rows))).toBe(4);
      expect(seen[0]).toEqual({ queued: 6, rows: 4 });
      for (const s of seen) expect(s.rows + s.queued).toBeLessThanOrEqual(10);
      expect(seen.at(-1)!.queued).toBe(0);
      expect(() => ((x as unknown as { runtimeStats: unknown }).runtimeStats = zero)).toThrow(TypeError);
      // Disposed while calls run: 0/0 at once.
      let started!: () => void;
      const first = new Promise<void>((resolve) => (started = resolve));
      const running = Array.from({ length: 6 }, (_, i) =>
        x.generate({ prompt: words(3, i), seed: i, maxTokens: 1000, stopAtEos: false, onToken: () => started() }).catch((e: unknown) => e));
      await first;
      expect(x.runtimeStats).toEqual({ queued: 2, rows: 4 });
      x.dispose();
      expect(x.runtimeStats).toEqual(zero);
      for (const e of await Promise.all(running)) expect((e as { code?: string }).code).toBe('ERR_DISPOSED');
    } finally {
      x.dispose();
    }
  });

  test('batching off: one row, the other calls queued in arrival order', async () => {
    const x = await LanguageModel.load(path, { device: 'cpu', batching: false });
    try {
      const first: RuntimeStats[] = [];
      const calls = [0, 1, 2].map((i) => x.generate({ prompt: words(3, i), seed: i, maxTokens: 3, stopAtEos: false, onToken: () => first.push(x.runtimeStats) }));
      await Promise.all(calls);
      expect(first.map((s) => s.rows)).toEqual(Array(9).fill(1));
      expect(first.map((s) => s.queued)).toEqual([2, 2, 2, 1, 1, 1, 0, 0, 0]);
      expect(x.runtimeStats).toEqual({ queued: 0, rows: 0 });
    } finally {
      x.dispose();
    }
  });
});
