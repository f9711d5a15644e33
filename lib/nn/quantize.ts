/**
 * int8 weights (quantized inference, native/cpu/quant.h): every weight matrix — the embedding,
 * each weight_ih / weight_hh, the decoder's — as int8 with one float32 scale per row (per output
 * of a linear layer, per word of the embedding), symmetric:
 *
 *   scale[r] = max_c |W[r, c]| / 127,   q[r, c] = round(W[r, c] / scale[r]) in [-127, 127]
 *
 * so W[r, c] ≈ q[r, c] scale[r] within scale[r] / 2. Biases stay float32. Per row rather than per
 * tensor (PyTorch's quantize_dynamic default): one large row no longer coarsens every other.
 * -128 is never produced and is refused on load: the kernel's sign trick needs |q| <= 127.
 */
import { invalidArgument } from '../errors';
import type { ParamEntry } from './layout';

/** The quantized forms a model can take; 'int8' is the only one. */
export const QUANTIZATIONS = ['int8'] as const;
export type Quantization = (typeof QUANTIZATIONS)[number];

/** A weight matrix [rows, cols] in int8 with its rows' scales. */
export interface QuantizedTensor {
  q: Int8Array;
  scale: Float32Array;
}

/** A model's weights on the host by name: float32 tensors, or int8 ones for a quantized model's matrices. */
export type HostWeights = Map<string, Float32Array | QuantizedTensor>;

export const isQuantized = (t: Float32Array | QuantizedTensor): t is QuantizedTensor => !(t instanceof Float32Array);

/** Whether a parameter is quantized in an int8 model: every matrix (the biases are not). */
export const quantizable = (shape: readonly number[]) => shape.length === 2;

export function quantizeRows(w: Float32Array, rows: number, cols: number): QuantizedTensor {
  const q = new Int8Array(rows * cols), scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = r * cols; c < (r + 1) * cols; c++) max = Math.max(max, Math.abs(w[c]));
    const s = Math.fround(max / 127);
    scale[r] = s;
    if (s === 0) continue; // an all-zero row (or one below float32's smallest scale) stays zero
    for (let c = r * cols; c < (r + 1) * cols; c++) q[c] = Math.max(-127, Math.min(127, Math.round(w[c] / s)));
  }
  return { q, scale };
}

export function dequantizeRows(t: QuantizedTensor, rows: number, cols: number): Float32Array {
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = r * cols; c < (r + 1) * cols; c++) w[c] = t.q[c] * t.scale[r];
  return w;
}

/** A float model's weights with every matrix quantized (biases kept); a tensor at another's offset (tied) is that one's. */
export function quantizeWeights(layout: readonly ParamEntry[], weights: HostWeights): HostWeights {
  const out: HostWeights = new Map();
  const at = new Map<number, Float32Array | QuantizedTensor>();
  for (const e of layout) {
    const w = weights.get(e.name);
    if (!w) throw invalidArgument(`quantizeWeights: no tensor '${e.name}'`);
    const same = at.get(e.offset);
    const q = same ?? (!isQuantized(w) && quantizable(e.shape) ? quantizeRows(w, e.shape[0], e.shape[1]) : w);
    at.set(e.offset, q);
    out.set(e.name, q);
  }
  return out;
}

/** The float32 tensor of a weight, dequantized when int8. */
export function floatOf(t: Float32Array | QuantizedTensor, shape: readonly number[]): Float32Array {
  return isQuantized(t) ? dequantizeRows(t, shape[0], shape[1]) : t;
}
