/**
 * Named scratch tensors on one stream, each grown on demand and reused: the memory of work whose
 * size varies from call to call (a decoder's passes, a row group's re-layouts). Reuse is safe
 * because the stream runs ops in order: a later use of a slot starts after the earlier one ended.
 */
import { tensor, type DeviceBuffer, type Stream, type Tensor } from '../backend/types';

export class Scratch {
  private readonly slots = new Map<string, DeviceBuffer>();

  constructor(
    private readonly s: Stream,
    private readonly dtype: 'f32' | 'f64',
  ) {}

  /** A float tensor of n elements (shape [n], or `shape` when given; its product must be n). */
  f(name: string, n: number, shape?: readonly number[]): Tensor {
    return this.slot(name, this.dtype, n, shape);
  }
  i32(name: string, n: number, shape?: readonly number[]): Tensor {
    return this.slot(name, 'i32', n, shape);
  }

  /** Elements held now (for memory estimates). */
  get size(): number {
    let n = 0;
    for (const b of this.slots.values()) n += b.length;
    return n;
  }

  private slot(name: string, dtype: 'f32' | 'f64' | 'i32', n: number, shape?: readonly number[]): Tensor {
    let b = this.slots.get(name);
    if (!b || b.length < n) {
      b?.free();
      // At least double: slots that grow step by step settle after a few growths.
      b = this.s.alloc(dtype, Math.max(n, 2 * (b?.length ?? 0)));
      // Zeros: a decoding row that drew nothing (a distribution read) feeds id 0, never garbage.
      this.s.fill(tensor(b, 0, [b.length]), 0);
      this.slots.set(name, b);
    }
    return tensor(b, 0, shape ?? [n]);
  }

  free(): void {
    for (const b of this.slots.values()) b.free();
    this.slots.clear();
  }
}
