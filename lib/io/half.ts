/**
 * float32 <-> IEEE half (F16) and bfloat16 (BF16), as 16-bit patterns, for checkpoints saved in
 * half precision. Rounding is to nearest, ties to even (as PyTorch's .half() / .bfloat16()).
 *   F16:  1 sign, 5 exponent (bias 15), 10 mantissa bits; largest finite 65504; subnormals down to 2^-24.
 *   BF16: the top 16 bits of a float32 (8 exponent bits: float32's range, 8 bits of precision).
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The F16 pattern nearest to x (ties to even); |x| beyond 65504 rounds to infinity. */
export function f16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // infinity, NaN
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // A subnormal half (or zero): the implicit 1 joins the mantissa, shifted right by 1 - e more.
    if (e < -10) return sign; // below half the smallest subnormal: zero
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m; // a carry into the exponent field is the right result (the smallest normal)
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  let bits = sign | (e << 10) | m;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) bits++; // a carry rolls into the exponent, up to infinity
  return bits;
}

/** The value of an F16 pattern. */
export function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The BF16 pattern nearest to x (ties to even). */
export function bf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if (((b >>> 23) & 0xff) === 0xff) return (b >>> 16) | ((b & 0x7fffff) ? 0x40 : 0); // keep NaN a NaN
  const rest = b & 0xffff;
  let hi = b >>> 16;
  if (rest > 0x8000 || (rest === 0x8000 && (hi & 1))) hi++;
  return hi;
}

/** The value of a BF16 pattern. */
export function bf16Value(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

/** Whether a 16-bit pattern of this dtype is finite (its exponent field is not all ones). */
export const halfFinite = (dtype: 'F16' | 'BF16', h: number): boolean => (dtype === 'F16' ? (h & 0x7c00) !== 0x7c00 : (h & 0x7f80) !== 0x7f80);

/** A float32 array as F16 or BF16 patterns. */
export function toHalf(dtype: 'F16' | 'BF16', x: Float32Array): Uint16Array {
  const bits = dtype === 'F16' ? f16Bits : bf16Bits;
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = bits(x[i]);
  return out;
}

/** F16 or BF16 patterns as float32 (exact: every half value is a float32). */
export function fromHalf(dtype: 'F16' | 'BF16', h: Uint16Array): Float32Array {
  const value = dtype === 'F16' ? f16Value : bf16Value;
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = value(h[i]);
  return out;
}
