// Half-precision checkpoints: float32 -> F16 / BF16 rounding (nearest, ties to even) against
// known patterns and a nearest-neighbour property over random values, every finite F16 pattern
// back and forth, and save({ dtype }) -> load through the public API: half the file, the weights
// as rounded, an overflow for F16 refused, and the file read by the independent parser.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { networkOf } from '../../lib/advanced';
import { bf16Bits, bf16Value, f16Bits, f16Value, fromHalf, toHalf } from '../../lib/io/half';
import { LanguageModel } from '../../lib/model';
import { Random } from '../../lib/util/random';

const dir = mkdtempSync(join(tmpdir(), 'rnnlm-half-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('rounding', () => {
  test('F16: known patterns (IEEE 754 binary16)', () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00],
      [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [0.1, 0x2e66], [1 / 3, 0x3555],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [-0, 0x8000], [0, 0],
    ];
    for (const [x, h] of cases) expect(f16Bits(x), `${x}`).toBe(h);
  });

  test('BF16: known patterns', () => {
    const cases: [number, number][] = [[1, 0x3f80], [-2, 0xc000], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [3e38, 0x7f62], [0.1, 0x3dcd]];
    for (const [x, h] of cases) expect(bf16Bits(x), `${x}`).toBe(h);
  });

  test('every finite F16 pattern survives float32 and back', () => {
    for (let h = 0; h < 0x10000; h++) if ((h & 0x7c00) !== 0x7c00) expect(f16Bits(f16Value(h))).toBe(h);
  });

  for (const [name, bits, value, scale] of [['F16', f16Bits, f16Value, 1e4], ['BF16', bf16Bits, bf16Value, 1e30]] as const) {
    test(`${name}: each of 20,000 random float32 values goes to its nearest pattern, ties to the even one`, () => {
      const rng = new Random(3);
      for (let i = 0; i < 20000; i++) {
        const x = Math.fround(rng.uniform(-1, 1) * scale ** rng.next());
        const h = bits(x);
        const d = Math.abs(value(h) - x);
        for (const n of [h - 1, h + 1]) {
          const dn = Math.abs(value(n & 0xffff) - x);
          expect(d <= dn, `${x}: ${h.toString(16)} vs ${n.toString(16)}`).toBe(true);
          if (d === dn) expect(h & 1).toBe(0);
        }
      }
    });
  }
});

describe('save({ dtype }) and load', () => {
  for (const dtype of ['f16', 'bf16'] as const) {
    test(`${dtype}: half the file; loads as the rounded weights; predictions close to float32's`, async () => {
      const m = await LanguageModel.create({ vocabSize: 50, embeddingSize: 16, hiddenSize: 32, layers: 2, device: 'cpu', seed: 4 });
      const f32 = join(dir, 'a.safetensors'), half = join(dir, `a.${dtype}.safetensors`);
      await m.save(f32);
      await m.save(half, { dtype });
      const ratio = statSync(half).size / statSync(f32).size;
      expect(ratio).toBeLessThan(0.51);
      const loaded = await LanguageModel.load(half, { device: 'cpu' });
      const D = dtype === 'f16' ? 'F16' : 'BF16';
      const want = fromHalf(D, toHalf(D, (await networkOf(m).stream.read(networkOf(m).allParams)) as Float32Array));
      expect(await networkOf(loaded).stream.read(networkOf(loaded).allParams)).toEqual(want);
      const [a, b] = [await m.predictNext([3, 7, 9], { topK: 50 }), await loaded.predictNext([3, 7, 9], { topK: 50 })];
      const p = new Map(a.map((t) => [t.id, t.probability]));
      for (const t of b) expect(Math.abs(t.probability - p.get(t.id)!) / p.get(t.id)!).toBeLessThan(dtype === 'f16' ? 5e-3 : 5e-2);
      // The independent parser reads the file (PyTorch's safetensors reads these dtypes the same way).
      const py = JSON.parse(execFileSync('python3', [join(__dirname, '..', 'independent_safetensors.py'), half], { encoding: 'utf8' }));
      expect(py.tensors['encoder.weight'].dtype).toBe(D);
      const enc = want.subarray(0, 50 * 16);
      expect(py.tensors['encoder.weight'].sum).toBeCloseTo(enc.reduce((x, y) => x + y, 0), 4);
      loaded.dispose();
      m.dispose();
    });
  }

  test("f16 refuses a weight beyond 65504 (naming it); bf16 keeps it; a bad dtype is ERR_INVALID_ARGUMENT", async () => {
    const m = await LanguageModel.create({ vocabSize: 10, embeddingSize: 4, hiddenSize: 4, layers: 1, device: 'cpu' });
    const bias = new Float32Array(10);
    bias[3] = 70000;
    networkOf(m).writeParam('decoder.bias', bias);
    const e = await m.save(join(dir, 'big.safetensors'), { dtype: 'f16' }).catch((x) => x);
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    expect(e.message).toMatch(/^save: decoder\.bias holds 70000 at element 3, beyond float16's largest finite value \(65504\); save with dtype 'bf16'/);
    await m.save(join(dir, 'big.safetensors'), { dtype: 'bf16' });
    const loaded = await LanguageModel.load(join(dir, 'big.safetensors'), { device: 'cpu' });
    expect((await networkOf(loaded).readParam('decoder.bias'))[3]).toBe(bf16Value(bf16Bits(70000)));
    loaded.dispose();
    const bad = await m.save(join(dir, 'x.safetensors'), { dtype: 'int4' as never }).catch((x) => x);
    expect(bad.code).toBe('ERR_INVALID_ARGUMENT');
    expect(bad.message).toMatch(/save: dtype must be one of/);
    m.dispose();
  });
});
