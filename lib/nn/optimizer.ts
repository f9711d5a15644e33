/**
 * Optimizers over the flat parameter and gradient buffers (one fused op per step).
 * Defaults (OPTIMIZER_DEFAULTS, from lib/defaults.ts, used by fit too) are PyTorch's, except
 * SGD's learning rate (see there).
 */
import { DEFAULTS } from '../defaults';
import { invalidArgument } from '../errors';
import { tensor, type DeviceBuffer, type Stream, type Tensor } from '../backend/types';
import { putFloat64Bits, putInt64 } from '../util/int64';

/** An optimizer and its settings, with PyTorch's semantics; left out, a setting takes OPTIMIZER_DEFAULTS'. */
export type OptimizerOptions =
  | {
      type: 'adam' | 'adamw';
      /** Learning rate. Default 1e-3. */
      lr?: number;
      /** Decay rate of the first moment. Default 0.9. */
      beta1?: number;
      /** Decay rate of the second moment. Default 0.999. */
      beta2?: number;
      /** Added to the denominator. Default 1e-8. */
      eps?: number;
      /** L2 penalty added to the gradient (adam, default 0), or decoupled decay of the weights (adamw, default 0.01). */
      weightDecay?: number;
    }
  | {
      type: 'sgd';
      /** Learning rate. Default 1 (see OPTIMIZER_DEFAULTS). */
      lr?: number;
      /** Momentum factor; 0 is plain SGD. Default 0. */
      momentum?: number;
      /** Dampening of the momentum. Default 0. */
      dampening?: number;
      /** L2 penalty added to the gradient. Default 0. */
      weightDecay?: number;
      /** Nesterov momentum. Default false. */
      nesterov?: boolean;
    };

/** Each optimizer's defaults: the table's (lib/defaults.ts). */
export const OPTIMIZER_DEFAULTS = DEFAULTS.optimizer;

export class Optimizer {
  /** Steps taken so far (Adam's bias correction and SGD's first momentum step depend on it). */
  step = 0;
  lr: number;
  private readonly state: DeviceBuffer[] = [];
  /** lr and step on the device (i32 [4]: the halves of lr's float64 bits and of the step), written by prepare(). */
  private liveBuffer?: DeviceBuffer;

  constructor(
    private readonly stream: Stream,
    readonly options: OptimizerOptions,
    private readonly size: number,
    dtype: 'f32' | 'f64',
  ) {
    if (options.type === 'sgd') {
      this.lr = options.lr ?? OPTIMIZER_DEFAULTS.sgd.lr;
      if ((options.momentum ?? OPTIMIZER_DEFAULTS.sgd.momentum) > 0) this.state.push(stream.alloc(dtype, size));
    } else if (options.type === 'adam' || options.type === 'adamw') {
      this.lr = options.lr ?? OPTIMIZER_DEFAULTS[options.type].lr;
      this.state.push(stream.alloc(dtype, size), stream.alloc(dtype, size));
    } else {
      throw invalidArgument(`optimizer.type must be 'adam', 'adamw' or 'sgd' (got '${(options as { type: string }).type}')`);
    }
  }

  /** Optimizer state tensors (moments). */
  get stateTensors(): Tensor[] {
    return this.state.map((b) => tensor(b, 0, [this.size]));
  }

  /** The moments under their checkpoint names (optimizer.m / optimizer.v, or optimizer.momentum). */
  get namedState(): { name: string; tensor: Tensor }[] {
    const names = this.options.type === 'sgd' ? ['optimizer.momentum'] : ['optimizer.m', 'optimizer.v'];
    return this.stateTensors.map((tensor, i) => ({ name: names[i], tensor }));
  }

  /** One update; with a guard (e.g. the step's loss and norm) the device skips it when any is not finite. */
  apply(params: Tensor, grads: Tensor, guard: Tensor | null = null): void {
    this.step++;
    this.queue(params, grads, guard, null);
  }

  /**
   * The update in two halves, for a step captured as a graph (nn/graphs.ts): prepare() counts the
   * step and writes its lr and step to the device (a write: before the capture or replay), update()
   * queues the op, which reads them there when it runs, so a replay of it takes each step's.
   */
  prepare(): void {
    this.step++;
    this.liveBuffer ??= this.stream.alloc('i32', 4);
    const live = new Int32Array(4);
    putFloat64Bits(live, 0, this.lr);
    putInt64(live, 2, this.step);
    this.stream.write(tensor(this.liveBuffer, 0, [4]), live);
  }
  update(params: Tensor, grads: Tensor, guard: Tensor | null = null): void {
    if (!this.liveBuffer) throw invalidArgument('Optimizer.update: call prepare() first (each step)');
    this.queue(params, grads, guard, tensor(this.liveBuffer, 0, [4]));
  }

  private queue(params: Tensor, grads: Tensor, guard: Tensor | null, live: Tensor | null): void {
    const o = this.options;
    if (o.type === 'sgd') {
      const d = OPTIMIZER_DEFAULTS.sgd;
      this.stream.sgd(params, grads, this.state[0] ? this.stateTensors[0] : null, {
        lr: this.lr,
        momentum: o.momentum ?? d.momentum,
        dampening: o.dampening ?? d.dampening,
        weightDecay: o.weightDecay ?? d.weightDecay,
        nesterov: o.nesterov ?? d.nesterov,
        step: this.step,
      }, guard, live);
    } else {
      const [m, v] = this.stateTensors;
      const d = OPTIMIZER_DEFAULTS[o.type];
      this.stream.adam(params, grads, m, v, {
        lr: this.lr,
        beta1: o.beta1 ?? d.beta1,
        beta2: o.beta2 ?? d.beta2,
        eps: o.eps ?? d.eps,
        weightDecay: o.weightDecay ?? d.weightDecay,
        decoupled: o.type === 'adamw',
        step: this.step,
      }, guard, live);
    }
  }

  dispose(): void {
    for (const b of this.state) b.free();
    this.liveBuffer?.free();
  }
}
