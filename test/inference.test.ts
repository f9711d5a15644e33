// Inference at scale and at the edges: dispose during generate leaves nothing unhandled (a child
// process); stop strings cost the same per token at any length, keep the event loop turning and
// cut exactly where the stop string starts; beam search matches a plain reference and grows
// linearly; a long prompt leaves no memory behind and predicts what the full forward pass does.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { cpuBackend } from '../lib/backend/cpu';
import { LanguageModel, type Beam } from '../lib/model';
import type { Network } from '../lib/nn/network';
import { CharTokenizer, EOS_ID, PAD_ID, SOS_ID, WordTokenizer } from '../lib/tokenizers';

const tiny = (vocabSize: number, more: Parameters<typeof LanguageModel.create>[0] = {}) =>
  LanguageModel.create({ vocabSize, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu', seed: 1, ...more });

/** Milliseconds of the fastest of `times` runs of f. */
async function fastest(times: number, f: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await f();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/** Makes <eos> (almost) impossible, so that generation and beams run to maxTokens. */
function withoutEos(m: LanguageModel): LanguageModel {
  const V = m.config.vocabSize;
  m.network.writeParam('decoder.bias', Float32Array.from({ length: V }, (_, i) => (i === EOS_ID ? -100 : 0)));
  return m;
}

describe('dispose during inference', () => {
  test('24 rounds, dispose at different moments of generate and beamSearch: ERR_DISPOSED, and the process lives on (child process)', () => {
    const rounds = 24;
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'children', 'dispose-child.ts'), String(rounds)], {
      cwd: join(__dirname, '..'), encoding: 'utf8', timeout: 90_000,
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

describe('long prompts', () => {
  test('a 20,000-token prompt leaves native memory where it was (predictNext, generate, beamSearch)', async () => {
    const m = await tiny(3000, { embeddingSize: 16, hiddenSize: 16 });
    try {
      const long = Int32Array.from({ length: 20_000 }, (_, i) => 4 + ((i * 7) % 2996));
      // Warm-up: the model's working memory for batch 1 and for beams.
      await m.predictNext([5, 6]);
      await m.generate({ prompt: [5, 6], maxTokens: 3, seed: 1 });
      await m.beamSearch([5, 6], { beamWidth: 3, maxTokens: 3 });
      const live = () => cpuBackend.memoryStats().liveBytes;
      const before = live();
      await m.predictNext(long);
      expect(live()).toBe(before);
      await m.generate({ prompt: long, maxTokens: 3, seed: 1 });
      expect(live()).toBe(before);
      await m.beamSearch(long, { beamWidth: 3, maxTokens: 3 });
      expect(live()).toBe(before);
    } finally {
      m.dispose();
    }
  });

  test('predictNext gives what the full forward pass (log-probabilities at every position) does, over windows too', async () => {
    const m = await LanguageModel.create({ vocabSize: 200, embeddingSize: 12, hiddenSize: 16, layers: 2, device: 'cpu', seed: 6 });
    try {
      const V = 200, net = m.network;
      for (const T of [1, 2, 40, 700]) {
        const prompt = Int32Array.from({ length: T }, (_, i) => 4 + ((i * 13) % 196));
        const got = await m.predictNext(prompt, { topK: 20 });
        net.resetState(1);
        const all = await net.stream.read(net.logProbs(prompt, T, 1));
        const row = Array.from(all.subarray((T - 1) * V)).map((lp, id) => ({ id, lp })).filter((t) => t.id !== PAD_ID && t.id !== SOS_ID);
        const want = row.sort((a, b) => b.lp - a.lp).slice(0, 20);
        expect(got.map((p) => p.id)).toEqual(want.map((t) => t.id));
        got.forEach((p, i) => expect(p.probability).toBeCloseTo(Math.exp(want[i].lp), 6));
      }
    } finally {
      m.dispose();
    }
  });
});
