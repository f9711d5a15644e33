// AWD-LSTM's regularization through the public API: create's options (validated, kept in the
// config and in checkpoints, absent from a plain model's config), fit's ar / tar, and a run that
// trains with all of them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { readSafetensorsFile, writeSafetensorsFile } from '../../lib/io/safetensors';
import { LanguageModel } from '../../lib/model';

const dir = mkdtempSync(join(tmpdir(), 'rnnlm-awd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const AWD = { dropoutInput: 0.4, dropoutHidden: 0.25, dropoutOutput: 0.3, dropoutEmbedding: 0.1, lockedDropout: true, weightDrop: 0.5 } as const;
const V = 40;
const ids = Int32Array.from({ length: 3000 }, (_, i) => (i * 7 + (i % 5) * 3) % V); // a learnable sequence
const small = { vocabSize: V, embeddingSize: 16, hiddenSize: 16, layers: 2, device: 'cpu' as const, seed: 3 };

describe('create', () => {
  test('the options go into the config and the checkpoint; a plain model\'s config has none of them', async () => {
    const m = await LanguageModel.create({ ...small, ...AWD });
    const plain = await LanguageModel.create(small);
    try {
      expect(m.config).toMatchObject(AWD);
      for (const k of Object.keys(AWD)) expect(plain.config).not.toHaveProperty(k);
      const file = join(dir, 'awd.safetensors');
      await m.save(file);
      const loaded = await LanguageModel.load(file, { device: 'cpu' });
      expect(loaded.config).toEqual(m.config);
      loaded.dispose();
      // A config with a rate out of range is ERR_CHECKPOINT, naming the field.
      const { tensors, metadata } = await readSafetensorsFile(file);
      const config = JSON.parse(metadata.config);
      for (const [field, value, message] of [['weightDrop', 1.5, /config\.weightDrop must be a number in \[0, 0\.95\]/], ['lockedDropout', 'yes', /config\.lockedDropout must be a boolean/]] as const) {
        const bad = join(dir, 'bad.safetensors');
        await writeSafetensorsFile(bad, tensors, { ...metadata, config: JSON.stringify({ ...config, [field]: value }) });
        const e = await LanguageModel.load(bad, { device: 'cpu' }).catch((x) => x);
        expect(e.code).toBe('ERR_CHECKPOINT');
        expect(e.message).toMatch(message);
      }
    } finally {
      m.dispose();
      plain.dispose();
    }
  });

  test.each([
    [{ weightDrop: 1 }, /weightDrop must be a finite number >= 0 and <= 0\.95 \(got 1\)/],
    [{ dropoutEmbedding: -0.1 }, /dropoutEmbedding must be a finite number >= 0 and <= 0\.95/],
    [{ lockedDropout: 1 }, /lockedDropout must be true or false/],
  ])('%j is refused', async (bad, message) => {
    const e = await LanguageModel.create({ ...small, ...bad } as never).catch((x) => x);
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    expect(e.message).toMatch(message);
  });
});

describe('fit', () => {
  test('trains with every regularizer and AR / TAR: the loss falls, and the same seed gives the same run', async () => {
    const run = async () => {
      const m = await LanguageModel.create({ ...small, ...AWD });
      try {
        const logs = await m.fit(ids, { epochs: 4, batchSize: 8, seqLength: 12, optimizer: { type: 'adam', lr: 0.01 }, ar: 2, tar: 1, progress: false, seed: 5 });
        return { losses: logs.map((l) => l.loss), eval: (await m.evaluate(ids.subarray(0, 500))).loss };
      } finally {
        m.dispose();
      }
    };
    const a = await run(), b = await run();
    expect(b).toEqual(a);
    for (const l of a.losses) expect(Number.isFinite(l)).toBe(true);
    expect(a.losses[3]).toBeLessThan(a.losses[0] * 0.8);
    expect(a.eval).toBeLessThan(Math.log(V)); // evaluation (no dropping) learned something
  }, 60_000);

  test('ar and tar are for stream mode, and non-negative', async () => {
    const m = await LanguageModel.create({ ...small });
    try {
      const sentences = [Int32Array.from([1, 2, 3]), Int32Array.from([4, 5])];
      for (const [data, opts, message] of [
        [sentences, { ar: 2 }, /ar and tar need mode 'stream'/],
        [ids, { tar: -1 }, /tar must be a finite number >= 0 and <= 1000/],
      ] as const) {
        const e = await m.fit(data as never, { ...opts, progress: false }).catch((x) => x);
        expect(e.code).toBe('ERR_INVALID_ARGUMENT');
        expect(e.message).toMatch(message);
      }
    } finally {
      m.dispose();
    }
  });
});
