// Batch invariance (RnnForwardArgs.batchInvariant, linearForward's option): one row's results
// are the same bits whatever the batch around it (its size, the row's place in it, the other
// rows' lengths), and the same product as OpenBLAS computes, up to rounding. Sizes that are not
// multiples of the kernel's 8 lanes, 4- and 8-column tiles and 3-row tiles, and K < 8; the
// largest linear products (B = 64, K = 203, N = 1001) are shared with the helper thread (blas.h)
// where OpenBLAS may use 2 threads or more.
import { afterAll, describe, expect, test } from 'vitest';
import { tensor, type Cell, type FloatArray, type Tensor } from '../../lib/backend/types';
import { Random } from '../../lib/util/random';
import { backend, make, randomArray, relError } from '../helpers';

const s = backend.createStream();
afterAll(() => s.dispose());
const rng = new Random(2025);
const BATCHES = [1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 64];
const places = (B: number) => [...new Set([0, B >> 1, B - 1, Math.min(2, B - 1)])];
const DTYPES = ['f32', 'f64'] as const;
// Against the OpenBLAS path: the same sums, rounded in another order.
const tolerance = { f32: 1e-5, f64: 1e-12 };

/** Entries of a and b whose bits differ (-0 and 0 differ). */
function bitDiffs(a: FloatArray, b: FloatArray): number {
  expect(a.length).toBe(b.length);
  const w = a.BYTES_PER_ELEMENT;
  const ua = new Uint8Array(a.buffer, a.byteOffset, a.byteLength), ub = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = i * w; j < i * w + w; j++)
      if (ua[j] !== ub[j]) {
        n++;
        break;
      }
  }
  return n;
}

/** B rows of `width` random values with `row` at row p. */
function batchWith(row: number[], B: number, p: number): number[] {
  const data = randomArray(rng, B * row.length);
  data.splice(p * row.length, row.length, ...row);
  return data;
}

const read = async (t: Tensor) => (await s.read(t)) as FloatArray;
const free = (...ts: (Tensor | null)[]) => ts.forEach((t) => t?.buffer.free());

describe('linearForward', () => {
  for (const dtype of DTYPES)
    for (const [K, N] of [[203, 1001], [5, 13], [16, 9]])
      for (const bias of [true, false])
        test(`${dtype}, K=${K}, N=${N}, ${bias ? 'with' : 'without'} bias: a row of y is the same bits in every batch`, async () => {
          const W = make(s, dtype, [N, K], randomArray(rng, N * K));
          const b = bias ? make(s, dtype, [N], randomArray(rng, N)) : null;
          const row = randomArray(rng, K);
          let alone: FloatArray | undefined;
          for (const B of BATCHES)
            for (const p of places(B)) {
              const x = make(s, dtype, [B, K], batchWith(row, B, p)), y = make(s, dtype, [B, N]);
              s.linearForward(x, W, b, y, { batchInvariant: true });
              const got = await read(tensor(y.buffer, p * N, [N]));
              alone ??= got;
              expect(bitDiffs(got, alone), `B=${B}, row ${p}`).toBe(0);
              if (p === 0 && (B === 1 || B === 64)) {
                const yBlas = make(s, dtype, [B, N]);
                s.linearForward(x, W, b, yBlas);
                expect(relError(await read(y), await read(yBlas)), `B=${B} against OpenBLAS`).toBeLessThan(tolerance[dtype]);
                free(yBlas);
              }
              free(x, y);
            }
          free(W, b);
        });
});

describe('rnnForward, inference', () => {
  const T = 5, I = 11, H = 13, L = 2;
  for (const dtype of DTYPES)
    for (const cell of ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'] as Cell[])
      for (const padded of [false, true])
        test(`${dtype}, ${cell}, ${L} layers${padded ? ', padded batches' : ''}: a sequence's y, hy, cy are the same bits in every batch`, async () => {
          const rnn = backend.createRnn({ cell, inputSize: I, hiddenSize: H, layers: L });
          const W = make(s, dtype, [rnn.weightSize], randomArray(rng, rnn.weightSize, 0.6));
          // The sequence: its inputs [T, I], initial states [L, H], and (padded) length 3 of T.
          const xs = randomArray(rng, T * I), h0 = randomArray(rng, L * H, 0.5), c0 = randomArray(rng, L * H, 0.5);
          const length = padded ? 3 : T;
          let alone: FloatArray | undefined;
          for (const B of BATCHES)
            for (const p of places(B)) {
              // Time-major [T, B, I] and [L, B, H]: the sequence's rows go to place p of each step / layer.
              const steps = (seq: number[], n: number, width: number) =>
                Array.from({ length: n }, (_, t) => batchWith(seq.slice(t * width, t * width + width), B, p)).flat();
              const x = make(s, dtype, [T, B, I], steps(xs, T, I));
              const hx = make(s, dtype, [L, B, H], steps(h0, L, H)), cx = make(s, dtype, [L, B, H], steps(c0, L, H));
              const y = make(s, dtype, [T, B, H]), hy = make(s, dtype, [L, B, H]), cy = make(s, dtype, [L, B, H]);
              const sp = rnn.spaces(T, B);
              const reserve = make(s, dtype, [sp.reserve]), workspace = make(s, dtype, [sp.workspace]);
              const lengths = padded ? Int32Array.from({ length: B }, (_, b) => (b === p ? length : 1 + Math.floor(rng.next() * T))) : null;
              const forward = (batchInvariant: boolean) =>
                s.rnnForward(rnn, { x, y, hx, cx, hy, cy, weights: W, reserve, workspace, lengths, training: false, batchInvariant });
              forward(true);
              const [yv, hv, cv] = [await read(y), await read(hy), await read(cy)];
              const mine = (v: FloatArray, n: number) => Array.from({ length: n }, (_, t) => Array.from(v.subarray((t * B + p) * H, (t * B + p + 1) * H))).flat();
              const got = (dtype === 'f32' ? Float32Array : Float64Array).from([...mine(yv, T), ...mine(hv, L), ...mine(cv, L)]);
              alone ??= got;
              expect(bitDiffs(got, alone), `B=${B}, sequence ${p}`).toBe(0);
              if (p === 0 && B === 64) {
                forward(false);
                const all = (a: FloatArray, b: FloatArray, c: FloatArray) => [...a, ...b, ...c];
                expect(relError(all(yv, hv, cv), all(await read(y), await read(hy), await read(cy))), 'against OpenBLAS').toBeLessThan(
                  tolerance[dtype],
                );
              }
              free(x, hx, cx, y, hy, cy, reserve, workspace);
            }
          free(W);
        });
});
