/**
 * The network of PyTorch's word_language_model RNNModel on a backend stream:
 * embedding -> dropout -> stacked RNN (dropout between layers) -> dropout -> linear decoder
 * -> log-softmax + NLL (padding ignored).
 *
 * Memory (as in llm.c): one flat parameter buffer and one flat gradient buffer, laid out
 * as the checkpoint's named tensors; one activation arena per (T, B) shape, made on first
 * use and reused. Every method only enqueues work; reads are the only awaits.
 */
import { RnnlmError, invalidArgument } from '../errors';
import { Random } from '../util/random';
import {
  numel,
  tensor,
  type Backend,
  type Cell,
  type DeviceBuffer,
  type FloatArray,
  type RnnDescriptor,
  type Stream,
  type Tensor,
} from '../backend/types';

export interface NetworkConfig {
  vocabSize: number;
  embeddingSize: number;
  hiddenSize: number;
  layers: number;
  cell: Cell;
  /** Dropout on the embeddings, between layers and on the RNN output (training only). */
  dropout: number;
  /** decoder.weight is encoder.weight (needs embeddingSize == hiddenSize). */
  tieWeights: boolean;
  dtype: 'f32' | 'f64';
  /** Targets with this id are not counted in the loss; its embedding row gets no gradient. */
  paddingIdx: number;
}

export interface ParamEntry {
  /** PyTorch state_dict name. */
  name: string;
  offset: number;
  shape: number[];
}

/** One batch, time-major: ids and targets have T * B entries, position t * B + b. */
export interface Batch {
  seqLength: number;
  batchSize: number;
  inputs: Int32Array;
  targets: Int32Array;
  /** Per-sequence lengths for padded batches; omitted = all seqLength. */
  lengths?: Int32Array | null;
}

interface Arena {
  T: number;
  B: number;
  f: DeviceBuffer;
  i: DeviceBuffer;
  ids: Tensor;
  targets: Tensor;
  emb: Tensor;
  embMask: Tensor;
  embDrop: Tensor;
  y: Tensor;
  yMask: Tensor;
  yDrop: Tensor;
  logits: Tensor;
  dyDrop: Tensor;
  dy: Tensor;
  dEmbDrop: Tensor;
  dEmb: Tensor;
  hx: Tensor;
  cx: Tensor;
  hy: Tensor;
  cy: Tensor;
  dhx: Tensor;
  dcx: Tensor;
  reserve: Tensor;
  workspace: Tensor;
  loss: Tensor;
  norm: Tensor;
}

export class Network {
  readonly config: NetworkConfig;
  readonly stream: Stream;
  readonly rnn: RnnDescriptor;
  readonly params: DeviceBuffer;
  readonly grads: DeviceBuffer;
  readonly parameterCount: number;
  /** Named tensors in the flat buffers; decoder.weight aliases encoder.weight when tied. */
  readonly layout: ParamEntry[];
  private readonly entries = new Map<string, ParamEntry>();
  private readonly rnnOffset: number;
  private arena?: Arena;
  private lengths: Int32Array | null = null;
  private training = false;
  private dropoutSeed = 0;

  constructor(
    readonly backend: Backend,
    config: NetworkConfig,
  ) {
    this.config = { ...config };
    const { vocabSize: V, embeddingSize: E, hiddenSize: H, layers: L, cell } = config;
    if (config.tieWeights && E !== H) {
      throw invalidArgument(
        `tieWeights needs embeddingSize == hiddenSize (got ${E} and ${H}); set them equal or tieWeights: false`,
      );
    }
    if (!backend.dtypes.includes(config.dtype)) {
      throw invalidArgument(`the ${backend.device} backend does not compute in ${config.dtype}`);
    }
    this.rnn = backend.createRnn({ cell, inputSize: E, hiddenSize: H, layers: L, dropout: config.dropout });
    const layout: ParamEntry[] = [];
    let offset = 0;
    const add = (name: string, shape: number[]) => {
      layout.push({ name, offset, shape });
      offset += numel(shape);
    };
    add('encoder.weight', [V, E]);
    this.rnnOffset = offset;
    for (let l = 0; l < L; l++) {
      (['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'] as const).forEach((kind, id) => {
        const p = this.rnn.weightParam(l, id as 0 | 1 | 2 | 3);
        layout.push({ name: `rnn.${kind}_l${l}`, offset: this.rnnOffset + p.offset, shape: p.shape });
      });
    }
    offset += this.rnn.weightSize;
    if (config.tieWeights) layout.push({ name: 'decoder.weight', offset: 0, shape: [V, H] });
    else add('decoder.weight', [V, H]);
    add('decoder.bias', [V]);
    this.layout = layout;
    for (const e of layout) this.entries.set(e.name, e);
    this.parameterCount = offset;
    this.stream = backend.createStream();
    this.params = this.stream.alloc(config.dtype, offset);
    this.grads = this.stream.alloc(config.dtype, offset);
  }

  entry(name: string): ParamEntry {
    const e = this.entries.get(name);
    if (!e) throw invalidArgument(`no parameter named '${name}'; names: ${[...this.entries.keys()].join(', ')}`);
    return e;
  }
  param(name: string): Tensor {
    const e = this.entry(name);
    return tensor(this.params, e.offset, e.shape);
  }
  grad(name: string): Tensor {
    const e = this.entry(name);
    return tensor(this.grads, e.offset, e.shape);
  }
  get allParams(): Tensor {
    return tensor(this.params, 0, [this.parameterCount]);
  }
  get allGrads(): Tensor {
    return tensor(this.grads, 0, [this.parameterCount]);
  }
  private get rnnWeights(): Tensor {
    return tensor(this.params, this.rnnOffset, [this.rnn.weightSize]);
  }
  private get rnnGrads(): Tensor {
    return tensor(this.grads, this.rnnOffset, [this.rnn.weightSize]);
  }

  /** PyTorch word_language_model init: U(-0.1, 0.1) for encoder and decoder, decoder bias 0,
   *  U(-1/sqrt(H), 1/sqrt(H)) for the recurrent weights (nn.LSTM's default). */
  initialize(seed: number): void {
    const rng = new Random(seed);
    const data = this.config.dtype === 'f64' ? new Float64Array(this.parameterCount) : new Float32Array(this.parameterCount);
    const k = 1 / Math.sqrt(this.config.hiddenSize);
    for (const e of this.layout) {
      if (e.name === 'decoder.bias' || (e.name === 'decoder.weight' && this.config.tieWeights)) continue;
      const r = e.name.startsWith('rnn.') ? k : 0.1;
      for (let i = e.offset; i < e.offset + numel(e.shape); i++) data[i] = rng.uniform(-r, r);
    }
    this.stream.write(this.allParams, data);
  }

  zeroGrad(): void {
    this.stream.fill(this.allGrads, 0);
  }

  private ensureArena(T: number, B: number): Arena {
    if (this.arena && this.arena.T === T && this.arena.B === B) return this.arena;
    this.freeArena();
    const { vocabSize: V, embeddingSize: E, hiddenSize: H, layers: L, dropout } = this.config;
    const sp = this.rnn.spaces(T, B);
    const N = T * B;
    const drop = dropout > 0;
    // Float arena: sizes in order of the slices taken below.
    const sizes = {
      emb: N * E,
      embMask: drop ? N * E : 0,
      embDrop: drop ? N * E : 0,
      y: N * H,
      yMask: drop ? N * H : 0,
      yDrop: drop ? N * H : 0,
      logits: N * V,
      dyDrop: N * H,
      dy: drop ? N * H : 0,
      dEmbDrop: N * E,
      dEmb: drop ? N * E : 0,
      states: 6 * L * B * H,
      reserve: sp.reserve,
      workspace: sp.workspace,
      scalars: 3,
    };
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    const f = this.stream.alloc(this.config.dtype, total);
    const i = this.stream.alloc('i32', 2 * N);
    let at = 0;
    const take = (size: number, shape: number[]) => {
      const t = tensor(f, at, shape);
      at += size;
      return t;
    };
    const emb = take(sizes.emb, [T, B, E]);
    const embMask = drop ? take(sizes.embMask, [T, B, E]) : emb;
    const embDrop = drop ? take(sizes.embDrop, [T, B, E]) : emb;
    const y = take(sizes.y, [T, B, H]);
    const yMask = drop ? take(sizes.yMask, [T, B, H]) : y;
    const yDrop = drop ? take(sizes.yDrop, [T, B, H]) : y;
    const logits = take(sizes.logits, [N, V]);
    const dyDrop = take(sizes.dyDrop, [T, B, H]);
    const dy = drop ? take(sizes.dy, [T, B, H]) : dyDrop;
    const dEmbDrop = take(sizes.dEmbDrop, [T, B, E]);
    const dEmb = drop ? take(sizes.dEmb, [T, B, E]) : dEmbDrop;
    const state = () => take(L * B * H, [L, B, H]);
    const [hx, cx, hy, cy, dhx, dcx] = [state(), state(), state(), state(), state(), state()];
    const reserve = take(sp.reserve, [sp.reserve]);
    const workspace = take(sp.workspace, [sp.workspace]);
    const loss = take(2, [2]);
    const norm = take(1, [1]);
    this.arena = {
      T, B, f, i,
      ids: tensor(i, 0, [N]),
      targets: tensor(i, N, [N]),
      emb, embMask, embDrop, y, yMask, yDrop, logits, dyDrop, dy, dEmbDrop, dEmb,
      hx, cx, hy, cy, dhx, dcx, reserve, workspace, loss, norm,
    };
    return this.arena;
  }

  private freeArena(): void {
    this.arena?.f.free();
    this.arena?.i.free();
    this.arena = undefined;
  }

  /** The recurrent state tensors of the current arena (for tests and state carrying). */
  state(): { hx: Tensor; cx: Tensor; hy: Tensor; cy: Tensor; dhx: Tensor; dcx: Tensor } {
    const a = this.requireArena('state');
    return { hx: a.hx, cx: a.cx, hy: a.hy, cy: a.cy, dhx: a.dhx, dcx: a.dcx };
  }

  /** Zeroes the initial state (a new epoch, or new independent sequences). */
  resetState(seqLength: number, batchSize: number): void {
    const a = this.ensureArena(seqLength, batchSize);
    this.stream.fill(a.hx, 0);
    this.stream.fill(a.cx, 0);
  }

  /** Truncated BPTT: the final state becomes the next window's initial state (no gradient flows back). */
  carryState(): void {
    const a = this.requireArena('carryState');
    this.stream.copy(a.hy, a.hx);
    this.stream.copy(a.cy, a.cx);
  }

  /**
   * Forward pass and loss. `training` enables dropout, with masks drawn from `seed`
   * (the same seed gives the same masks). The initial state is whatever the arena's hx/cx hold.
   */
  forward(batch: Batch, opts: { training: boolean; seed?: number }): void {
    const { seqLength: T, batchSize: B } = batch;
    const N = T * B;
    if (batch.inputs.length !== N || batch.targets.length !== N) {
      throw invalidArgument(`a batch of ${T} x ${B} needs ${N} inputs and targets (got ${batch.inputs.length} and ${batch.targets.length})`);
    }
    const fresh = !this.arena || this.arena.T !== T || this.arena.B !== B;
    const a = this.ensureArena(T, B);
    if (fresh) this.resetState(T, B);
    const { dropout, paddingIdx, embeddingSize: E, hiddenSize: H } = this.config;
    const s = this.stream;
    const rng = new Random(opts.seed ?? 0);
    const drop = opts.training && dropout > 0;
    this.training = opts.training;
    this.lengths = batch.lengths ?? null;
    this.dropoutSeed = rng.seed();
    s.write(a.ids, batch.inputs);
    s.write(a.targets, batch.targets);
    s.embeddingForward(this.param('encoder.weight'), a.ids, tensor(a.emb.buffer, a.emb.offset, [N, E]));
    if (drop) s.dropoutForward(a.emb, a.embMask, a.embDrop, dropout, rng.seed());
    else if (a.embDrop !== a.emb) s.copy(a.emb, a.embDrop);
    s.rnnForward(this.rnn, {
      x: a.embDrop, y: a.y, hx: a.hx, cx: a.cx, hy: a.hy, cy: a.cy,
      weights: this.rnnWeights, reserve: a.reserve, workspace: a.workspace,
      lengths: this.lengths, training: opts.training, seed: this.dropoutSeed,
    });
    if (drop) s.dropoutForward(a.y, a.yMask, a.yDrop, dropout, rng.seed());
    else if (a.yDrop !== a.y) s.copy(a.y, a.yDrop);
    s.linearForward(flat(a.yDrop, N, H), this.param('decoder.weight'), this.param('decoder.bias'), a.logits);
    s.crossEntropy(a.logits, a.targets, paddingIdx, a.loss, a.logits);
  }

  /** Gradients of the last forward's loss, accumulated into the gradient buffer. */
  backward(opts: { stateGrads?: boolean } = {}): void {
    const a = this.requireArena('backward');
    if (!this.training) throw invalidArgument('backward needs a forward pass with training: true');
    const { dropout, paddingIdx, embeddingSize: E, hiddenSize: H } = this.config;
    const N = a.T * a.B;
    const s = this.stream;
    const drop = dropout > 0;
    s.linearBackward(
      flat(a.yDrop, N, H), this.param('decoder.weight'), a.logits,
      flat(a.dyDrop, N, H), this.grad('decoder.weight'), this.grad('decoder.bias'),
    );
    if (drop) s.multiply(a.dyDrop, a.yMask, a.dy);
    s.rnnBackwardData(this.rnn, {
      dy: a.dy, dx: a.dEmbDrop,
      dhx: opts.stateGrads ? a.dhx : null, dcx: opts.stateGrads ? a.dcx : null,
      weights: this.rnnWeights, reserve: a.reserve, workspace: a.workspace, lengths: this.lengths,
    });
    s.rnnBackwardWeights(this.rnn, { x: a.embDrop, dweights: this.rnnGrads, reserve: a.reserve, lengths: this.lengths });
    if (drop) s.multiply(a.dEmbDrop, a.embMask, a.dEmb);
    s.embeddingBackward(a.ids, flat(a.dEmb, N, E), this.grad('encoder.weight'), paddingIdx);
  }

  /** Loss of the last forward (mean NLL over counted targets) and the count. */
  async readLoss(): Promise<{ loss: number; count: number }> {
    const a = this.requireArena('readLoss');
    const r = await this.stream.read(a.loss);
    return { loss: r[0], count: r[1] };
  }

  /** Global-norm clipping of the whole gradient; the norm before clipping lands in normTensor. */
  clipGradNorm(maxNorm: number): void {
    const a = this.requireArena('clipGradNorm');
    this.stream.clipGradNorm(this.allGrads, maxNorm, a.norm);
  }
  get normTensor(): Tensor {
    return this.requireArena('normTensor').norm;
  }

  async readParam(name: string): Promise<FloatArray> {
    return (await this.stream.read(this.param(name))) as FloatArray;
  }
  async readGrad(name: string): Promise<FloatArray> {
    return (await this.stream.read(this.grad(name))) as FloatArray;
  }
  writeParam(name: string, data: FloatArray): void {
    this.stream.write(this.param(name), data);
  }

  private requireArena(what: string): Arena {
    if (!this.arena) throw new RnnlmError('ERR_INVALID_ARGUMENT', `${what} needs a forward pass first`);
    return this.arena;
  }

  dispose(): void {
    this.freeArena();
    this.params.free();
    this.grads.free();
    this.stream.dispose();
  }
}

function flat(t: Tensor, rows: number, cols: number): Tensor {
  return tensor(t.buffer, t.offset, [rows, cols]);
}
