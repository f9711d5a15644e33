// A model with the adaptive softmax through the public API: its options refused with precise
// errors, its checkpoints under PyTorch's names, every inference call on the exact full
// distribution (predictNext, score, generate's draws with temperature / top-k, greedy and beam
// search, batched requests), and the warning for raw ids not numbered by frequency.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { networkOf } from '../../lib/advanced';
import { readSafetensorsFile, writeSafetensorsFile } from '../../lib/io/safetensors';
import { LanguageModel, type CreateOptions } from '../../lib/model';
import { Random } from '../../lib/util/random';

const V = 60;
const SOFTMAX = { type: 'adaptive', cutoffs: [8, 24], divValue: 2, headBias: true } as const;
const create = (more: Partial<CreateOptions> = {}) =>
  LanguageModel.create({ vocabSize: V, embeddingSize: 16, hiddenSize: 16, layers: 1, device: 'cpu', seed: 3, softmax: SOFTMAX, ...more });
const dir = mkdtempSync(join(tmpdir(), 'rnnlm-adaptive-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** log p(. | prompt) from the network's forward pass over the whole prompt (the reference path). */
async function distribution(m: LanguageModel, prompt: number[]): Promise<Float64Array> {
  const net = networkOf(m);
  net.resetState(1);
  const all = (await net.stream.read(net.logProbs(Int32Array.from(prompt), prompt.length, 1))) as Float32Array;
  return Float64Array.from(all.subarray((prompt.length - 1) * V));
}

/** Pearson's chi-square of counts against probabilities (bins under 5 expected pooled), and its 1e-4 critical value. */
function chiSquare(counts: number[], probs: number[], n: number): { stat: number; critical: number } {
  let stat = 0, df = -1, poolO = 0, poolE = 0;
  probs.forEach((p, i) => {
    const e = p * n;
    if (e < 5) {
      poolO += counts[i];
      poolE += e;
      return;
    }
    stat += (counts[i] - e) ** 2 / e;
    df++;
  });
  if (poolE > 0) stat += (poolO - poolE) ** 2 / Math.max(poolE, 1e-9), df++;
  const z = 3.719; // one-sided 1e-4 (Wilson-Hilferty)
  return { stat, critical: df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3 };
}

describe('options', () => {
  const cases: [unknown, RegExp][] = [
    [{ type: 'adaptive', cutoffs: [] }, /softmax\.cutoffs must be a non-empty array/],
    [{ type: 'adaptive', cutoffs: [10, 10] }, /strictly increasing \(cutoffs\[1\] = 10 after 10\)/],
    [{ type: 'adaptive', cutoffs: [0] }, /cutoffs\[0\] must be an integer in \(0, 60\)/],
    [{ type: 'adaptive', cutoffs: [60] }, /cutoffs\[0\] must be an integer in \(0, 60\)/],
    [{ type: 'adaptive', cutoffs: [5.5] }, /cutoffs\[0\] must be an integer/],
    [{ type: 'adaptive', cutoffs: [5], divValue: 1 }, /divValue must be a number > 1/],
    [{ type: 'adaptive', cutoffs: [5], headBias: 1 }, /headBias must be a boolean/],
    [{ type: 'adaptive', cutoffs: [5], cutoff: 3 }, /unknown field 'cutoff'/],
    [{ type: 'hierarchical' }, /softmax\.type must be 'full' or 'adaptive'/],
    [{ type: 'adaptive', cutoffs: [5, 10, 20], divValue: 4 }, /cluster 2 would project to floor\(16 \/ 4\^3\) = 0 dimensions/],
    ['adaptive', /softmax must be an object/],
  ];
  for (const [softmax, message] of cases) {
    test(`refuses ${JSON.stringify(softmax)}`, async () => {
      const e = await create({ softmax: softmax as CreateOptions['softmax'] }).catch((x) => x);
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.message).toMatch(/^LanguageModel\.create: /);
      expect(e.message).toMatch(message);
    });
  }
  test('refuses tieWeights, saying why', async () => {
    const e = await create({ tieWeights: true }).catch((x) => x);
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    expect(e.message).toMatch(/cannot be used with tieWeights/);
  });
  test('fills the defaults (divValue 4, no head bias) into config.softmax', async () => {
    const m = await create({ softmax: { type: 'adaptive', cutoffs: [10] } });
    expect(m.config.softmax).toEqual({ type: 'adaptive', cutoffs: [10], divValue: 4, headBias: false });
    m.dispose();
  });
});

describe('checkpoints', () => {
  test("PyTorch's names and shapes; a load gives the same predictions; a bad softmax config is ERR_CHECKPOINT", async () => {
    const m = await create();
    const file = join(dir, 'a.safetensors');
    await m.save(file);
    const { tensors, metadata } = await readSafetensorsFile(file);
    const decoder = [...tensors].filter(([k]) => k.startsWith('decoder.')).map(([k, t]) => [k, t.shape]);
    expect(decoder).toEqual([
      ['decoder.head.weight', [10, 16]], ['decoder.head.bias', [10]],
      ['decoder.tail.0.0.weight', [8, 16]], ['decoder.tail.0.1.weight', [16, 8]],
      ['decoder.tail.1.0.weight', [4, 16]], ['decoder.tail.1.1.weight', [36, 4]],
    ]);
    const loaded = await LanguageModel.load(file, { device: 'cpu' });
    expect(loaded.config).toEqual(m.config);
    expect(await loaded.predictNext([4, 30, 2], { topK: V })).toEqual(await m.predictNext([4, 30, 2], { topK: V }));
    loaded.dispose();
    const config = JSON.parse(metadata.config);
    for (const [softmax, message] of [[{ ...SOFTMAX, cutoffs: [8, 70] }, /config\.softmax\.cutoffs\[1\] must be an integer in \(0, 60\)/], [{ ...SOFTMAX, cutoffs: [8, 30] }, /tensor 'decoder\.tail\.0\.1\.weight' has shape \[16, 8\]; the config needs \[22, 8\]/]] as const) {
      const bad = join(dir, 'bad.safetensors');
      await writeSafetensorsFile(bad, tensors, { ...metadata, config: JSON.stringify({ ...config, softmax }) });
      const e = await LanguageModel.load(bad, { device: 'cpu' }).catch((x) => x);
      expect(e.code).toBe('ERR_CHECKPOINT');
      expect(e.message).toMatch(message);
    }
    m.dispose();
  });
});

describe('inference on the exact distribution', () => {
  const prompt = [5, 40, 12, 33];

  test('predictNext and score give the full distribution of the forward pass', async () => {
    const m = await create();
    const lp = await distribution(m, prompt);
    const top = await m.predictNext(prompt, { topK: V });
    expect(top).toHaveLength(V);
    for (const t of top) expect(Math.log(t.probability)).toBeCloseTo(lp[t.id], 5);
    expect(top.map((t) => t.id)).toEqual([...lp.keys()].sort((a, b) => lp[b] - lp[a] || a - b));
    const s = await m.score([...prompt, 50], { tokenLogProbs: true });
    expect(s.tokenLogProbs!.at(-1)).toBeCloseTo(lp[50], 5);
    m.dispose();
  });

  test("generate's draws follow the distribution: temperature 1, and temperature 0.7 with top-k 10 defined on the full distribution (chi-square, 3,000 seeded draws each)", async () => {
    const m = await create();
    const lp = await distribution(m, prompt);
    const draw = async (opts: { temperature: number; topK?: number }) => {
      const counts = new Array(V).fill(0);
      const n = 3000;
      for (let s0 = 0; s0 < n; s0 += 100) {
        const gens = await Promise.all(Array.from({ length: 100 }, (_, i) => m.generate({ prompt, maxTokens: 1, seed: s0 + i, details: true, ...opts })));
        for (const g of gens) counts[g.ids[0]]++;
      }
      return { counts, n };
    };
    const plain = await draw({ temperature: 1 });
    const p1 = [...lp].map(Math.exp);
    const c1 = chiSquare(plain.counts, p1, plain.n);
    expect(c1.stat).toBeLessThan(c1.critical);
    const filtered = await draw({ temperature: 0.7, topK: 10 });
    const top10 = new Set([...lp.keys()].sort((a, b) => lp[b] - lp[a]).slice(0, 10));
    const w = [...lp].map((v, id) => (top10.has(id) ? Math.exp(v / 0.7) : 0));
    const total = w.reduce((a, b) => a + b, 0);
    expect(filtered.counts.filter((c, id) => c > 0 && !top10.has(id))).toEqual([]);
    const c2 = chiSquare(filtered.counts, w.map((x) => x / total), filtered.n);
    expect(c2.stat).toBeLessThan(c2.critical);
    // The check can fail: the plain distribution is not the filtered one.
    expect(chiSquare(filtered.counts, p1, filtered.n).stat).toBeGreaterThan(c2.critical);
    m.dispose();
  });

  test('greedy generation is the argmax path; beam search of width 1 finds it; batched requests equal requests alone', async () => {
    const m = await create();
    const greedy = await m.generate({ prompt, maxTokens: 8, temperature: 0, details: true, stopAtEos: false });
    const path = [...prompt];
    for (let i = 0; i < 8; i++) {
      const lp = await distribution(m, path);
      path.push([...lp.keys()].reduce((a, b) => (lp[b] > lp[a] ? b : a)));
    }
    expect(greedy.ids).toEqual(path.slice(prompt.length));
    const [beam] = await m.beamSearch(prompt, { beamWidth: 1, maxTokens: 8 });
    expect(beam.ids.slice(0, 8)).toEqual(greedy.ids.slice(0, beam.ids.length));
    const run = (seed: number) => m.generate({ prompt, maxTokens: 12, seed, details: true, stopAtEos: false });
    const alone: number[][] = [];
    for (let s = 0; s < 6; s++) alone.push((await run(s)).ids);
    const together = await Promise.all(Array.from({ length: 6 }, (_, s) => run(s)));
    expect(together.map((g) => g.ids)).toEqual(alone);
    m.dispose();
  });
});

describe('raw token ids', () => {
  /** A Zipfian id stream whose frequent words get the ids `rank -> id` gives them. */
  const zipf = (id: (rank: number) => number) => {
    const rng = new Random(4);
    return Array.from({ length: 3000 }, () => id(Math.min(V - 1, Math.floor(Math.exp(rng.next() * Math.log(V))) - 1)));
  };
  const warningsOf = async (ids: number[], more: Partial<CreateOptions> = {}) => {
    const seen: Error[] = [];
    const on = (w: Error) => seen.push(w);
    process.on('warning', on);
    const m = await create(more);
    try {
      await m.fit(ids, { epochs: 1, batchSize: 4, seqLength: 10 });
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', on);
      m.dispose();
    }
    return seen.filter((w) => (w as NodeJS.ErrnoException).code === 'RNNLM_ID_ORDER');
  };
  test('ids not numbered by frequency: fit warns (RNNLM_ID_ORDER), saying how much of the data the head holds', async () => {
    const w = await warningsOf(zipf((r) => V - 1 - r));
    expect(w).toHaveLength(1);
    expect(w[0].name).toBe('RnnlmWarning');
    expect(w[0].message).toMatch(/^fit: the adaptive softmax needs token ids numbered from frequent to rare .* its head \(ids < 8\) holds \d+\.\d % of the tokens, while the 8 most frequent ids hold \d+\.\d %/);
  });
  test('ids numbered by frequency, or a full softmax: no warning', async () => {
    expect(await warningsOf(zipf((r) => r))).toEqual([]);
    expect(await warningsOf(zipf((r) => V - 1 - r), { softmax: { type: 'full' } })).toEqual([]);
  });
});
