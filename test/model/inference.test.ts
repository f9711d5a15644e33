// Inference at scale and at the edges: dispose during generate leaves nothing unhandled (a child
// process); stop strings cost the same per token at any length, keep the event loop turning and
// cut exactly where the stop string starts; beam search matches a plain reference and grows
// linearly; a long prompt leaves no memory behind and predicts what the full forward pass does.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { cpuBackend } from '../../lib/backend/cpu';
import { networkOf } from '../../lib/advanced';
import { LanguageModel, type Beam } from '../../lib/model';
import type { Network } from '../../lib/nn/network';
import { CharTokenizer, EOS_ID, PAD_ID, SOS_ID, WordTokenizer } from '../../lib/tokenizers';

const tiny = (vocabSize: number, more: Parameters<typeof LanguageModel.create>[0] = {}) =>
  LanguageModel.create({ vocabSize, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu', seed: 1, ...more });

/**
 * CPU milliseconds (all of the process's threads) of the cheapest of `times` runs of f: on a
 * shared machine, waiting for a core inflates wall time but not CPU time.
 */
async function cpuCost(times: number, f: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < times; i++) {
    const t0 = process.cpuUsage();
    await f();
    const t = process.cpuUsage(t0);
    best = Math.min(best, (t.user + t.system) / 1000);
  }
  return best;
}

/** Makes <eos> (almost) impossible, so that generation and beams run to maxTokens. */
function withoutEos(m: LanguageModel): LanguageModel {
  const V = m.config.vocabSize;
  networkOf(m).writeParam('decoder.bias', Float32Array.from({ length: V }, (_, i) => (i === EOS_ID ? -100 : 0)));
  return m;
}

describe('dispose during inference', () => {
  test('24 rounds, dispose at different moments of generate and beamSearch: ERR_DISPOSED, and the process lives on (child process)', () => {
    const rounds = 24;
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'children', 'dispose-child.ts'), String(rounds)], {
      cwd: join(__dirname, '..', '..'), encoding: 'utf8', timeout: 90_000,
    });
    const seconds = (performance.now() - t0) / 1000;
    expect(r.signal).toBeNull();
    expect(r.status, r.stderr).toBe(0); // an unhandled rejection exits with 1
    expect(r.stderr).toBe('');
    expect(seconds).toBeLessThan(90);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(rounds + 1);
    expect(lines.at(-1)).toBe('done');
    for (const line of lines.slice(0, -1)) expect(line).toMatch(/^(generate|beamSearch) rejected ERR_DISPOSED$/);
  });
});

describe('generate with stop strings', () => {
  // Ids joined by spaces never contain 'x': every run goes on to maxTokens.
  const run = (m: LanguageModel, maxTokens: number) => m.generate({ prompt: [5], maxTokens, stopAtEos: false, seed: 3, stop: 'x' });

  test('the cost per token does not grow with the output (2,000 vs 20,000 tokens)', async () => {
    const m = await tiny(50);
    try {
      expect((await run(m, 2000)).split(' ')).toHaveLength(2000);
      const short = await cpuCost(3, () => run(m, 2000));
      const long = await cpuCost(2, () => run(m, 20_000));
      console.log(`generate with a stop string: 2,000 tokens ${short.toFixed(0)} ms of CPU, 20,000 tokens ${long.toFixed(0)} ms (x${(long / short).toFixed(1)})`);
      expect(long / short).toBeLessThan(30); // linear: ~10; decoding all the text per token: ~100
    } finally {
      m.dispose();
    }
  }, 120_000);

  test('a 10 ms timer keeps firing while 20,000 tokens are generated', async () => {
    const m = await tiny(2000); // a larger decoder: the run lasts long enough to count ticks
    try {
      await run(m, 2000); // warm-up
      let ticks = 0, worst = 0, last = performance.now();
      const timer = setInterval(() => {
        const now = performance.now();
        worst = Math.max(worst, now - last);
        last = now;
        ticks++;
      }, 10);
      const t0 = performance.now();
      await run(m, 20_000);
      const elapsed = performance.now() - t0;
      clearInterval(timer);
      console.log(`20,000 tokens with a stop string in ${elapsed.toFixed(0)} ms: ${ticks} timer ticks, longest gap ${worst.toFixed(0)} ms`);
      expect(ticks).toBeGreaterThan(elapsed / 10 / 3); // the event loop turned all along
    } finally {
      m.dispose();
    }
  }, 120_000);

  test('the text is the text without stop strings, cut where the first one starts (word, char, ids; stops spanning tokens)', async () => {
    const text = 'the cat ( a pet ) sat , and the dog " barked " . then ; the end ! ok ?';
    const word = WordTokenizer.fit(text), char = CharTokenizer.fit(text);
    let checked = 0;
    for (const tokenizer of [word, char, undefined]) {
      const m = tokenizer ? await LanguageModel.create({ tokenizer, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu', seed: 2 }) : await tiny(30);
      try {
        // stopAtEos: false keeps <eos> among the ids: it shows no text (word, char) or its id.
        const opts = { prompt: tokenizer ? 'the' : [5], maxTokens: 400, stopAtEos: false, seed: 4 } as const;
        const full = await m.generate(opts);
        for (const [at, len] of [[0, 1], [3, 2], [17, 5], [60, 4], [200, 9], [full.length - 3, 3]] as const) {
          const stop = full.slice(at, at + len);
          if (stop.length === 0 || stop.trim() === '') continue;
          const other = full.slice(at + 40, at + 43);
          const stops = other.length === 3 ? [other, stop] : [stop];
          const cut = Math.min(...stops.map((s) => full.indexOf(s)));
          expect(await m.generate({ ...opts, stop: stops })).toBe(full.slice(0, cut));
          checked++;
        }
      } finally {
        m.dispose();
      }
    }
    expect(checked).toBeGreaterThan(12);
  });
});

/**
 * Beam search as the model did it before it kept parent pointers: whole hypotheses, and each
 * distribution from a forward pass over the prompt and the hypothesis (no state carried).
 */
/** special: a tokenizer model's (<pad>, <sos> never chosen, <eos> ends a beam); else no id is special. */
async function referenceBeams(net: Network, prompt: number[], W: number, maxTokens: number, special = true) {
  const V = net.config.vocabSize;
  const distribution = async (ids: number[]) => {
    net.resetState(1);
    const all = await net.stream.read(net.logProbs(Int32Array.from(ids), ids.length, 1));
    return Array.from(all.subarray((ids.length - 1) * V));
  };
  type Hyp = { ids: number[]; logProb: number };
  const finished: Hyp[] = [];
  let beams: Hyp[] = [{ ids: [], logProb: 0 }];
  for (let step = 0; step < maxTokens; step++) {
    const cands: Hyp[] = [];
    for (const b of beams) {
      const row = await distribution([...prompt, ...b.ids]);
      const best = row.map((lp, id) => ({ id, lp })).filter((t) => !special || (t.id !== PAD_ID && t.id !== SOS_ID)).sort((a, c) => c.lp - a.lp).slice(0, W);
      for (const t of best) cands.push({ ids: [...b.ids, t.id], logProb: b.logProb + t.lp });
    }
    cands.sort((a, c) => c.logProb - a.logProb);
    beams = [];
    for (const c of cands.slice(0, W)) {
      if (special && c.ids.at(-1) === EOS_ID) finished.push({ ids: c.ids.slice(0, -1), logProb: c.logProb });
      else beams.push(c);
    }
    if (beams.length === 0 || finished.length >= W) break;
  }
  return [...finished, ...beams].sort((a, c) => c.logProb - a.logProb).slice(0, W);
}

describe('beamSearch', () => {
  for (const cell of ['lstm', 'gru'] as const) {
    test(`${cell}: the beams of a plain reference implementation, finished ones included`, async () => {
      let early = 0;
      for (const [V, W, maxTokens, seed] of [[12, 3, 6, 1], [12, 4, 8, 2], [30, 5, 7, 3], [9, 1, 5, 4], [12, 6, 4, 5]]) {
        // A tokenizer model: <pad>, <unk>, <sos>, <eos> and V - 4 characters.
        const tokenizer = CharTokenizer.fit('abcdefghijklmnopqrstuvwxyz'.slice(0, V - 4));
        const m = await LanguageModel.create({ tokenizer, embeddingSize: 6, hiddenSize: 7, layers: 2, cell, device: 'cpu', seed });
        try {
          const prompt = [4, 5, 6].map((id) => id % V);
          const got: Beam[] = await m.beamSearch(prompt, { beamWidth: W, maxTokens });
          const want = await referenceBeams(networkOf(m), prompt, W, maxTokens);
          expect(got.map((b) => b.ids)).toEqual(want.map((b) => b.ids));
          got.forEach((b, i) => expect(b.logProb).toBeCloseTo(want[i].logProb, 4));
          expect(got.map((b) => b.text)).toEqual(want.map((b) => tokenizer.decode(b.ids)));
          early += got.filter((b) => b.ids.length < maxTokens).length;
        } finally {
          m.dispose();
        }
      }
      expect(early).toBeGreaterThan(0); // some beams ended at <eos>
    });
  }

  test('a model of token ids: no id is special (none left out, none ends a beam), as a plain reference', async () => {
    let special = 0;
    for (const [V, W, maxTokens, seed] of [[12, 3, 6, 1], [9, 4, 5, 2], [6, 6, 4, 3]]) {
      const m = await LanguageModel.create({ vocabSize: V, embeddingSize: 6, hiddenSize: 7, layers: 2, device: 'cpu', seed });
      try {
        const got = await m.beamSearch([4 % V, 5 % V], { beamWidth: W, maxTokens });
        const want = await referenceBeams(networkOf(m), [4 % V, 5 % V], W, maxTokens, false);
        expect(got.map((b) => b.ids)).toEqual(want.map((b) => b.ids));
        got.forEach((b) => expect(b.ids).toHaveLength(maxTokens));
        special += got.filter((b) => b.ids.some((id) => id === PAD_ID || id === SOS_ID || id === EOS_ID)).length;
      } finally {
        m.dispose();
      }
    }
    expect(special).toBeGreaterThan(0); // ids 0, 2 and 3 are chosen like any other
  });

  test('the cost per step does not grow with the length (2,000 vs 16,000 steps)', async () => {
    const m = withoutEos(await tiny(50));
    try {
      const run = async (maxTokens: number) => expect((await m.beamSearch([5], { beamWidth: 5, maxTokens }))[0].ids).toHaveLength(maxTokens);
      await run(500); // warm-up
      const short = await cpuCost(3, () => run(2000));
      const long = await cpuCost(1, () => run(16_000));
      console.log(`beamSearch: 2,000 steps ${short.toFixed(0)} ms of CPU, 16,000 steps ${long.toFixed(0)} ms (x${(long / short).toFixed(1)})`);
      expect(long / short).toBeLessThan(20); // linear: ~8; copying every hypothesis each step: ~60
    } finally {
      m.dispose();
    }
  }, 120_000);
});

describe('long prompts', () => {
  test('a 20,000-token prompt leaves native memory where it was (predictNext, generate, beamSearch)', async () => {
    const m = await tiny(3000, { embeddingSize: 16, hiddenSize: 16 });
    try {
      const long = Int32Array.from({ length: 20_000 }, (_, i) => 4 + ((i * 7) % 2996));
      // Warm-up: the model's working memory for one request (prompts are fed in chunks of at most
      // 32 tokens: a 40-token prompt fills one) and for beams.
      const warm = long.subarray(0, 40);
      await m.predictNext(warm);
      await m.generate({ prompt: warm, maxTokens: 3, seed: 1 });
      await m.beamSearch([5, 6], { beamWidth: 3, maxTokens: 3 });
      // Within a few bytes: the decoding rows' scratch of drawn ids grows with the steps queued per
      // round trip, which follow the measured step time (1 to 3 here: tens of bytes); a prompt's
      // activations would be 20,000 x 16 floats (1.3 MB).
      const live = () => cpuBackend.memoryStats().liveBytes;
      const before = live();
      await m.predictNext(long);
      expect(live() - before).toBeLessThanOrEqual(64);
      await m.generate({ prompt: long, maxTokens: 3, seed: 1 });
      expect(live() - before).toBeLessThanOrEqual(64);
      await m.beamSearch(long, { beamWidth: 3, maxTokens: 3 });
      expect(live() - before).toBeLessThanOrEqual(64);
    } finally {
      m.dispose();
    }
  });

  test('predictNext gives what the full forward pass (log-probabilities at every position) does, over windows too', async () => {
    const m = await LanguageModel.create({ vocabSize: 200, embeddingSize: 12, hiddenSize: 16, layers: 2, device: 'cpu', seed: 6 });
    try {
      const V = 200, net = networkOf(m);
      for (const T of [1, 2, 40, 700]) {
        const prompt = Int32Array.from({ length: T }, (_, i) => 4 + ((i * 13) % 196));
        const got = await m.predictNext(prompt, { topK: 20 });
        net.resetState(1);
        const all = await net.stream.read(net.logProbs(prompt, T, 1));
        // A model of token ids: every id is a candidate (none is <pad> or <sos>).
        const row = Array.from(all.subarray((T - 1) * V)).map((lp, id) => ({ id, lp }));
        const want = row.sort((a, b) => b.lp - a.lp).slice(0, 20);
        expect(got.map((p) => p.id)).toEqual(want.map((t) => t.id));
        got.forEach((p, i) => expect(p.probability).toBeCloseTo(Math.exp(want[i].lp), 6));
      }
      expect((await m.predictNext([5], { topK: V })).map((p) => p.id).sort((a, b) => a - b)).toEqual([...Array(V).keys()]);
    } finally {
      m.dispose();
    }
  });
});

describe('models of token ids', () => {
  test('generate: id 3 is a token (no <eos>), and a sentences-mode model gets no id put in front of its prompt', async () => {
    // After 5 always comes 3, after 3 always 5: greedy generation alternates and never stops early.
    const m = await tiny(8, { seed: 2 });
    try {
      const stream = Array.from({ length: 400 }, (_, i) => (i % 2 ? 3 : 5));
      await m.fit(stream, { epochs: 30, batchSize: 4, seqLength: 8, progress: false, optimizer: { type: 'adam', lr: 0.05 } });
      expect(await m.generate({ prompt: [5], maxTokens: 6, temperature: 0 })).toBe('3 5 3 5 3 5');
      const sentences = Array.from({ length: 50 }, () => [5, 3, 5, 3, 5, 3]);
      await m.fit(sentences, { epochs: 20, batchSize: 10, progress: false, optimizer: { type: 'adam', lr: 0.05 } });
      // Prompt [5] as given (no id 2 in front): the model continues with 3.
      const [first] = await m.predictNext([5], { topK: 1 });
      expect(first.id).toBe(3);
      // No prompt: the documented start state (zeros), whose next-token distribution is softmax(decoder bias).
      const g = await m.generate({ maxTokens: 3, temperature: 0, details: true });
      const start = await m.predictNext([], { topK: 8 });
      expect(g.ids[0]).toBe(start[0].id);
      const bias = Array.from(await networkOf(m).readParam('decoder.bias'));
      const z = Math.log(bias.reduce((a, b) => a + Math.exp(b), 0));
      for (const p of start) expect(p.probability).toBeCloseTo(Math.exp(bias[p.id] - z), 6);
    } finally {
      m.dispose();
    }
  }, 60_000);
});
