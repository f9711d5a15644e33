// bench/pytorch_quantized.py, PyTorch's dynamic quantization as the peer of our int8 inference:
// it loads our checkpoint into PyTorch and scores the text as our evaluate does, so its float32
// perplexity is ours. Runs where a python3 can import torch (Debian: apt-get install python3-torch;
// $PYTHON picks the interpreter), and skips, saying so, elsewhere.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LanguageModel } from '../../lib/index';
import { Random } from '../../lib/util/random';

const script = join(__dirname, '..', '..', 'bench', 'pytorch_quantized.py');
const candidates = process.env.PYTHON ? [process.env.PYTHON] : ['python3', '/usr/bin/python3'];
const python = candidates.find((py) => spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
const title = 'pytorch_quantized.py on a tiny checkpoint';

interface Measured {
  name: string;
  status: 'ok' | 'error';
  error?: string;
  generate?: { tokens: number; seconds: number; tokensPerSecond: number };
  predictNext?: { calls: number; medianMs: number; p90Ms: number };
  evaluate?: { tokens: number; seconds: number; tokensPerSecond: number; perplexity: number };
  fileBytes?: number;
}

describe.skipIf(!python)(python ? title : `${title} [SKIPPED: no python3 here imports torch (${candidates.join(', ')})]`, () => {
  let dir = '';
  beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), 'rnnlm-pyq-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // 20 columns of 25 targets in windows of 7 (the last shorter), then a tail of 19 targets.
  const N = 520, batchSize = 20, seqLength = 7, engines = ['qnnpack', 'onednn', 'no-such-engine'];

  test.each(['lstm', 'gru'] as const)('%s: one JSON object, exit 0, our evaluate\'s perplexity for the float32 model', async (cell) => {
    const model = await LanguageModel.create({ vocabSize: 50, embeddingSize: 8, hiddenSize: 8, layers: 2, cell, device: 'cpu', seed: 5 });
    const rng = new Random(11);
    const ids = Int32Array.from({ length: N }, () => Math.floor(rng.uniform(0, 50)));
    const prompt = ids.slice(0, 6);
    // Trained on the text itself, so that its scores depend on the carried state (a fresh model's hardly do).
    await model.fit(ids, { epochs: 30, batchSize: 4, seqLength: 20, optimizer: { type: 'adam', lr: 0.03 }, progress: false });
    const files = { checkpoint: join(dir, `${cell}.safetensors`), eval: join(dir, `${cell}.e.i32`), prompt: join(dir, `${cell}.p.i32`) };
    await model.save(files.checkpoint);
    writeFileSync(files.eval, ids);
    writeFileSync(files.prompt, prompt);
    const ours = await model.evaluate(ids, { batchSize, seqLength });
    model.dispose();

    const args = ['--checkpoint', files.checkpoint, '--eval-ids', files.eval, '--prompt-ids', files.prompt, '--seconds', '0.2', '--threads', '1',
      '--engines', engines.join(','), '--eval-batch', String(batchSize), '--eval-seq', String(seqLength)];
    const r = spawnSync(python!, [script, ...args], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ torch: expect.any(String), threads: 1, engines: expect.any(Array), checkpoint: { cell, vocabSize: 50, hiddenSize: 8, layers: 2 } });
    const models: Measured[] = report.models;
    expect(models.map((m) => m.name)).toEqual(['float32', ...engines.map((e) => `int8-${e}`)]);
    expect(models.find((m) => m.name === 'int8-no-such-engine')).toMatchObject({ status: 'error', error: expect.stringMatching(/supported_engines/) });
    const float = models[0];
    expect(float.status).toBe('ok');
    for (const m of models) {
      if (m.status === 'error') {
        expect(m.error).toEqual(expect.any(String));
        continue;
      }
      const figures = [m.generate!.tokens, m.generate!.tokensPerSecond, m.predictNext!.calls, m.predictNext!.medianMs, m.evaluate!.seconds, m.evaluate!.tokensPerSecond, m.fileBytes!];
      for (const x of figures) expect(x).toBeGreaterThan(0);
      expect(m.predictNext!.p90Ms).toBeGreaterThanOrEqual(m.predictNext!.medianMs);
      expect(m.evaluate!.tokens).toBe(ours.tokens);
      // Every int8 model that ran scores close to float32 (measured: within 0.4 %).
      expect(Math.abs(m.evaluate!.perplexity / float.evaluate!.perplexity - 1)).toBeLessThan(0.05);
    }
    expect(Math.abs(float.evaluate!.perplexity / ours.perplexity - 1)).toBeLessThan(1e-4);
  });
});
