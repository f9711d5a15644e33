// The `precision` option (issue 26, item 3): the one list of precisions, what each backend
// computes in, and the refusals that say so — at the API (create, load, quantize), at the
// Network, and natively (a stream or an RNN descriptor asked for a precision its device lacks).
// tf32's numbers are the GPU check's (gpu/gpu-check.ts); here the CPU must refuse it clearly and
// device 'auto' must fall back to fp32 and say why.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { cpuBackend } from '../../lib/advanced';
import { PRECISIONS } from '../../lib/backend/types';
import { LanguageModel, type CreateOptions } from '../../lib/model';

const dir = mkdtempSync(join(tmpdir(), 'rnnlm-precision-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tiny: CreateOptions = { vocabSize: 12, embeddingSize: 6, hiddenSize: 6, layers: 1 };

test('the CPU computes in fp32 only: device cpu refuses every other precision with the reason', async () => {
  expect(cpuBackend.precisions).toEqual(['fp32']);
  for (const precision of PRECISIONS.filter((p) => p !== 'fp32')) {
    await expect(LanguageModel.create({ ...tiny, device: 'cpu', precision })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: expect.stringMatching(new RegExp(`precision '${precision}' is not available: the cpu backend computes in 'fp32' \\(${precision === 'tf32' ? "'tf32' is a mode of CUDA's tensor cores" : `'${precision}' is CUDA's mixed precision`}\\)`)),
    });
  }
  // What it got, cut to a readable length.
  await expect(LanguageModel.create({ ...tiny, device: 'cpu', precision: 'x'.repeat(100_000) as never })).rejects.toMatchObject({
    message: expect.stringMatching(/^LanguageModel.create: precision must be one of 'fp32', 'tf32', 'bf16', 'fp16' \(got 'x{80}…' \(100,000 characters\)\)$/),
  });
  await expect(LanguageModel.create({ ...tiny, device: 'cpu', precision: 'fp64' as never })).rejects.toMatchObject({
    code: 'ERR_INVALID_ARGUMENT',
    message: expect.stringMatching(/precision must be one of 'fp32', 'tf32', 'bf16', 'fp16'/),
  });
  const m = await LanguageModel.create({ ...tiny, device: 'cpu', precision: 'fp32' });
  expect(m.precision).toBe('fp32');
  m.dispose();
});

test("device 'auto' takes the precision where the device has it, else fp32 with the reason", async () => {
  const m = await LanguageModel.create({ ...tiny, precision: 'tf32' });
  try {
    if (m.device === 'cuda') {
      expect(m.precision).toBe('tf32');
    } else {
      expect(m.precision).toBe('fp32');
      expect(m.deviceReason).toMatch(/precision 'tf32' fell back to 'fp32' \(the cpu backend computes in 'fp32'\)/);
      // It trains and predicts as any fp32 model does.
      const r = await m.predictNext([1, 2, 3], { topK: 2 });
      expect(r).toHaveLength(2);
    }
  } finally {
    m.dispose();
  }
});

test('load: the same rules; an int8 model computes in int8 and fp32; quantize makes an fp32 model', async () => {
  const path = join(dir, 'm.safetensors');
  const m = await LanguageModel.create({ ...tiny, device: 'cpu' });
  await m.save(path);
  await expect(LanguageModel.load(path, { device: 'cpu', precision: 'bf16' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/precision 'bf16' is not available/) });
  await expect(LanguageModel.load(path, { quantize: 'int8', precision: 'tf32' })).rejects.toMatchObject({
    code: 'ERR_INVALID_ARGUMENT',
    message: expect.stringMatching(/an int8 model computes in int8 and fp32 \(precision 'tf32' was asked\)/),
  });
  await expect(LanguageModel.load(path, { precision: 'half' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/precision must be one of/) });
  const auto = await LanguageModel.load(path, { precision: 'fp16' });
  // fp16 is CUDA's: 'auto' keeps it there and falls back on the CPU.
  if (auto.device === 'cuda') {
    expect(auto.precision).toBe('fp16');
  } else {
    expect(auto.precision).toBe('fp32');
    expect(auto.deviceReason).toMatch(/precision 'fp16' fell back to 'fp32' \(the cpu backend computes in 'fp32'\)/);
  }
  const q = await m.quantize('int8');
  expect(q.precision).toBe('fp32');
  // An int8 file loaded under 'auto' runs on the CPU: a precision falls back there too.
  await q.save(join(dir, 'q.safetensors'));
  const q2 = await LanguageModel.load(join(dir, 'q.safetensors'), { precision: 'tf32' });
  expect([q2.quantization, q2.precision]).toEqual(['int8', 'fp32']);
  expect(q2.deviceReason).toMatch(/int8 models run on the CPU; precision 'tf32' fell back to 'fp32' \(an int8 model computes in int8 and fp32\)/);
  for (const x of [m, auto, q, q2]) x.dispose();
});
