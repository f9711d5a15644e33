/**
 * Iterate averaging for fit (Polyak & Juditsky 1992; with SGD, AWD-LSTM's NT-ASGD, Merity et al.
 * 2017): once triggered, every step's weights are added to a running mean on the device,
 *   avg_k = avg_{k-1} + (w_k - avg_{k-1}) / k,
 * and the mean is the model that is validated, handed to onEpochEnd, saved and returned, while
 * training goes on from the raw weights. The non-monotone trigger is AWD-LSTM's: averaging starts
 * after the first epoch whose validation loss is worse than the best one before the last `window`
 * epochs (the loss stopped improving for a while, without a fixed schedule).
 */
import { tensor, type DeviceBuffer, type Stream, type Tensor } from './backend/types';

export type AverageSettings = { trigger: 'nonmonotone'; window: number } | { trigger: 'epoch'; start: number };

/** What a training state records of it: steps averaged so far (0: not yet). */
export interface AverageState {
  averaged: number;
}

export class Averager {
  private readonly avg: DeviceBuffer;
  private readonly raw: DeviceBuffer;
  /** The mean is in the parameters, the raw weights aside. */
  private swapped = false;
  /** The trigger fired: the next step starts the mean (derived again at each epoch's start, so not saved). */
  private pendingStart = false;

  constructor(
    private readonly stream: Stream,
    private readonly params: Tensor,
    readonly settings: AverageSettings,
    private readonly st: AverageState,
  ) {
    const n = params.shape[0];
    this.avg = stream.alloc('f32', n);
    try {
      this.raw = stream.alloc('f32', n);
    } catch (e) {
      this.avg.free();
      throw e;
    }
  }

  /** Whether averaging has started. */
  get active(): boolean {
    return this.st.averaged > 0;
  }

  /** Starts averaging at the first step of `epoch` when the trigger says so (validation losses of the epochs before it). */
  maybeStart(epoch: number, valLosses: (number | undefined)[]): void {
    if (this.active || this.pendingStart) return;
    const s = this.settings;
    if (s.trigger === 'epoch') this.pendingStart = epoch >= s.start;
    else {
      const prev = valLosses.slice(0, -1), cur = valLosses.at(-1);
      const before = prev.slice(0, Math.max(0, prev.length - s.window)).filter((v): v is number => v !== undefined);
      this.pendingStart = cur !== undefined && prev.length > s.window && before.length > 0 && cur > Math.min(...before);
    }
  }

  /** After a step's update: the mean takes in the new weights. */
  afterStep(): void {
    if (!this.active && !this.pendingStart) return;
    this.pendingStart = false;
    this.st.averaged++;
    this.stream.average(this.whole(this.avg), this.params, 1 / this.st.averaged);
  }

  /** Puts the mean in the parameters (the raw weights aside) for validation, callbacks and saves. */
  swapIn(): void {
    if (!this.active || this.swapped) return;
    this.stream.copy(this.params, this.whole(this.raw));
    this.stream.copy(this.whole(this.avg), this.params);
    this.swapped = true;
  }
  /** Back to the raw weights, to train on. */
  swapOut(): void {
    if (!this.swapped) return;
    this.stream.copy(this.whole(this.raw), this.params);
    this.swapped = false;
  }

  /** The raw weights while swapped in (a checkpoint's training state keeps them beside the mean in the model file). */
  get rawTensor(): Tensor {
    return this.whole(this.raw);
  }

  /** Resume: the model file's weights (now in the parameters) are the mean; `raw` the weights to train on. */
  restore(raw: Float32Array): void {
    this.stream.copy(this.params, this.whole(this.avg));
    this.stream.write(this.params, raw);
  }

  free(): void {
    this.avg.free();
    this.raw.free();
  }

  private whole(b: DeviceBuffer): Tensor {
    return tensor(b, 0, [this.params.shape[0]]);
  }
}
