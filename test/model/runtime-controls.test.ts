// Generation controls: ban, logitBias, prefix, details, onToken and generateStream (stop strings
// never leak; leaving the loop ends the request), and beam search's lengthPenalty and ban.
import { describe, expect, test } from 'vitest';
import { LanguageModel, type Generation } from '../../lib/model';
import { CharTokenizer, EOS_ID, PAD_ID, SOS_ID } from '../../lib/tokenizers';
import { TEXT, TOKENIZER, aloneTwin, ids, rejectsWith, rowsSeen, trained, within, words } from './runtime-fixtures';

const SPECIAL = new Set([PAD_ID, SOS_ID]);
const every = (m: LanguageModel) => ({ topK: m.config.vocabSize - 2 });

/** How often each id is drawn by `runs` generations of 15 tokens (temperature 1.5: flat, every token comes up). */
async function drawCounts(m: LanguageModel, runs: number, more = {}): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  const gens = await Promise.all(Array.from({ length: runs }, (_, seed) =>
    m.generate({ prompt: words(4, seed), seed, maxTokens: 15, temperature: 1.5, stopAtEos: false, details: true, ...more })));
  for (const g of gens) for (const id of g.ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

describe('ban, logitBias, prefix', () => {
  test('ban: never drawn or predicted, with few ids (the device sampler) and with many (drawn on the host)', async () => {
    const m = await trained();
    try {
      const free = await drawCounts(m, 40);
      const often = [...free.entries()].sort((a, b) => b[1] - a[1]).map(([id]) => id);
      for (const n of [5, 20]) {
        const banned = often.slice(0, n);
        // Without the ban they came up many times: the test could see them.
        expect(banned.reduce((a, id) => a + free.get(id)!, 0)).toBeGreaterThan(2 * n);
        const asTokens = banned.map((id) => TOKENIZER.tokenOf(id));
        for (const ban of [banned, asTokens]) {
          const counts = await drawCounts(m, 40, { ban });
          expect(banned.filter((id) => counts.has(id)), `ban of ${n}`).toEqual([]);
          const top = await m.predictNext(words(3), { ...every(m), ban });
          expect(top.filter((p) => banned.includes(p.id))).toEqual([]);
          expect(top).toHaveLength(every(m).topK - n);
        }
      }
    } finally {
      m.dispose();
    }
  });

  test('ban with topK / greedy: the filters apply to the tokens left (device and host draws)', async () => {
    const m = await trained();
    try {
      const context = words(6);
      const ranked = (await m.predictNext(context, every(m))).map((p) => p.id);
      const top3 = ranked.slice(0, 3);
      // Few bans (the device sampler), or with 16 of the least likely too (drawn on the host).
      for (const ban of [top3, [...top3, ...ranked.slice(-16)]]) {
        const next3 = ranked.filter((id) => !ban.includes(id)).slice(0, 3);
        for (let seed = 0; seed < 20; seed++) {
          const g = await m.generate({ prompt: context, seed, maxTokens: 1, topK: 3, ban, details: true, stopAtEos: false });
          expect(next3).toContain(g.ids[0]);
        }
        const greedy = await m.generate({ prompt: context, maxTokens: 1, temperature: 0, ban, details: true, stopAtEos: false });
        expect(greedy.ids).toEqual(next3.slice(0, 1));
      }
    } finally {
      m.dispose();
    }
  });

  test('logitBias: a large bias makes greedy pick a token, -Infinity bans it; probabilities stay the model\'s', async () => {
    const m = await trained();
    const idm = await LanguageModel.create({ vocabSize: 40, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu', seed: 4 });
    try {
      const prompt = words(8);
      const ranked = await m.predictNext(prompt, every(m));
      const [best, second] = ranked;
      const worst = ranked.filter((p) => p.id > EOS_ID).at(-1)!; // a word (a drawn <eos> would end the generation)
      const first = async (options: object) => (await m.generate({ prompt, temperature: 0, maxTokens: 1, details: true, ...options })).ids[0];
      expect(await first({})).toBe(best.id);
      expect(await first({ logitBias: { [worst.token]: 50 } })).toBe(worst.id);
      expect(await first({ logitBias: new Map([[worst.id, 50]]) })).toBe(worst.id);
      expect(await first({ logitBias: { [best.token]: -Infinity } })).toBe(second.id);
      expect(await first({ logitBias: { [best.token]: -Infinity, [second.token]: -Infinity } })).toBe(ranked[2].id);
      // The bias changes the ranking, not the figures: the model's own probability and log-probability.
      const [top] = await m.predictNext(prompt, { topK: 1, logitBias: { [worst.token]: 50 } });
      expect(top.id).toBe(worst.id);
      expect(top.probability).toBeCloseTo(worst.probability, 7);
      const g = await m.generate({ prompt, temperature: 0, maxTokens: 1, details: true, logitBias: { [worst.token]: 50 } });
      expect(Math.abs(g.logProbs[0] - Math.log(worst.probability))).toBeLessThanOrEqual(1e-5);
      expect((await m.predictNext(prompt, { ...every(m), logitBias: { [best.token]: -Infinity } })).map((p) => p.id)).not.toContain(best.id);
      // A model of token ids: ids as keys.
      const low = (await idm.predictNext([5], { topK: 40 })).at(-1)!.id;
      expect((await idm.generate({ prompt: [5], temperature: 0, maxTokens: 1, details: true, logitBias: { [String(low)]: 50 } })).ids).toEqual([low]);
    } finally {
      m.dispose();
      idm.dispose();
    }
  });

  test('prefix: predictNext gives only (and every) token starting with it; generate\'s first token starts with it', async () => {
    const m = await trained();
    try {
      const context = words(7, 20);
      const all = new Map((await m.predictNext(context, every(m))).map((p) => [p.id, p.probability]));
      for (const prefix of ['c', 'ca', 'd', 'the']) {
        const got = await m.predictNext(context, { ...every(m), prefix });
        const want = [...Array(m.config.vocabSize).keys()].filter((id) => !SPECIAL.has(id) && id !== EOS_ID && TOKENIZER.tokenOf(id).startsWith(prefix));
        expect(want.length).toBeGreaterThan(0);
        expect(got.map((p) => p.id).sort((a, b) => a - b)).toEqual(want);
        for (const p of got) expect(p.probability).toBeCloseTo(all.get(p.id)!, 7);
      }
      let later = 0;
      for (let seed = 0; seed < 12; seed++) {
        const g = await m.generate({ prompt: context, seed, maxTokens: 4, prefix: 'ca', details: true, stopAtEos: false });
        expect(TOKENIZER.tokenOf(g.ids[0])).toMatch(/^ca/);
        later += g.ids.slice(1).filter((id) => !TOKENIZER.tokenOf(id).startsWith('ca')).length;
      }
      expect(later).toBeGreaterThan(0); // only the first token is restricted
      await rejectsWith(m.predictNext(context, { prefix: 'zq' }), 'ERR_INVALID_ARGUMENT', /prefix/);
      await rejectsWith(m.generate({ prompt: context, prefix: 'zq' }), 'ERR_INVALID_ARGUMENT', /prefix/);
    } finally {
      m.dispose();
    }
  });
});

describe('details, onToken, generateStream', () => {
  /** Each drawn token's log-probability is the log of predictNext's probability for it after the prompt and the tokens before it. */
  async function expectModelLogProbs(m: LanguageModel, prompt: number[], g: Generation) {
    for (let k = 0; k < g.ids.length; k++) {
      const p = (await m.predictNext([...prompt, ...g.ids.slice(0, k)], every(m))).find((q) => q.id === g.ids[k])!;
      expect(Math.abs(g.logProbs[k] - Math.log(p.probability)), `token ${k}`).toBeLessThanOrEqual(1e-5);
    }
  }

  test("details: ids, the model's log-probabilities, and why it ended ('length', 'eos', 'stop')", async () => {
    const m = await trained();
    try {
      const prompt = ids(6, 30);
      const long = await m.generate({ prompt, seed: 5, maxTokens: 12, stopAtEos: false, details: true, temperature: 1.2 });
      expect(long.finishReason).toBe('length');
      expect(long.ids).toHaveLength(12);
      expect(long.logProbs).toHaveLength(12);
      expect(long.text).toBe(TOKENIZER.decode(long.ids));
      await expectModelLogProbs(m, prompt, long);
      // Made likely by a bias, <eos> ends it and is left out of the ids.
      const eos = await m.generate({ prompt, seed: 5, maxTokens: 50, details: true, logitBias: { '<eos>': 4 } });
      expect(eos.finishReason).toBe('eos');
      expect(eos.ids.length).toBeLessThan(50);
      expect(eos.ids).not.toContain(EOS_ID);
      await expectModelLogProbs(m, prompt, eos);
      // A stop string in the middle of the text: cut before it; the ids up to the one completing it.
      const stop = TOKENIZER.tokenOf(long.ids[5]);
      const cut = await m.generate({ prompt, seed: 5, maxTokens: 12, stopAtEos: false, details: true, temperature: 1.2, stop });
      expect(cut.finishReason).toBe('stop');
      expect(cut.text).toBe(long.text.slice(0, long.text.indexOf(stop)));
      expect(cut.ids).toEqual(long.ids.slice(0, cut.ids.length));
      expect(cut.ids.length).toBeLessThanOrEqual(6);
      expect(await m.generate({ prompt, seed: 5, maxTokens: 12, stopAtEos: false, temperature: 1.2 })).toBe(long.text);
    } finally {
      m.dispose();
    }
  });

  test('no prompt: a sentence model starts after <sos>, a stream model from the zero state (the log-probabilities of predictNext([]) on)', async () => {
    for (const mode of ['sentences', 'stream'] as const) {
      const m = await trained({ cell: 'rnn_tanh' }, mode);
      try {
        const g = await m.generate({ seed: 8, maxTokens: 6, stopAtEos: false, details: true });
        expect(g.ids).toHaveLength(6);
        await expectModelLogProbs(m, [], g);
        expect(await m.generate({ prompt: '', seed: 8, maxTokens: 6, stopAtEos: false })).toBe(g.text);
      } finally {
        m.dispose();
      }
    }
  });

  test('an onToken that throws rejects its generate with that error; the calls beside it go on', async () => {
    const m = await trained();
    try {
      const mine = new Error('from onToken');
      const other = m.generate({ prompt: words(3), seed: 1, maxTokens: 20, stopAtEos: false, details: true });
      const p = m.generate({ prompt: words(3), seed: 2, maxTokens: 20, stopAtEos: false, onToken: () => { throw mine; } });
      await expect(p).rejects.toBe(mine);
      expect((await other).ids).toHaveLength(20);
      expect((await m.generate({ prompt: words(3), seed: 1, maxTokens: 20, stopAtEos: false, details: true })).ids).toEqual((await other).ids);
    } finally {
      m.dispose();
    }
  });

  test('onToken and generateStream give the tokens of generate (same seed), their texts joined = its text; stop strings never leak', async () => {
    const word = await trained();
    const char = await LanguageModel.create({ tokenizer: CharTokenizer.fit(TEXT), embeddingSize: 16, hiddenSize: 16, layers: 1, device: 'cpu', seed: 2 });
    try {
      let checked = 0;
      for (const m of [word, char]) {
        const prompt = m === word ? words(5) : 'the c';
        for (const seed of [1, 2, 3]) {
          const base = { prompt, seed, maxTokens: 60, stopAtEos: false } as const;
          const full = await m.generate({ ...base, details: true });
          // Stops of 1 to 4 characters from the text (spanning tokens), and one that never comes.
          for (const stop of [undefined, full.text.slice(20, 21), full.text.slice(25, 28), full.text.slice(33, 37), ['§', full.text.slice(41, 44)]]) {
            if (stop !== undefined && [stop].flat().some((s) => s.trim() === '')) continue;
            const g = await m.generate({ ...base, stop, details: true });
            const seen: string[] = [];
            const viaOnToken = await m.generate({ ...base, stop, onToken: (t) => seen.push(t.text) });
            const streamed: { text: string; id: number; logProb: number }[] = [];
            for await (const t of m.generateStream({ ...base, stop })) streamed.push(t);
            expect(viaOnToken).toBe(g.text);
            expect(seen.join('')).toBe(g.text);
            expect(streamed.map((t) => t.text).join('')).toBe(g.text);
            for (const s of [stop ?? []].flat()) expect(g.text).not.toContain(s);
            if (stop === undefined) {
              expect(streamed.map((t) => t.id)).toEqual(full.ids);
              expect(streamed.map((t) => t.logProb)).toEqual(full.logProbs);
            } else {
              // Every token up to the one completing the stop string, cut there.
              expect(streamed.map((t) => t.id)).toEqual(g.ids.slice(0, streamed.length));
              const at = Math.min(...[stop].flat().map((s) => (full.text.indexOf(s) < 0 ? Infinity : full.text.indexOf(s))));
              expect(g.text).toBe(full.text.slice(0, at));
              checked++;
            }
          }
        }
      }
      expect(checked).toBeGreaterThan(15);
    } finally {
      word.dispose();
      char.dispose();
    }
  });

  test('leaving a for await loop early ends the request: no more tokens, no row left behind (batching on and off)', async () => {
    const m = await trained();
    const alone = await aloneTwin(m);
    try {
      for (const model of [m, alone]) {
        let produced = 0, n = 0;
        for await (const t of model.generateStream({ prompt: words(3), maxTokens: 5000, stopAtEos: false, seed: 1, onToken: () => produced++ })) {
          expect(typeof t.text).toBe('string');
          if (++n === 3) break;
        }
        const after = produced;
        expect(after).toBeLessThan(5000);
        // With batching off a request left running would keep the only row: the next call would never start.
        const next = await within(20_000, model.generate({ prompt: words(3), maxTokens: 5, seed: 2, stopAtEos: false, details: true }), 'the call after the loop');
        expect(next.ids).toHaveLength(5);
        expect(produced).toBe(after);
        const rows = rowsSeen(model); // no row left behind: a call alone steps one
        await model.predictNext(words(3));
        expect(rows.max).toBe(1);
        // A session's stream too.
        const s = model.session();
        for await (const _ of s.generateStream({ maxTokens: 5000, stopAtEos: false, seed: 3, append: true })) break;
        expect(s.length).toBe(0);
        expect(await within(20_000, s.predictNext(), 'the session after its loop')).toHaveLength(5);
        s.dispose();
      }
    } finally {
      m.dispose();
      alone.dispose();
    }
  });
});

describe('beamSearch', () => {
  test('lengthPenalty ranks by logProb / length ** lengthPenalty (the scores returned, in order)', async () => {
    const m = await trained({}, 'sentences'); // beams end at <eos>: of different lengths
    try {
      const orders: string[] = [];
      for (const alpha of [0, 0.5, 1, 2]) {
        const beams = await m.beamSearch(words(2), { beamWidth: 8, maxTokens: 10, lengthPenalty: alpha });
        expect(beams.length).toBeGreaterThan(1);
        // A beam ended by <eos> at once has no ids: it is divided by 1 (not by 0).
        for (const b of beams) expect(b.score).toBeCloseTo(b.logProb / Math.max(1, b.ids.length) ** alpha, 9);
        for (let i = 1; i < beams.length; i++) expect(beams[i].score).toBeLessThanOrEqual(beams[i - 1].score);
        if (alpha === 0) beams.forEach((b) => expect(b.score).toBe(b.logProb));
        orders.push(beams.map((b) => b.ids.join(',')).join(' | '));
      }
      expect(new Set(orders).size).toBeGreaterThan(1); // the penalty changed the ranking
    } finally {
      m.dispose();
    }
  });

  test('ban: no beam holds a banned token', async () => {
    const m = await trained();
    try {
      const free = await m.beamSearch(words(3), { beamWidth: 5, maxTokens: 6 });
      const banned = [...new Set(free.flatMap((b) => b.ids.slice(0, 2)))];
      for (const ban of [banned, banned.map((id) => TOKENIZER.tokenOf(id))]) {
        const beams = await m.beamSearch(words(3), { beamWidth: 5, maxTokens: 6, ban });
        expect(beams).toHaveLength(5);
        for (const b of beams) expect(b.ids.filter((id) => banned.includes(id))).toEqual([]);
      }
    } finally {
      m.dispose();
    }
  });
});
