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
