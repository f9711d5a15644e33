// Sampling draws from softmax(logProbs / temperature) restricted by top-k, top-p and the
// excluded ids: frequencies over many draws must match the probabilities computed here.
import { afterAll, describe, expect, test } from 'vitest';
import { tensor, type DType, type Tensor } from '../../lib/backend/types';
import { sampleToken, topTokens } from '../../lib/inference/sampling';
import { Random } from '../../lib/util/random';
import { backend, make, setNonFinite } from '../helpers';

/** f throws a typed error whose message matches msg. */
const bad = (f: () => void, msg: RegExp, code = 'ERR_INVALID_ARGUMENT') =>
  expect(f).toThrow(expect.objectContaining({ code, message: expect.stringMatching(msg) }));

const logits = [2, 1, 0.5, 0, -1, 3, -2, 0.1];
const lse = Math.log(logits.reduce((a, b) => a + Math.exp(b), 0));
const logProbs = Float32Array.from(logits, (v) => v - lse);

function expected(temperature: number, topK: number, topP: number, exclude: Set<number>): number[] {
  let ids = logits.map((_, i) => i).filter((i) => !exclude.has(i));
  ids.sort((a, b) => logits[b] - logits[a]);
  if (topK > 0) ids = ids.slice(0, topK);
  let w = ids.map((i) => Math.exp(logits[i] / temperature));
  let total = w.reduce((a, b) => a + b, 0);
  if (topP < 1) {
    let acc = 0, keep = 0;
    while (keep < w.length && acc < topP * total) acc += w[keep++];
    ids = ids.slice(0, keep);
    w = w.slice(0, keep);
    total = acc;
  }
  const p = logits.map(() => 0);
  ids.forEach((id, j) => (p[id] = w[j] / total));
  return p;
}

/** (temperature, topK, topP, excluded ids) cases, for the host sampler and the device sampler alike. */
const cases: [number, number, number, number[]][] = [
  [1, 0, 1, []],
  [0.5, 0, 1, [5]],
  [2, 0, 1, [0, 1]],
  [1, 3, 1, []],
  [1, 0, 0.7, [2]],
  [0.8, 4, 0.9, []],
];

describe('sampleToken', () => {
  test.each(cases)('temperature %f, topK %i, topP %f, excluding %j: frequencies match', (temperature, topK, topP, ex) => {
    const exclude = new Set(ex);
    const rng = new Random(7);
    const n = 40_000;
    const counts = logits.map(() => 0);
    for (let i = 0; i < n; i++) counts[sampleToken(logProbs, { temperature, topK, topP }, rng, exclude)]++;
    const p = expected(temperature, topK, topP, exclude);
    for (let i = 0; i < logits.length; i++) {
      if (p[i] === 0) expect(counts[i], `id ${i} must never be drawn`).toBe(0);
      else expect(Math.abs(counts[i] / n - p[i]), `id ${i}`).toBeLessThan(5 * Math.sqrt((p[i] * (1 - p[i])) / n) + 1e-3);
    }
  });

  test('temperature 0 is argmax (JavaScript), skipping excluded ids; very low temperatures stay finite', () => {
    const rng = new Random(1);
    expect(sampleToken(logProbs, { temperature: 0, topK: 0, topP: 1 }, rng, new Set())).toBe(5);
    expect(sampleToken(logProbs, { temperature: 0, topK: 0, topP: 1 }, rng, new Set([5]))).toBe(0);
    expect(sampleToken(logProbs, { temperature: 1e-4, topK: 0, topP: 1 }, rng, new Set([5]))).toBe(0);
    expect(topTokens(logProbs, 3, new Set([0])).map((t) => t.id)).toEqual([5, 1, 2]);
  });
});

describe('the native sample op (the CPU reference of the CUDA kernel)', () => {
  const s = backend.createStream();
  afterAll(() => s.dispose());
  const N = 40_000, V = logits.length;
  const z = tensor(s.alloc('f32', N * V), 0, [N, V]);
  s.write(z, Float32Array.from({ length: N * V }, (_, i) => logits[i % V]));
  const ids = tensor(s.alloc('i32', N), 0, [N]);
  test.each(cases)('temperature %f, topK %i, topP %f, excluding %j: frequencies over %i rows match', async (temperature, topK, topP, ex) => {
    s.sample(z, ids, temperature, topK, topP, 11, Int32Array.from(ex));
    const got = (await s.read(ids)) as Int32Array;
    const counts = logits.map(() => 0);
    for (const id of got) counts[id]++;
    const p = expected(temperature, topK, topP, new Set(ex));
    for (let i = 0; i < V; i++) {
      if (p[i] === 0) expect(counts[i], `id ${i} must never be drawn`).toBe(0);
      else expect(Math.abs(counts[i] / N - p[i]), `id ${i}`).toBeLessThan(5 * Math.sqrt((p[i] * (1 - p[i])) / N) + 1e-3);
    }
    // The draw is a function of (seed, row): the same seed gives the same ids, another seed others.
    s.sample(z, ids, temperature, topK, topP, 11, Int32Array.from(ex));
    expect(await s.read(ids)).toEqual(got);
    s.sample(z, ids, temperature, topK, topP, 12, Int32Array.from(ex));
    if (p.filter((x) => x > 0).length > 1) expect(await s.read(ids)).not.toEqual(got);
  });

  test.each(cases)('a seed per row (seedFrom [N, 2]): each row draws as it would alone with its seed — temperature %f, topK %i, topP %f, excluding %j', async (temperature, topK, topP, ex) => {
    const rows = 64, rng = new Random(5);
    const rowLogits = Float32Array.from({ length: rows * V }, () => rng.next() * 6 - 3);
    const zr = make(s, 'f32', [rows, V], rowLogits), idr = make(s, 'i32', [rows]), vals = make(s, 'f32', [rows]);
    // Seeds past 2^32 and 2^53's low bits: both halves matter.
    const seeds = Array.from({ length: rows }, (_, n) => n * 0x1_0000_0001 + 77);
    const halves = new Int32Array(2 * rows);
    seeds.forEach((x, n) => ((halves[2 * n] = x % 2 ** 32 | 0), (halves[2 * n + 1] = Math.floor(x / 2 ** 32) | 0)));
    const seedFrom = make(s, 'i32', [2 * rows], halves);
    s.sample(zr, idr, temperature, topK, topP, 0, Int32Array.from(ex), vals, seedFrom);
    const together = Array.from(await s.read(idr));
    const alone: number[] = [];
    for (let n = 0; n < rows; n++) {
      const one = make(s, 'f32', [1, V], rowLogits.subarray(n * V, (n + 1) * V)), id = make(s, 'i32', [1]);
      s.sample(one, id, temperature, topK, topP, seeds[n], Int32Array.from(ex));
      alone.push((await s.read(id))[0]);
    }
    expect(together).toEqual(alone);
    expect(Array.from(await s.read(vals))).toEqual(together.map((id, n) => rowLogits[n * V + id]));
  });

  test('argmax at temperature 0; bad arguments are typed errors', async () => {
    const one = tensor(z.buffer, 0, [1, V]), id = tensor(ids.buffer, 0, [1]);
    s.sample(one, id, 0, 0, 1, 1, Int32Array.of(5));
    expect((await s.read(id))[0]).toBe(0);
    bad(() => s.sample(one, id, -1, 0, 1, 1), /temperature/);
    bad(() => s.sample(one, id, 1, V + 1, 1, 1), /topK/);
    bad(() => s.sample(one, id, 1, 0, 0, 1), /topP/);
    bad(() => s.sample(one, id, 1, 0, 1, 1, Int32Array.of(V)), /exclude\[0\]/);
    bad(() => s.sample(one, id, 1, 0, 1, 1, Int32Array.from({ length: V }, (_, i) => i)), /excluded ids/);
    bad(() => s.sample(one, tensor(z.buffer, 0, [1]), 1, 0, 1, 1), /ids/);
    const two = tensor(z.buffer, 0, [2, V]), ids2 = tensor(ids.buffer, 0, [2]);
    bad(() => s.sample(two, ids2, 1, 0, 1, 1, null, null, make(s, 'i32', [3])), /seedFrom must be i32 \[2\] \(the seed's low and high 32 bits\) or \[4\] \(a seed per row; got i32 \[3\]\)/);
    bad(() => s.sample(two, ids2, 1, 0, 1, 1, null, null, tensor(ids.buffer, 1, [4])), /sample: .*overlap/);
  });

  // The op's argmax (temperature 0, and every draw's shift) is the first allowed id that no later
  // allowed one exceeds, NaN never larger: the reference loop, here in JavaScript, on rows made to
  // defeat a shortcut (ties, an excluded maximum, NaNs, infinities, signed zeros).
  test.each(['f32', 'f64'] as const)('%s: argmax = the reference loop on ties, excluded maxima, NaNs and infinities', async (dtype) => {
    const reference = (row: number[], ex: number[]) => {
      let best = -1;
      row.forEach((x, v) => {
        if (!ex.includes(v) && (best < 0 || x > row[best])) best = v;
      });
      return best;
    };
    const rows: [number[], number[]][] = [
      [[1, 3, 3, 2, 3], []], // first of tied maxima
      [[1, 3, 3, 2, 3], [1]], // the first maximum excluded: the next one
      [[1, 3, 3, 2, 3], [1, 2, 4]], // every maximum excluded: the allowed max
      [[3, 1, 2, 2, 0], [0]], // index 0 holds the excluded max
      [[NaN, 1, 5, 2, 5], []], // a NaN first: it stays the argmax
      [[NaN, 1, 5, 2, 5], [0]], // an excluded NaN first
      [[1, NaN, 5, NaN, 4], []], // NaNs later are never larger
      [[-Infinity, -Infinity, -Infinity, -Infinity, -Infinity], [0]],
      [[1, Infinity, 2, Infinity, 0], [1]],
      [[-0, 0, -1, 0, -0], []],
      [[-1, -0, -2, 0, -3], [1]],
      [[2, 2, 2, 2, 2], [0, 1, 2]],
    ];
    const V = 5, N = rows.length;
    const idsT = make(s, 'i32', [1]);
    for (const [r, ex] of rows) {
      // write takes finite numbers only: the specials are set afterwards.
      const zt = make(s, dtype, [1, V], r.map((x) => (Number.isFinite(x) ? x : 0)));
      r.forEach((x, v) => Number.isFinite(x) || setNonFinite(s, tensor(zt.buffer, v, [1]), x));
      s.sample(zt, idsT, 0, 0, 1, 1, ex.length ? Int32Array.from(ex) : null);
      expect((await s.read(idsT))[0], `row ${JSON.stringify(r)} excluding ${JSON.stringify(ex)}`).toBe(reference(r, ex));
      zt.buffer.free();
    }
    // Long random rows with repeated values (a vector's lanes, and the tail after them).
    const rng = new Random(5);
    for (const len of [7, 64, 1003]) {
      const r = Array.from({ length: len }, () => Math.floor(rng.uniform(0, 6)));
      const top = Math.max(...r), ex = r.flatMap((x, v) => (x === top ? [v] : [])).slice(0, Math.min(3, N));
      for (const e of [[], ex]) {
        const zt = make(s, dtype, [1, len], r), id1 = make(s, 'i32', [1]);
        s.sample(zt, id1, 0, 0, 1, 1, e.length ? Int32Array.from(e) : null);
        expect((await s.read(id1))[0], `length ${len} excluding ${JSON.stringify(e)}`).toBe(reference(r, e));
        zt.buffer.free();
        id1.buffer.free();
      }
    }
    idsT.buffer.free();
  });

  // values[n] = logits[n, ids[n]]: with log-probabilities in, each drawn token's log-probability.
  const valueCases: [DType, number, number, number, number[]][] = [];
  for (const dtype of ['f32', 'f64'] as const)
    for (const [temperature, topK, topP] of [[0, 0, 1], [1, 0, 1], [1, 5, 0.9]])
      for (const ex of [[], [0, 3, 7]]) valueCases.push([dtype, temperature, topK, topP, ex]);
  test.each(valueCases)('%s, temperature %f, topK %i, topP %f, excluding %j: values holds the drawn entries', async (dtype, temperature, topK, topP, ex) => {
    const rows = 64, cols = 50, rng = new Random(3);
    const lp = make(s, dtype, [rows, cols], Array.from({ length: rows * cols }, () => rng.uniform(-3, 3)));
    s.logSoftmax(lp, lp);
    const got = make(s, 'i32', [rows]), values = make(s, dtype, [rows], new Array(rows).fill(1)); // 1: no log-probability
    const exclude = ex.length ? Int32Array.from(ex) : null;
    s.sample(lp, got, temperature, topK, topP, 21, exclude, values);
    const [z, id, v] = await Promise.all([s.read(lp), s.read(got), s.read(values)]);
    for (let n = 0; n < rows; n++) expect(v[n], `row ${n}`).toBe(z[n * cols + id[n]]);
    // Rows differ and the draws are not all the argmax, so a wrong row or column shows.
    const row = (n: number) => Array.from(z.subarray(n * cols, (n + 1) * cols)), argmax = (n: number) => row(n).indexOf(Math.max(...row(n)));
    if (temperature > 0) expect(Array.from(id).some((i, n) => i !== argmax(n))).toBe(true);
    expect(Array.from(id).some((i) => ex.includes(i))).toBe(false);
    // The same ids as without values; null leaves it alone.
    const plain = make(s, 'i32', [rows]);
    s.sample(lp, plain, temperature, topK, topP, 21, exclude, null);
    expect(await s.read(plain)).toEqual(id);
    for (const t of [lp, got, values, plain]) t.buffer.free();
  });

  test('values: bad arguments are typed errors', () => {
    const rows = 4, one = tensor(z.buffer, 0, [rows, V]), id = tensor(ids.buffer, 0, [rows]);
    const values = (dtype: DType, shape: number[]) => tensor(s.alloc(dtype, 8), 0, shape);
    const call = (v: unknown) => () => s.sample(one, id, 1, 0, 1, 1, null, v as Tensor);
    bad(call(values('f64', [rows])), /values is f64 but logits is f32/);
    bad(call(values('i32', [rows])), /values must be a float tensor/);
    bad(call(values('f32', [rows + 1])), /values must have shape \[4\]/);
    bad(call(values('f32', [rows, 1])), /values must have shape \[4\]/);
    bad(call(tensor(z.buffer, 2 * V, [rows])), /logits and values overlap/);
    bad(call(5), /values must be a tensor/);
    const freed = values('f32', [rows]);
    freed.buffer.free();
    bad(call(freed), /values refers to a buffer that was released/, 'ERR_DISPOSED');
  });
});
