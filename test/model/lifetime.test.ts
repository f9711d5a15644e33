// Lifetime: two models train at once in one process; create/dispose cycles and many small
// steps keep RSS flat (native memory is freed by dispose, or by the finalizer when the
// JavaScript object is collected); calls after dispose are ERR_DISPOSED.
import { expect, test } from 'vitest';
import { LanguageModel } from '../../lib/model';
import { WordTokenizer } from '../../lib/tokenizers';
import { cpuBackend } from '../../lib/backend/cpu';

// Under test:asan, freed memory sits in ASan's quarantine: RSS bounds say nothing there (the
// same code runs, checked for use-after-free instead).
const rssChecked = !process.env.RNNLM_SANITIZED;

const text = 'the cat sat on the mat . the dog sat on the log . '.repeat(40);
const tokenizer = WordTokenizer.fit(text);
const make = (seed: number) => LanguageModel.create({ tokenizer, embeddingSize: 16, hiddenSize: 16, layers: 2, device: 'cpu', seed });

test('two models train at the same time and each matches its run alone', async () => {
  const opts = { epochs: 2, batchSize: 4, seqLength: 8, progress: false } as const;
  const [a, b] = [await make(1), await make(2)];
  const together = await Promise.all([a.fit(text, opts), b.fit(text, opts)]);
  a.dispose();
  b.dispose();
  const alone = await make(1);
  const solo = await alone.fit(text, opts);
  alone.dispose();
  expect(together[0].map((h) => h.loss)).toEqual(solo.map((h) => h.loss));
  expect(together[1][1].loss).not.toBe(solo[1].loss); // a different seed really is a different model
});

test('after the first epoch a training step allocates no device memory (sentences and stream mode)', async () => {
  const m = await make(3);
  for (const mode of ['stream', 'sentences'] as const) {
    const counts: number[] = [];
    const data = mode === 'stream' ? text : text.split(' . ').map((s) => s + ' .');
    await m.fit(data, {
      mode, epochs: 4, batchSize: 4, seqLength: 8, progress: false, validation: data.slice(0, 20),
      onEpochEnd: () => void counts.push(cpuBackend.memoryStats().allocations),
    });
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts.slice(1)).toEqual([counts[0], counts[0], counts[0]]);
  }
  m.dispose();
});

// 10,000 steps of 4 x 4 tokens (about 32 per epoch of this text); SOAK_STEPS scales it.
const soakSteps = Number(process.env.SOAK_STEPS ?? 10_000);

test(`1,000 create/dispose cycles and ${soakSteps.toLocaleString('en-US')} small steps keep RSS flat`, async () => {
  const rss = () => process.memoryUsage().rss / 2 ** 20;
  for (let i = 0; i < 50; i++) (await make(i)).dispose(); // warm-up: allocator pools, code
  global.gc?.();
  const before = rss();
  for (let i = 0; i < 1000; i++) {
    const m = await make(i);
    if (i % 2) m.dispose(); // the other half are left to the finalizer
  }
  const m = await make(5);
  // Steps of an epoch from the first one's tokens (16 per 4 x 4 window), then the rest.
  const [first] = await m.fit(text, { epochs: 1, batchSize: 4, seqLength: 4, progress: false });
  const perEpoch = Math.ceil(first.tokens / 16);
  const epochs = Math.ceil(soakSteps / perEpoch) - 1;
  if (epochs > 0) await m.fit(text, { epochs, batchSize: 4, seqLength: 4, progress: false });
  const steps = perEpoch * (epochs + 1);
  m.dispose();
  await new Promise((r) => setTimeout(r, 50));
  global.gc?.();
  const growth = rss() - before;
  console.log(`RSS before ${before.toFixed(1)} MiB, growth after 1,000 create/dispose cycles and ${steps} steps: ${growth.toFixed(1)} MiB (${rssChecked ? 'bound 64' : 'not bounded under ASan'})`);
  if (rssChecked) expect(growth).toBeLessThan(64);
}, 120_000);

test('a stream left to the garbage collector frees its thread and memory', async () => {
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 200; i++) {
    const s = cpuBackend.createStream();
    s.alloc('f32', 1 << 18); // 1 MiB each, never freed by hand
    await s.sync();
  }
  global.gc?.();
  await new Promise((r) => setTimeout(r, 100));
  global.gc?.();
  const grew = (process.memoryUsage().rss - before) / 2 ** 20;
  console.log(`200 abandoned streams with 1 MiB each: RSS growth ${grew.toFixed(1)} MiB`);
  if (rssChecked) expect(grew).toBeLessThan(150); // without finalizers it would be >= 200 MiB
});
