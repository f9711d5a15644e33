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
 * S lives on the device (state [3]: S, finite steps since S changed, backoffs) and each op reads
 * it when it runs: no host round trip per step, and a captured step replays it (nn/graphs.ts).
 * Each step's record (its loss, count, gradient norm and the S it ran with) is the one read a
 * training step makes: it tells an overflow (finite loss, S > 1) from the model's own non-finite step.
 */
import { invalidArgument } from '../errors';
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

/** A scale S may start at: a power of two (the scaling is then exact) in [MIN_LOSS_SCALE, MAX_LOSS_SCALE]. */
export function isLossScale(v: unknown): v is number {
  return typeof v === 'number' && v >= MIN_LOSS_SCALE && v <= MAX_LOSS_SCALE && 2 ** Math.round(Math.log2(v)) === v;
}

/** `what`'s first scale, checked: the one rule of fit's option and the CLI's flag. */
export function checkInitialScale(v: unknown, what: string): number {
  if (!isLossScale(v)) throw invalidArgument(`${what} must be a power of two in [1, 2^24] (got ${typeof v === 'number' ? v : JSON.stringify(v)})`);
  return v;
}

export interface LossScaleState {
  /** The scale S. */
  scale: number;
  /** Finite steps since S last changed. */
  good: number;
  /** Steps that overflowed (and halved S) so far. */
  backoffs: number;
}

/** A saved state's problem, or null (a checkpoint's: resume checks it before it reaches the device). */
export function lossScaleStateProblem(s: unknown): string | null {
  if (typeof s !== 'object' || s === null) return 'must be an object { scale, good, backoffs }';
  const { scale, good, backoffs } = s as Record<string, unknown>;
  if (!isLossScale(scale)) return `scale must be a power of two in [1, 2^24] (got ${JSON.stringify(scale)})`;
  for (const [k, v] of [['good', good], ['backoffs', backoffs]] as const) {
    if (!Number.isSafeInteger(v) || (v as number) < 0) return `${k} must be a non-negative integer (got ${JSON.stringify(v)})`;
  }
  return null;
}

/** A training step's record: its stats (the optimizer's guard) and the scale it ran with. */
export interface StepRecord {
  loss: number;
  count: number;
  norm: number;
  scale: number;
}

export class LossScaler {
  private readonly buffer: DeviceBuffer;
  readonly state: Tensor;
  private readonly record: Tensor;
  private readonly args: LossScaleArgs;

  constructor(
    private readonly stream: Stream,
    dtype: 'f32' | 'f64',
    settings: LossScaleSettings,
  ) {
    this.buffer = stream.alloc(dtype, 3 + 4);
    this.state = tensor(this.buffer, 0, [3]);
    this.record = tensor(this.buffer, 3, [4]);
    this.args = { growth: 2, backoff: 0.5, interval: settings.growthInterval, minScale: MIN_LOSS_SCALE, maxScale: MAX_LOSS_SCALE };
    this.restore({ scale: settings.initial, good: 0, backoffs: 0 });
  }

  /** x *= S: the loss gradient, before it flows back. */
  scale(x: Tensor): void {
    this.stream.scaleBy(x, this.state, false);
  }
  /** x *= 1 / S: the weight gradients, before clipping and the update (or a term added unscaled). */
  unscale(x: Tensor): void {
    this.stream.scaleBy(x, this.state, true);
  }
  /** After the update: stats is the optimizer's guard [3] (the step's loss, count and gradient norm), kept in the step's record. */
  update(stats: Tensor): void {
    this.stream.updateLossScale(this.state, stats, this.args, this.record);
  }
  /** The last update's record (queued in order: the step before any step queued after this call). */
  async readRecord(): Promise<StepRecord> {
    const r = await this.stream.read(this.record);
    return { loss: r[0], count: r[1], norm: r[2], scale: r[3] };
  }

  async read(): Promise<LossScaleState> {
    const r = await this.stream.read(this.state);
    return { scale: r[0], good: r[1], backoffs: r[2] };
  }
  restore(s: LossScaleState): void {
    const v = [s.scale, s.good, s.backoffs];
    this.stream.write(this.state, this.buffer.dtype === 'f64' ? new Float64Array(v) : new Float32Array(v));
  }
  free(): void {
    this.buffer.free();
  }
}
