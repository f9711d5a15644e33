/**
 * The float64 reference of int8 inference (quantized.test.ts), written without native code: float
 * math on the dequantized int8 weights (scale[row] q) and on the dequantized activations
 * (sa qa), where qa, sa is the per-row quantization every int8 product applies to its float input
 * (W8A8-dynamic, native/cpu/quant.h), replicated here step by step in float32:
 *
 *   sa = max|a| / 127,   qa = round-half-even(a * (127 / max|a|)),   y[n] = sum_k (sa qa[k]) (sw[n] qw[n, k])
 *
 * and the cells in float64 with PyTorch's equations (lstm i, f, g, o; gru r, z, n with the reset
 * gate applied after the hidden product, bias_hh inside it; tanh; relu).
 */
import type { Cell } from '../../lib/backend/types';
import type { QuantizedTensor } from '../../lib/nn/quantize';

/**
 * v rounded to float32's 24 bits of precision whatever its exponent: float32 arithmetic without
 * overflow, which the quantization of a row of tiny values needs (127 / max is then beyond
 * float32's range). Equal to Math.fround in float32's normal range.
 */
export function round24(v: number): number {
  if (v === 0 || !Number.isFinite(v)) return v;
  const p = 2 ** Math.floor(Math.log2(Math.abs(v)));
  return Math.fround(v / p) * p;
}

export function roundHalfEven(v: number): number {
  const r = Math.round(v); // halves go up
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The per-row quantization of one row of float32 values, each step rounded as float32 math rounds it. */
export function quantizeActivation(a: ArrayLike<number>): { q: Int8Array; s: number } {
  let max = 0;
  for (let k = 0; k < a.length; k++) max = Math.max(max, Math.abs(a[k]));
  const q = new Int8Array(a.length);
  if (max === 0) return { q, s: 0 };
  const inv = round24(127 / max);
  for (let k = 0; k < a.length; k++) q[k] = Math.max(-127, Math.min(127, roundHalfEven(round24(a[k] * inv))));
  return { q, s: Math.fround(max / 127) };
}

/** An int8 matrix [rows, cols] dequantized in float64 (each element exact). */
export function dequantize(t: QuantizedTensor, rows: number, cols: number): Float64Array {
  const w = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = r * cols; c < (r + 1) * cols; c++) w[c] = t.q[c] * t.scale[r];
  return w;
}

/** y[n] = sum_k (sa qa[k]) Wd[n, k] for one input row a [K] (float32 values) and dequantized Wd [N, K]. */
export function q8Product(a: ArrayLike<number>, Wd: Float64Array, N: number, K: number): Float64Array {
  const { q, s } = quantizeActivation(a);
  const da = Float64Array.from(q, (v) => v * s);
  const y = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let acc = 0;
    for (let k = 0; k < K; k++) acc += da[k] * Wd[n * K + k];
    y[n] = acc;
  }
  return y;
}

/** One layer of a quantized stack: weight_ih [GH, inputs] and weight_hh [GH, H] dequantized, the float biases. */
export interface RefLayer {
  inputs: number;
  wih: Float64Array;
  whh: Float64Array;
  bih: ArrayLike<number>;
  bhh: ArrayLike<number>;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/**
 * One step of one sequence: the layer's input x and state h (c for the LSTM), float32 values as
 * the native products see them; the products W8A8, the rest float64.
 */
export function cellStep(cell: Cell, H: number, layer: RefLayer, x: ArrayLike<number>, h: ArrayLike<number>, c: ArrayLike<number> | null) {
  const G = cell === 'lstm' ? 4 : cell === 'gru' ? 3 : 1;
  const gi = q8Product(x, layer.wih, G * H, layer.inputs).map((v, k) => v + layer.bih[k]);
  const gh = q8Product(h, layer.whh, G * H, H).map((v, k) => v + layer.bhh[k]);
  const hNew = new Float64Array(H);
  let cNew: Float64Array | null = null;
  if (cell === 'lstm') {
    cNew = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const a = (g: number) => gi[g * H + j] + gh[g * H + j];
      const i = sigmoid(a(0)), f = sigmoid(a(1)), g = Math.tanh(a(2)), o = sigmoid(a(3));
      cNew[j] = f * c![j] + i * g;
      hNew[j] = o * Math.tanh(cNew[j]);
    }
  } else if (cell === 'gru') {
    for (let j = 0; j < H; j++) {
      const r = sigmoid(gi[j] + gh[j]), z = sigmoid(gi[H + j] + gh[H + j]);
      const n = Math.tanh(gi[2 * H + j] + r * gh[2 * H + j]);
      hNew[j] = (1 - z) * n + z * h[j];
    }
  } else {
    for (let j = 0; j < H; j++) hNew[j] = cell === 'rnn_relu' ? Math.max(gi[j] + gh[j], 0) : Math.tanh(gi[j] + gh[j]);
  }
  return { h: hNew, c: cNew };
}

const toF32 = (v: ArrayLike<number>) => Float32Array.from(v);
/** Row i of n elements of a flat array, in float64. */
const row = (a: ArrayLike<number>, i: number, n: number) => Float64Array.from({ length: n }, (_, k) => a[i * n + k]);

/**
 * The stack run on its own (its states float64, rounded to float32 where a product quantizes them,
 * as the native float32 states are): x [T, B, E] time-major, hx / cx [L, B, H], lengths [B] (state
 * carried and y = 0 past a sequence's length).
 */
export function stackForward(
  cell: Cell, H: number, layers: RefLayer[], x: ArrayLike<number>, T: number, B: number, lengths: ArrayLike<number>,
  hx: ArrayLike<number>, cx: ArrayLike<number> | null,
) {
  const L = layers.length, E = layers[0].inputs;
  const h: Float64Array[][] = Array.from({ length: L }, (_, l) => Array.from({ length: B }, (_, b) => row(hx, l * B + b, H)));
  const c: (Float64Array | null)[][] = Array.from({ length: L }, (_, l) => Array.from({ length: B }, (_, b) => (cx ? row(cx, l * B + b, H) : null)));
  const y = new Float64Array(T * B * H);
  for (let t = 0; t < T; t++)
    for (let b = 0; b < B; b++) {
      if (t >= lengths[b]) continue;
      let input: ArrayLike<number> = row(x, t * B + b, E);
      for (let l = 0; l < L; l++) {
        const r = cellStep(cell, H, layers[l], toF32(input), toF32(h[l][b]), c[l][b]);
        h[l][b] = r.h;
        c[l][b] = r.c;
        input = r.h;
      }
      y.set(h[L - 1][b], (t * B + b) * H);
    }
  const flat = (s: (Float64Array | null)[][]) => {
    const out = new Float64Array(L * B * H);
    s.forEach((layer, l) => layer.forEach((v, b) => v && out.set(v, (l * B + b) * H)));
    return out;
  };
  return { y, hy: flat(h), cy: cell === 'lstm' ? flat(c) : null };
}

/** log-softmax of a row in float64. */
export function logSoftmax(z: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) max = Math.max(max, z[i]);
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += Math.exp(z[i] - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(z, (v) => v - lse);
}
