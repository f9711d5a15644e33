/**
 * Dynamic loss scaling (fit's lossScale; on by default in precision 'fp16'), PyTorch's
 * GradScaler rule, stated once in native/common/loss_scale.h. Why: fp16 holds nothing below
 * 2^-24 and a token's share of a mean loss is often smaller, so the gradients the half-precision
 * backward pass carries would flush to zero. The loss gradient is multiplied by S before the
 * backward pass and the weight gradients by 1/S after it; a step whose gradients overflowed (not
 * finite) is skipped by the optimizer's guard and halves S, and every `growthInterval` finite
 * steps double it. S stays a power of two, so with float32 gradients the scaling is exact: a
 * step that does not overflow is the same, bit for bit, as without it (test/reference/loss-scale).
 *
 * S lives on the device (state [4]: S, finite steps since S changed, backoffs, steps not finite
 * at S = 1) and each op reads
 * it when it runs: no host round trip per step, and a captured step replays it (nn/graphs.ts).
 */
import type { DeviceBuffer, LossScaleArgs, Stream, Tensor } from '../backend/types';
import { tensor } from '../backend/types';

/** fit's lossScale option, resolved: the first scale and how many finite steps double it. */
export interface LossScaleSettings {
  initial: number;
  growthInterval: number;
}

/** Where S stays: at least 1 (a step not finite at S = 1 is the model's, not the scale's), at most 2^24. */
export const MIN_LOSS_SCALE = 1;
export const MAX_LOSS_SCALE = 2 ** 24;

export interface LossScaleState {
  /** The scale S. */
  scale: number;
  /** Finite steps since S last changed. */
  good: number;
  /** Steps that overflowed (and halved S) so far. */
  backoffs: number;
  /** Steps not finite at S = 1 (MIN_LOSS_SCALE): not the scale's doing. */
  floor: number;
}

export class LossScaler {
  private readonly buffer: DeviceBuffer;
  readonly state: Tensor;
  private readonly args: LossScaleArgs;

  constructor(
    private readonly stream: Stream,
    dtype: 'f32' | 'f64',
    settings: LossScaleSettings,
  ) {
    this.buffer = stream.alloc(dtype, 4);
    this.state = tensor(this.buffer, 0, [4]);
    this.args = { growth: 2, backoff: 0.5, interval: settings.growthInterval, minScale: MIN_LOSS_SCALE, maxScale: MAX_LOSS_SCALE };
    this.restore({ scale: settings.initial, good: 0, backoffs: 0, floor: 0 });
  }

  /** x *= S: the loss gradient, before it flows back. */
  scale(x: Tensor): void {
    this.stream.scaleBy(x, this.state, false);
  }
  /** x *= 1 / S: the weight gradients, before clipping and the update (or a term added unscaled). */
  unscale(x: Tensor): void {
    this.stream.scaleBy(x, this.state, true);
  }
  /** After the update: guard is the optimizer's (the step's loss, count and gradient norm). */
  update(guard: Tensor): void {
    this.stream.updateLossScale(this.state, guard, this.args);
  }

  async read(): Promise<LossScaleState> {
    const r = await this.stream.read(this.state);
    return { scale: r[0], good: r[1], backoffs: r[2], floor: r[3] };
  }
  restore(s: LossScaleState): void {
    const v = [s.scale, s.good, s.backoffs, s.floor ?? 0];
    const data = this.buffer.dtype === 'f64' ? new Float64Array(v) : new Float32Array(v);
    this.stream.write(this.state, data);
  }
  free(): void {
    this.buffer.free();
  }
}
