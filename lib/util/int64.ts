/**
 * A 64-bit value as two int32s, low half first: how JavaScript hands an op a value it reads on
 * the device when it runs (a seed, a step, a float64's bits); native/common/rng.h joinHalves
 * reads them. Integers up to 2^53 (every number JavaScript holds exactly).
 */
export function putInt64(out: Int32Array, at: number, v: number): void {
  out[at] = v % 2 ** 32 | 0;
  out[at + 1] = Math.floor(v / 2 ** 32);
}

/** A float64's bits, as putInt64 lays them (little-endian, as every platform we build for). */
export function putFloat64Bits(out: Int32Array, at: number, v: number): void {
  const halves = new Int32Array(new Float64Array([v]).buffer);
  out[at] = halves[0];
  out[at + 1] = halves[1];
}
