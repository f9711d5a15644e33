/**
 * The recurrent state of a network's B sequences, kept across steps (and across arena growth):
 * hx / cx go in, hy / cy come out, dhx / dcx are their gradients. One buffer, reused while it is
 * big enough (training and evaluation alternate batch sizes); zeros whenever B changes.
 */
import { tensor, type DeviceBuffer, type Stream, type Tensor } from '../backend/types';

export interface States {
  B: number;
  buf: DeviceBuffer;
  hx: Tensor;
  cx: Tensor;
  hy: Tensor;
  cy: Tensor;
  dhx: Tensor;
  dcx: Tensor;
}

export class RecurrentStates {
  /** The states of the last batch size asked for. */
  current?: States;

  constructor(
    private readonly stream: Stream,
    private readonly shape: { layers: number; hiddenSize: number; dtype: 'f32' | 'f64' },
  ) {}

  /** The states of B sequences (zeros when first made or when B changes). */
  for(B: number): States {
    if (this.current?.B === B) return this.current;
    const { layers: L, hiddenSize: H, dtype } = this.shape;
    const n = L * B * H;
    let buf = this.current?.buf;
    if (!buf || buf.length < 6 * n) {
      buf?.free();
      buf = this.stream.alloc(dtype, 6 * n);
    }
    const t = (k: number) => tensor(buf, k * n, [L, B, H]);
    this.current = { B, buf, hx: t(0), cx: t(1), hy: t(2), cy: t(3), dhx: t(4), dcx: t(5) };
    this.stream.fill(tensor(buf, 0, [6 * n]), 0);
    return this.current;
  }

  free(): void {
    this.current?.buf.free();
  }
}
