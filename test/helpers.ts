import { expect } from 'vitest';
import { cpuBackend } from '../lib/backend/cpu';
import { RnnlmError } from '../lib/errors';
import { tensor, type DType, type Stream, type Tensor } from '../lib/backend/types';
import { Random } from '../lib/util/random';

export const backend = cpuBackend;

/** Allocates a tensor of its own buffer and fills it with `data` (or zeros). */
export function make(
  s: Stream,
  dtype: DType,
  shape: number[],
  data?: ArrayLike<number>,
): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const t = tensor(s.alloc(dtype, n), 0, shape);
  if (data) s.write(t, typed(dtype, data));
  return t;
}

/**
 * Sets the one element `at` (f32 or f64) to +-Infinity or NaN, which write and fill refuse: a
 * product that overflows (big * big), and for NaN that infinity times zero.
 */
export function setNonFinite(s: Stream, at: Tensor, x: number): void {
  const dtype = at.buffer.dtype;
  if (Number.isFinite(x) || (dtype !== 'f32' && dtype !== 'f64')) throw new Error(`setNonFinite: ${x} into a ${dtype} tensor`);
  const big = dtype === 'f32' ? 1e30 : 1e300;
  const bigT = make(s, dtype, [1], [big]), zero = make(s, dtype, [1], [0]);
  s.fill(at, x < 0 ? -big : big);
  s.multiply(at, bigT, at);
  if (Number.isNaN(x)) s.multiply(at, zero, at);
  bigT.buffer.free();
  zero.buffer.free();
}

export function typed(dtype: DType, data: ArrayLike<number>): Float32Array | Float64Array | Int32Array {
  return dtype === 'f64' ? Float64Array.from(data) : dtype === 'f32' ? Float32Array.from(data) : Int32Array.from(data);
}

export function randomArray(rng: Random, n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => rng.uniform(-scale, scale));
}

/** How many parts of an adaptive softmax (its head's words, each cluster) the targets != 0 reach. */
export function adaptivePartsReached(targets: ArrayLike<number>, cutoffs: number[]): number {
  return new Set(Array.from(targets).filter((t) => t !== 0).map((t) => cutoffs.filter((c) => t >= c).length)).size;
}

export { relError } from './rel-error';

/**
 * Central finite differences of a scalar function of a tensor's elements:
 * for each element, write x +/- eps into it, evaluate, restore.
 */
export async function numericGrad(
  s: Stream,
  t: Tensor,
  dtype: 'f32' | 'f64',
  base: ArrayLike<number>,
  f: () => Promise<number>,
  eps: number,
): Promise<number[]> {
  const g: number[] = [];
  for (let i = 0; i < base.length; i++) {
    const cell = tensor(t.buffer, t.offset + i, [1]);
    s.write(cell, typed(dtype, [base[i] + eps]));
    const fp = await f();
    s.write(cell, typed(dtype, [base[i] - eps]));
    const fm = await f();
    s.write(cell, typed(dtype, [base[i]]));
    g.push((fp - fm) / (2 * eps));
  }
  return g;
}

/** Runs fn, expects it to throw an RnnlmError, returns "CODE: message". */
export function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RnnlmError);
    return `${(e as RnnlmError).code}: ${(e as RnnlmError).message}`;
  }
  throw new Error('expected an RnnlmError, but nothing was thrown');
}

/** A real AbortSignal that reports aborted from its (n + 1)-th check on (fit checks once per batch). */
export function abortAtCheck(n: number): AbortSignal {
  const c = new AbortController();
  let checks = 0;
  Object.defineProperty(c.signal, 'aborted', { get: () => ++checks > n });
  return c.signal;
}
