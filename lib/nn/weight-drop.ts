/**
 * Weight drop (Merity et al. 2017; DropConnect, Wan et al. 2013) on a recurrent stack: in a
 * training step the RNN runs on a copy of its weight space whose every weight_hh is masked
 * (inverted dropout, a new mask per step), while the raw weights are the ones updated:
 *   W_hh' = W_hh * M,   dL/dW_hh = dL/dW_hh' * M.
 * Masking the weights, not the activations, keeps one recurrent GEMM per step; cuDNN reads the
 * masked copy like any weight space.
 */
import { numel, tensor, type DeviceBuffer, type RnnDescriptor, type Stream, type Tensor } from '../backend/types';
import { Random } from '../util/random';

export class WeightDrop {
  private readonly weights: DeviceBuffer;
  private readonly masks: DeviceBuffer;
  /** (offset in the weight space, size, offset of the mask) of each layer's weight_hh. */
  private readonly regions: { offset: number; n: number; maskAt: number }[] = [];

  constructor(
    private readonly stream: Stream,
    private readonly rnn: RnnDescriptor,
    layers: number,
    private readonly rate: number,
    dtype: 'f32' | 'f64',
  ) {
    let at = 0;
    for (let l = 0; l < layers; l++) {
      const p = rnn.weightParam(l, 1), n = numel(p.shape);
      this.regions.push({ offset: p.offset, n, maskAt: at });
      at += n;
    }
    this.weights = stream.alloc(dtype, rnn.weightSize);
    try {
      this.masks = stream.alloc(dtype, at);
    } catch (e) {
      this.weights.free();
      throw e;
    }
  }

  /** Elements of its memory for a stack: a copy of the weight space and a mask per weight_hh (checked before it is made). */
  static elements(rnn: RnnDescriptor, layers: number): number {
    let n = rnn.weightSize;
    for (let l = 0; l < layers; l++) n += numel(rnn.weightParam(l, 1).shape);
    return n;
  }

  /** The masked weight space of one step: raw (the whole weight space) with each weight_hh masked by a mask from seed. */
  apply(raw: Tensor, seed: number): Tensor {
    const s = this.stream, out = this.masked, rng = new Random(seed);
    s.copy(raw, out);
    for (const { offset, n, maskAt } of this.regions) {
      s.dropoutForward(tensor(raw.buffer, raw.offset + offset, [n]), tensor(this.masks, maskAt, [n]), tensor(this.weights, offset, [n]), this.rate, rng.seed());
    }
    return out;
  }

  /** The weights the last apply made (backward runs on them too). */
  get masked(): Tensor {
    return tensor(this.weights, 0, [this.rnn.weightSize]);
  }

  /** dL/dW_hh = dL/dW_hh' * M, in place in the recurrent gradients (grads: the whole weight space's). */
  backward(grads: Tensor): void {
    for (const { offset, n, maskAt } of this.regions) {
      const g = tensor(grads.buffer, grads.offset + offset, [n]);
      this.stream.multiply(g, tensor(this.masks, maskAt, [n]), g);
    }
  }

  free(): void {
    this.weights.free();
    this.masks.free();
  }
}
