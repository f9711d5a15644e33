/**
 * The recurrent state of a group of concurrent requests, one row each, on the device: h (and c
 * for an LSTM) laid out [layers, B, H] so that one rnnForward steps every row. Requests join and
 * leave between steps; the rows are then re-laid out on the device (a gather of the surviving
 * rows, then a copy of each newcomer's state), so a step never waits for the host.
 *
 * Two state sets ping-pong: a step reads the current set (hx) and writes the other (hy), and a
 * re-layout gathers the current set into the other; either way the sets then swap.
 */
import { tensor, type DeviceBuffer, type Stream, type Tensor } from '../backend/types';
import { Scratch } from '../nn/scratch';

export interface StateShape {
  layers: number;
  hiddenSize: number;
  /** Has a cell state (LSTM). */
  cell: boolean;
  dtype: 'f32' | 'f64';
}

/** Where a row's state comes from or goes to: layer l's h (kind 0) or c (kind 1), [H]. */
export type StateRef = (kind: 0 | 1, layer: number) => Tensor;

/** A state of one sequence in its own buffer (a session's): h [L, H] then c [L, H]. */
export function stateRef(buf: DeviceBuffer, shape: StateShape): StateRef {
  const { layers: L, hiddenSize: H } = shape;
  return (kind, l) => tensor(buf, (kind * L + l) * H, [H]);
}

/** Elements of one sequence's state (stateRef's buffer). */
export const stateSize = (shape: StateShape) => 2 * shape.layers * shape.hiddenSize;

/** Copies a sequence's state (h, and c for an LSTM, layer by layer); a null source writes zeros. */
export function copyState(s: Stream, shape: StateShape, from: StateRef | null, to: StateRef): void {
  for (const k of shape.cell ? ([0, 1] as const) : ([0] as const)) {
    for (let l = 0; l < shape.layers; l++) {
      if (from) s.copy(from(k, l), to(k, l));
      else s.fill(to(k, l), 0);
    }
  }
}

/**
 * The rows a group of B requests keeps on the device when its steps are captured as graphs: the
 * next power of two, at most `cap`, so that a captured step is one graph per bucket whatever the
 * requests joining and leaving make B. The padding rows are idle: stepped, never read. On the CPU
 * they change no bit of the others (batch-invariant products); on CUDA they round as any batch
 * size does.
 */
export function bucketOf(B: number, cap: number): number {
  return B > 0 ? Math.min(cap, 2 ** Math.ceil(Math.log2(B))) : 0;
}

export class RowGroup {
  /** Rows in use now. */
  B = 0;
  private cap = 0;
  private buf?: DeviceBuffer;
  /** Which of the two sets is current. */
  private side = 0;
  private readonly scratch: Scratch;

  constructor(
    private readonly s: Stream,
    private readonly shape: StateShape,
  ) {
    this.scratch = new Scratch(s, shape.dtype);
  }

  /** Elements of one set: h and c, [L, cap, H] each. */
  private get setSize() {
    return 2 * this.shape.layers * this.cap * this.shape.hiddenSize;
  }

  /** The current state of the B rows ([L, B, H]); h after a step is the next step's input. */
  current(kind: 0 | 1): Tensor {
    return this.view(this.side, kind, this.B);
  }
  /** The other set: a step's output (then swap()). */
  next(kind: 0 | 1): Tensor {
    return this.view(1 - this.side, kind, this.B);
  }
  swap(): void {
    this.side = 1 - this.side;
  }
  /** Which set is current (a captured step's key: its buffers depend on it). */
  get parity(): number {
    return this.side;
  }
  /** The top layer's h of the current rows ([B, H]): the input of the decoder. */
  top(): Tensor {
    const { layers: L, hiddenSize: H } = this.shape;
    const h = this.current(0);
    return tensor(h.buffer, h.offset + (L - 1) * this.B * H, [this.B, H]);
  }
  /** Row b's state in the current set (a source for another group, or to save to a session). */
  row(b: number): StateRef {
    const H = this.shape.hiddenSize, B = this.B, side = this.side;
    return (kind, l) => {
      const t = this.view(side, kind, B);
      return tensor(t.buffer, t.offset + (l * B + b) * H, [H]);
    };
  }

  private view(side: number, kind: 0 | 1, B: number): Tensor {
    const { layers: L, hiddenSize: H } = this.shape;
    return tensor(this.buf!, side * this.setSize + kind * L * this.cap * H, [L, B, H]);
  }

  /**
   * New rows: row b' continues old row keep[b'] (an index into the current rows) or, past the
   * survivors, starts from a source state (null: zeros). `rows` (at least those): the rows kept on
   * the device, the ones past them idle (a batch-size bucket's padding: stepped, never read).
   * Queued on the stream; no reads.
   */
  relayout(keep: number[], sources: (StateRef | null)[], rows = keep.length + sources.length): void {
    const { layers: L, hiddenSize: H, cell } = this.shape;
    const B0 = this.B, B1 = rows;
    if (B1 < keep.length + sources.length) throw new Error(`relayout: ${B1} rows cannot hold ${keep.length + sources.length}`);
    const kinds: (0 | 1)[] = cell ? [0, 1] : [0];
    const unchanged = sources.length === 0 && B1 === B0 && keep.every((k, i) => k === i);
    if (unchanged) return;
    let fromBuf = this.buf, fromSide = this.side;
    const fromCap = this.cap;
    if (B1 > this.cap) {
      // Grow: the survivors are gathered from the old buffer, which is freed after that (in stream order).
      this.cap = Math.max(B1, 2 * this.cap, 4);
      this.buf = this.s.alloc(this.shape.dtype, 2 * this.setSize);
    }
    const to = this.buf!;
    const toSide = fromBuf === to ? 1 - fromSide : 0;
    if (keep.length > 0) {
      const idx = this.i32('gather', L * keep.length);
      const rows = new Int32Array(L * keep.length);
      for (let l = 0; l < L; l++) for (let b = 0; b < keep.length; b++) rows[l * keep.length + b] = l * B0 + keep[b];
      this.s.write(idx, rows);
      for (const k of kinds) {
        const srcOff = fromSide * 2 * L * fromCap * H + k * L * fromCap * H;
        // An embedding lookup whose table is the old state's rows: out[l * B1 + b] = table[l * B0 + keep[b]].
        const dst = tensor(to, toSide * this.setSize + k * L * this.cap * H, [L * keep.length, H]);
        if (keep.length === B1) {
          this.s.embeddingForward(tensor(fromBuf!, srcOff, [L * B0, H]), idx, dst);
        } else {
          // Survivors first in a [L, B1, H] layout: gather into scratch, then one copy per layer.
          const tmp = this.f('gathered', L * keep.length * H);
          this.s.embeddingForward(tensor(fromBuf!, srcOff, [L * B0, H]), idx, tensor(tmp.buffer, tmp.offset, [L * keep.length, H]));
          for (let l = 0; l < L; l++) {
            this.s.copy(
              tensor(tmp.buffer, tmp.offset + l * keep.length * H, [keep.length, H]),
              tensor(to, toSide * this.setSize + k * L * this.cap * H + l * B1 * H, [keep.length, H]),
            );
          }
        }
      }
    }
    if (fromBuf && fromBuf !== to) fromBuf.free();
    fromBuf = undefined;
    this.side = toSide;
    this.B = B1;
    sources.forEach((src, j) => copyState(this.s, this.shape, src, this.row(keep.length + j)));
  }

  /** A scratch tensor of n elements (grown on demand, reused across steps). */
  f(name: string, n: number): Tensor {
    return this.scratch.f(name, n);
  }
  i32(name: string, n: number): Tensor {
    return this.scratch.i32(name, n);
  }

  dispose(): void {
    this.buf?.free();
    this.scratch.free();
    this.buf = undefined;
    this.B = this.cap = 0;
  }
}
