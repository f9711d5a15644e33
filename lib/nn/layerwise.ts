/**
 * A recurrent stack trained one layer at a time, with locked dropout between the layers — for a
 * backend whose stacked RNN drops per element between its layers (cuDNN's dropout descriptor):
 *   x_0 = x,   y_l = RNN_l(x_l; hx[l], cx[l]),   x_{l+1} = y_l * M_l   (M_l: one mask per sequence
 *   and unit, the same at every time step),   y = y_{L-1};
 * backward: dx_l from RNN_l's backward-data, dy_{l-1} = dx_l * M_{l-1}, and each layer's weight
 * gradients. Each layer is a one-layer RNN of the backend with its own weight space: the stack's
 * PyTorch tensors of that layer are copied in before the forward (they are the same numbers
 * whatever the layout), and its weight gradients go back the same way (the stack's copied in, the
 * backend accumulates, copied out). Every op here runs on both backends; the CPU can be made to
 * take this path (NetworkConfig.layerwise) to check it against finite differences and to give the
 * GPU check its reference.
 */
import { numel, tensor, type Backend, type Cell, type Precision, type RnnDescriptor, type Stream, type Tensor } from '../backend/types';
import { Random } from '../util/random';
import { Scratch } from './scratch';

export interface LayerwiseConfig {
  cell: Cell;
  inputSize: number;
  hiddenSize: number;
  layers: number;
  dtype: 'f32' | 'f64';
  /** The dropout rate between layers (locked). */
  rate: number;
  /** The stack's precision, the layers' too. */
  precision: Precision;
}

/** What a training forward passes (as rnnForward's arguments, states [L, B, H]). */
export interface LayerwiseForward {
  x: Tensor;
  y: Tensor;
  hx: Tensor;
  cx: Tensor;
  hy: Tensor;
  cy: Tensor;
  /** The stack's weight space (weight drop's masked copy in a step with it). */
  weights: Tensor;
  lengths: Int32Array | null;
  seed: number;
}

type LayerViews = ReturnType<Layerwise['layerViews']>;

export class Layerwise {
  /** Layer 0's RNN (inputSize -> H) and the others' (H -> H). */
  private readonly first: RnnDescriptor;
  private readonly rest: RnnDescriptor;
  private readonly scratch: Scratch;
  /** The last forward's shape, lengths and states (backward reuses them). */
  private last?: { T: number; B: number; lengths: Int32Array | null; x: Tensor; hx: Tensor; cx: Tensor };
  /** Every layer's tensors for the last step shape (made again when T or B changes). */
  private shaped?: { T: number; B: number; layers: LayerViews[] };

  constructor(
    backend: Backend,
    private readonly stream: Stream,
    private readonly stack: RnnDescriptor,
    private readonly cfg: LayerwiseConfig,
  ) {
    const one = { cell: cfg.cell, hiddenSize: cfg.hiddenSize, layers: 1, dropout: 0, precision: cfg.precision };
    this.first = backend.createRnn({ ...one, inputSize: cfg.inputSize });
    this.rest = backend.createRnn({ ...one, inputSize: cfg.hiddenSize });
    this.scratch = new Scratch(stream, cfg.dtype);
  }

  private rnn(l: number): RnnDescriptor {
    return l === 0 ? this.first : this.rest;
  }

  /** Copies layer l's four tensors between the stack's weight space and the layer's own (toLayer) or back. */
  private transfer(l: number, stackSpace: Tensor, layerSpace: Tensor, toLayer: boolean): void {
    for (const id of [0, 1, 2, 3] as const) {
      const from = this.stack.weightParam(l, id), to = this.rnn(l).weightParam(0, id), n = numel(from.shape);
      const a = tensor(stackSpace.buffer, stackSpace.offset + from.offset, [n]);
      const b = tensor(layerSpace.buffer, layerSpace.offset + to.offset, [n]);
      if (toLayer) this.stream.copy(a, b);
      else this.stream.copy(b, a);
    }
  }

  /** Layer l's slice [1, B, H] of a state [L, B, H]. */
  private slice(state: Tensor, l: number, B: number): Tensor {
    const H = this.cfg.hiddenSize;
    return tensor(state.buffer, state.offset + l * B * H, [1, B, H]);
  }

  /** Each layer's named tensors for a T x B step (T x B x H, and the spaces), kept while the shape stays. */
  private views(T: number, B: number): LayerViews[] {
    if (this.shaped?.T === T && this.shaped.B === B) return this.shaped.layers;
    let ws = 0;
    for (const r of [this.first, this.rest]) ws = Math.max(ws, r.spaces(T, B).workspace);
    const layers = Array.from({ length: this.cfg.layers }, (_, l) => this.layerViews(l, T, B, ws));
    this.shaped = { T, B, layers };
    return layers;
  }

  private layerViews(l: number, T: number, B: number, ws: number) {
    const sc = this.scratch, H = this.cfg.hiddenSize, n = T * B * H, sp = this.rnn(l).spaces(T, B);
    return {
      weights: sc.f(`w${l}`, this.rnn(l).weightSize),
      grads: sc.f(`dw${l}`, this.rnn(l).weightSize),
      x: sc.f(`x${l}`, n, [T, B, H]),
      mask: sc.f(`m${l}`, n, [T, B, H]),
      y: sc.f(`y${l}`, n, [T, B, H]),
      dy: sc.f(`dy${l}`, n, [T, B, H]),
      dx: sc.f(`dx${l}`, n, [T, B, H]),
      reserve: sc.f(`r${l}`, sp.reserve),
      workspace: sc.f('ws', ws),
    };
  }

  forward(a: LayerwiseForward): void {
    const [T, B] = a.x.shape;
    const { layers: L, rate } = this.cfg;
    const s = this.stream, rng = new Random(a.seed);
    this.last = { T, B, lengths: a.lengths, x: a.x, hx: a.hx, cx: a.cx };
    let below: Tensor | null = null;
    const views = this.views(T, B);
    for (let l = 0; l < L; l++) {
      const v = views[l];
      this.transfer(l, a.weights, v.weights, true);
      const x = l === 0 ? a.x : v.x;
      // Locked: element (t, b, j) draws key (b, j), so every step shares the mask.
      if (below) s.dropoutForward(below, v.mask, x, rate, rng.seed(), { period: B * this.cfg.hiddenSize });
      const y = l === L - 1 ? a.y : v.y;
      s.rnnForward(this.rnn(l), {
        x, y, hx: this.slice(a.hx, l, B), cx: this.slice(a.cx, l, B), hy: this.slice(a.hy, l, B), cy: this.slice(a.cy, l, B),
        weights: v.weights, reserve: v.reserve, workspace: v.workspace, lengths: a.lengths, training: true,
      });
      below = y;
    }
  }

  /**
   * Gradients of the last forward from dy (the top layer's output) down: dx (the stack's input),
   * the initial states' when dhx is given, and the weights' accumulated into dweights (the
   * stack's gradient space).
   */
  backward(a: { y: Tensor; dy: Tensor; dx: Tensor; dhx: Tensor | null; dcx: Tensor | null; dweights: Tensor }): void {
    const last = this.last;
    if (!last) throw new Error('internal: a layerwise backward without its forward');
    const { T, B, lengths } = last;
    const L = this.cfg.layers, s = this.stream, views = this.views(T, B);
    for (let l = L - 1; l >= 0; l--) {
      const v = views[l];
      const x = l === 0 ? last.x : v.x, y = l === L - 1 ? a.y : v.y, dy = l === L - 1 ? a.dy : v.dy, dx = l === 0 ? a.dx : v.dx;
      const hx = this.slice(last.hx, l, B), cx = this.slice(last.cx, l, B);
      s.rnnBackwardData(this.rnn(l), {
        y, hx, cx, dy, dx,
        dhx: a.dhx && this.slice(a.dhx, l, B), dcx: a.dcx && this.slice(a.dcx, l, B),
        weights: v.weights, reserve: v.reserve, workspace: v.workspace, lengths,
      });
      this.transfer(l, a.dweights, v.grads, true);
      s.rnnBackwardWeights(this.rnn(l), { x, hx, y, weights: v.weights, dweights: v.grads, reserve: v.reserve, workspace: v.workspace, lengths });
      this.transfer(l, a.dweights, v.grads, false);
      // Through the mask between this layer and the one below.
      if (l > 0) s.multiply(dx, v.mask, views[l - 1].dy);
    }
  }

  /** Elements of its memory for a T x B step (beside the arena's). */
  elements(T: number, B: number): number {
    let n = 0;
    for (let l = 0; l < this.cfg.layers; l++) {
      const r = this.rnn(l), sp = r.spaces(T, B);
      n += 2 * r.weightSize + 5 * T * B * this.cfg.hiddenSize + sp.reserve + sp.workspace;
    }
    return n;
  }

  free(): void {
    this.scratch.free();
  }
}
