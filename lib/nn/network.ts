/**
 * The network of PyTorch's word_language_model RNNModel on a backend stream:
 * embedding -> dropout -> stacked RNN (dropout between layers) -> dropout -> decoder (a linear
 * layer and log-softmax, or the adaptive softmax: nn/decoder.ts) -> NLL (padding ignored).
 * With AWD-LSTM's regularization (Merity et al. 2017, all off by default): whole words dropped
 * from the embedding, locked (per-sequence) dropout masks, DropConnect on the recurrent weights
 * (weightDrop) and, in backward, activation and temporal activation regularization (AR, TAR).
 *
 * Memory (as in llm.c): one flat parameter buffer and one flat gradient buffer, laid out
 * as the checkpoint's named tensors; one activation arena per (T, B) shape, made on first
 * use and reused; the decoder's varying memory in a Scratch. Every method only enqueues work;
 * reads are the only awaits.
 */
import { RnnlmError, invalidArgument } from '../errors';
import { Random } from '../util/random';
import { createDecoder, parseSoftmax, type Decoder } from './decoder';
import { initialWeights, parameterSpecs, weightSpaceOffset, type ParamEntry } from './layout';
import { isQuantized, quantizable, type HostWeights, type Quantization } from './quantize';
import { Arena, type StepViews } from './arena';
import { Scratch } from './scratch';
import { RecurrentStates, type States } from './states';
import { WeightDrop } from './weight-drop';
import { Layerwise } from './layerwise';
import type { LossScaler } from './loss-scale';
import { ratesOf, type Rates } from './regularization';
import type { Batch, NetworkConfig } from './config';
import {
  CELLS,
  numel,
  tensor,
  type Backend,
  type DeviceBuffer,
  type FloatArray,
  type RnnDescriptor,
  type Stream,
  type Tensor,
} from '../backend/types';

export type { ParamEntry } from './layout';
export type { Regularization } from './regularization';

export type { Batch, NetworkConfig } from './config';

export class Network {
  readonly config: NetworkConfig;
  readonly stream: Stream;
  readonly rnn: RnnDescriptor;
  /** The parameters in the layout's order: float, or int8 matrices of a quantized network (biases unused there). */
  readonly params: DeviceBuffer;
  readonly parameterCount: number;
  readonly quantization: Quantization | null;
  /** The output layer: log-probabilities and the loss (nn/decoder.ts). */
  readonly decoder: Decoder;
  /** Named tensors in the flat buffers (nn/layout.ts); decoder.weight aliases encoder.weight when tied. */
  readonly layout: ParamEntry[] = [];
  private readonly entries = new Map<string, ParamEntry>();
  private readonly rnnOffset: number;
  private readonly gradBuf?: DeviceBuffer;
  /**
   * A quantized network's float "side": per tensor in the layout's order, a matrix's row scales
   * or a bias's values (the recurrent block's as native/common/rnn_layout.h's quantSideOffset reads
   * it); where each tensor's side starts.
   */
  private readonly side?: DeviceBuffer;
  private readonly sideAt = new Map<string, number>();
  /** Activation memory of the steps (nn/arena.ts). */
  private readonly arena: Arena;
  /** Memory whose size varies by call: the decoder's, and logProbs' output. */
  private readonly scratch: Scratch;
  private readonly states: RecurrentStates;
  private last?: { views: StepViews; training: boolean; lengths: Int32Array | null };
  /** The dropout rates, resolved (nn/regularization.ts). */
  readonly rates: Rates;
  /** Weight drop on every weight_hh (nn/weight-drop.ts). */
  private readonly weightDrop?: WeightDrop;
  /** The stack trained layer by layer, for locked dropout between layers (nn/layerwise.ts). */
  private readonly layerwise?: Layerwise;
  /** No backward since the last zeroGrad (weight drop masks the recurrent gradients, which must be this step's alone). */
  private gradsZeroed = false;
  /** The loss scale of training (fit's lossScale, nn/loss-scale.ts): the gradients are S times d loss until the caller unscales them. */
  lossScaler: LossScaler | null = null;

  constructor(
    readonly backend: Backend,
    config: NetworkConfig,
  ) {
    const { embeddingSize: E, hiddenSize: H, layers: L, cell } = config;
    if (config.tieWeights && E !== H) {
      throw invalidArgument(
        `tieWeights needs embeddingSize == hiddenSize (got ${E} and ${H}); set them equal or tieWeights: false`,
      );
    }
    this.config = { ...config, softmax: parseSoftmax(config.softmax, config, invalidArgument) };
    if (!backend.dtypes.includes(config.dtype)) {
      throw invalidArgument(`the ${backend.device} backend does not compute in ${config.dtype}`);
    }
    const q = (this.quantization = config.quantization ?? null);
    if (q && !backend.int8) throw invalidArgument(`an ${q} model runs on the CPU: the ${backend.device} backend has no ${q} kernels`);
    if (q && config.dtype !== 'f32') throw invalidArgument(`an ${q} model computes in f32 (got ${config.dtype})`);
    const precision = config.precision ?? 'fp32';
    if (!backend.precisions.includes(precision)) {
      throw invalidArgument(`the ${backend.device} backend does not compute in precision '${precision}' (it supports ${backend.precisions.map((p) => `'${p}'`).join(', ')})`);
    }
    if (q && precision !== 'fp32') throw invalidArgument(`an ${q} model computes its products in int8 (precision '${precision}' is for float models)`);
    this.rates = ratesOf(config);
    this.rnn = backend.createRnn({ cell, inputSize: E, hiddenSize: H, layers: L, dropout: this.rates.hidden, lockedDropout: this.rates.locked, precision });
    // The state_dict in order, each tensor after the last; the recurrent ones where the backend
    // puts them in its weight space (cuDNN's on CUDA), which takes their place in the order.
    let offset = 0, rnnOffset = -1, side = 0;
    for (const p of parameterSpecs(this.config)) {
      let at = offset;
      this.sideAt.set(p.name, p.alias ? this.sideAt.get(p.alias)! : side);
      if (!p.alias) side += quantizable(p.shape) ? p.shape[0] : numel(p.shape);
      if (p.alias) at = this.entry(p.alias).offset;
      else if (p.rnn) {
        if (rnnOffset < 0) {
          rnnOffset = offset;
          offset += this.rnn.weightSize;
        }
        at = rnnOffset + weightSpaceOffset(this.rnn, p, backend.device);
      } else offset += numel(p.shape);
      const e = { name: p.name, offset: at, shape: p.shape };
      this.layout.push(e);
      this.entries.set(e.name, e);
    }
    this.rnnOffset = rnnOffset;
    this.parameterCount = offset;
    // Parameters and gradients (a quantized network: int8 parameters and the side), refused as a
    // whole before either is allocated.
    const dropsWeights = this.rates.weights > 0 && !q;
    const bytes = q ? offset + 4 * side : (2 * offset + (dropsWeights ? WeightDrop.elements(this.rnn, L) : 0)) * (config.dtype === 'f64' ? 8 : 4);
    if (bytes > backend.availableBytes()) {
      throw new RnnlmError('ERR_OUT_OF_MEMORY', `a model of ${offset.toLocaleString('en-US')} parameters needs ${gib(bytes)} for its parameters${q ? '' : dropsWeights ? ', gradients and weight drop' : ' and gradients'}; the ${backend.device} has ${gib(backend.availableBytes())} available`);
    }
    this.stream = backend.createStream({ precision });
    try {
      this.params = this.stream.alloc(q ? 'i8' : config.dtype, offset);
      if (q) this.side = this.stream.alloc('f32', side);
      else this.gradBuf = this.stream.alloc(config.dtype, offset);
      this.scratch = new Scratch(this.stream, config.dtype);
      this.states = new RecurrentStates(this.stream, { layers: L, hiddenSize: H, dtype: config.dtype });
      if (dropsWeights) this.weightDrop = new WeightDrop(this.stream, this.rnn, L, this.rates.weights, config.dtype);
      const r = this.rates;
      // On CUDA opt-in (RNNLM_CUDA_LAYERWISE=1) until a GPU run has verified it; else cuDNN's stack refuses the rate.
      if (r.locked && r.hidden > 0 && L > 1 && !q && (config.layerwise ?? (backend.device === 'cuda' && process.env.RNNLM_CUDA_LAYERWISE === '1'))) {
        this.layerwise = new Layerwise(backend, this.stream, this.rnn, { cell, inputSize: E, hiddenSize: H, layers: L, dtype: config.dtype, rate: r.hidden, precision });
      }
      this.arena = new Arena(this.stream, this.rnn, {
        embeddingSize: E, hiddenSize: H, dtype: config.dtype,
        dropWords: r.words > 0, dropInput: r.words > 0 || r.input > 0, dropOutput: r.output > 0,
      });
      this.decoder = createDecoder(this.config.softmax!, this, this.scratch, config.vocabSize, H);
    } catch (e) {
      this.stream.dispose(); // its thread and memory now, not at some later collection
      throw e;
    }
  }

  entry(name: string): ParamEntry {
    const e = this.entries.get(name);
    if (!e) throw invalidArgument(`no parameter named '${name}'; names: ${[...this.entries.keys()].join(', ')}`);
    return e;
  }
  /** A parameter: float, or in a quantized network an int8 matrix (scale() has its row scales) or a float bias. */
  param(name: string): Tensor {
    const e = this.entry(name);
    if (this.side && !quantizable(e.shape)) return tensor(this.side, this.sideAt.get(name)!, e.shape);
    return tensor(this.params, e.offset, e.shape);
  }
  /** The row scales of a quantized network's matrix (f32 [rows]); null for float weights and biases. */
  scale(name: string): Tensor | null {
    const e = this.entry(name);
    return this.side && quantizable(e.shape) ? tensor(this.side, this.sideAt.get(name)!, [e.shape[0]]) : null;
  }
  grad(name: string): Tensor {
    const e = this.entry(name);
    return tensor(this.grads, e.offset, e.shape);
  }
  /** The gradient buffer; a quantized network has none (it is for inference). */
  get grads(): DeviceBuffer {
    if (!this.gradBuf) throw invalidArgument(`an ${this.quantization} model is for inference: it has no gradients; train a float32 model and quantize it after`);
    return this.gradBuf;
  }
  get allParams(): Tensor {
    return tensor(this.params, 0, [this.parameterCount]);
  }
  get allGrads(): Tensor {
    return tensor(this.grads, 0, [this.parameterCount]);
  }
  /** The recurrent weights: the whole weight space of `rnn` (for inference outside this class). */
  get rnnWeights(): Tensor {
    return tensor(this.params, this.rnnOffset, [this.rnn.weightSize]);
  }
  private get rnnGrads(): Tensor {
    return tensor(this.grads, this.rnnOffset, [this.rnn.weightSize]);
  }
  /** rnnForward's weights: the weight space, with a quantized network's side (scales and biases). */
  get rnnArgs(): { weights: Tensor; scales: Tensor | null } {
    const { layers: L, hiddenSize: H, cell } = this.config;
    const scales = this.side ? tensor(this.side, this.sideAt.get('rnn.weight_ih_l0')!, [L * 4 * CELLS[cell].gates * H]) : null;
    return { weights: this.rnnWeights, scales };
  }
  /** out [N, E] = the embeddings of ids (i32 [N]). */
  embed(ids: Tensor, out: Tensor): void {
    this.stream.embeddingForward(this.param('encoder.weight'), ids, out, this.scale('encoder.weight'));
  }

  /** Writes weights by name (every tensor of the layout; int8 matrices for a quantized network, float ones otherwise). */
  writeWeights(w: HostWeights): void {
    for (const e of this.layout) {
      const t = w.get(e.name);
      if (!t) throw invalidArgument(`writeWeights: no tensor '${e.name}'`);
      if (isQuantized(t) !== Boolean(this.side && quantizable(e.shape))) throw invalidArgument(`writeWeights: '${e.name}' must be ${isQuantized(t) ? 'float32' : 'int8'} in this network`);
      if (isQuantized(t)) {
        this.stream.write(this.param(e.name), t.q);
        this.stream.write(this.scale(e.name)!, t.scale);
      } else this.stream.write(this.param(e.name), t);
    }
  }

  /** Every tensor of the layout by name, as writeWeights takes them. */
  async readWeights(): Promise<HostWeights> {
    const params = await this.stream.read(this.allParams);
    const side = this.side ? ((await this.stream.read(tensor(this.side, 0, [this.side.length]))) as Float32Array) : null;
    const out: HostWeights = new Map();
    for (const e of this.layout) {
      const n = numel(e.shape), at = this.sideAt.get(e.name)!;
      if (!side) out.set(e.name, (params as Float32Array).slice(e.offset, e.offset + n));
      else if (quantizable(e.shape)) out.set(e.name, { q: (params as Int8Array).slice(e.offset, e.offset + n), scale: side.slice(at, at + e.shape[0]) });
      else out.set(e.name, side.slice(at, at + n));
    }
    return out;
  }

  /** PyTorch word_language_model's initialisation (nn/layout.ts, initialWeights). */
  initialize(seed: number): void {
    if (this.quantization) throw invalidArgument(`an ${this.quantization} model is made from trained weights (quantize), not initialised`);
    const data = this.config.dtype === 'f64' ? new Float64Array(this.parameterCount) : new Float32Array(this.parameterCount);
    initialWeights(this.layout, this.config, seed, data);
    this.stream.write(this.allParams, data);
  }

  zeroGrad(): void {
    this.stream.fill(this.allGrads, 0);
    this.gradsZeroed = true;
  }

  /** Bytes that training or inference at T x B adds (activations, the decoder's scratch, token ids, recurrent states). */
  activationBytes(T: number, B: number): number {
    const f = Object.values(this.arena.slotSizes(T, B)).reduce((a, b) => a + b, 0) + this.decoder.lossScratch(T * B) + 6 * this.config.layers * B * this.config.hiddenSize + (this.layerwise?.elements(T, B) ?? 0);
    return f * (this.config.dtype === 'f64' ? 8 : 4) + 2 * T * B * 4;
  }

  /** The recurrent state tensors for batches of B sequences: hx/cx go in, hy/cy come out. */
  state(batchSize: number): Omit<States, 'B' | 'buf'> {
    const { hx, cx, hy, cy, dhx, dcx } = this.states.for(batchSize);
    return { hx, cx, hy, cy, dhx, dcx };
  }

  /** Zeroes the initial state (a new epoch, or new independent sequences). */
  resetState(batchSize: number): void {
    const st = this.states.for(batchSize);
    this.stream.fill(st.hx, 0);
    this.stream.fill(st.cx, 0);
  }

  /** Truncated BPTT: the final state becomes the next window's initial state (no gradient flows back). */
  carryState(): void {
    const st = this.requireStates('carryState');
    this.stream.copy(st.hy, st.hx);
    this.stream.copy(st.cy, st.cx);
  }

  /**
   * Forward pass and loss. `training` enables dropout, with masks drawn from `seed`
   * (the same seed gives the same masks), and computes the decoder's gradients as well (its
   * scratch does not outlive the pass): zero the gradients before a training forward. The
   * initial state is whatever the arena's hx/cx hold.
   */
  forward(batch: Batch, opts: { training: boolean; seed?: number; staged?: boolean }): void {
    const a = this.run(batch, opts);
    const N = a.T * a.B, H = this.config.hiddenSize;
    this.decoder.loss(flat(a.yDrop, N, H), batch.targets, this.config.ignoreIndex ?? this.config.paddingIdx, a.loss, opts.training ? flat(a.dyDrop, N, H) : null, opts.staged);
  }

  /**
   * Writes a batch's ids and targets to the device, the writes of forward: a step captured as a
   * graph (nn/graphs.ts) stages its batch, then runs forward with staged: true (or is replayed).
   */
  stage(batch: Batch): void {
    // The host's part of a training forward as well, so that a replayed step leaves the network
    // as a run one does: its states (zeroed if B changed) and its last views.
    const { a } = this.begin(batch, true);
    this.stream.write(a.ids, batch.inputs);
    if (!this.decoder.stageTargets) throw invalidArgument('stage: this network cannot stage a batch (its softmax is adaptive)');
    this.decoder.stageTargets(batch.targets);
  }

  /**
   * Whether a training step can be captured as a graph: the full softmax (the adaptive one
   * gathers each batch's cluster rows on the host) and nothing drawn per step (dropout of any
   * kind, weight drop: their seeds are op arguments), float weights, the stack in one piece.
   */
  get graphable(): boolean {
    const r = this.rates;
    return this.config.softmax?.type !== 'adaptive' && !this.quantization && !this.layerwise && !this.weightDrop &&
      r.input === 0 && r.hidden === 0 && r.output === 0 && r.words === 0;
  }

  /**
   * Inference: log-probabilities of the next token at every position, [T * B, V]
   * (row t * B + b), in the returned tensor; valid until the next call.
   */
  logProbs(inputs: Int32Array, seqLength: number, batchSize: number, lengths?: Int32Array | null): Tensor {
    const a = this.run({ seqLength, batchSize, inputs, targets: inputs, lengths }, { training: false });
    const N = a.T * a.B, V = this.config.vocabSize;
    const out = this.scratch.f('logProbs', N * V, [N, V]);
    this.decoder.logProbs(flat(a.yDrop, N, this.config.hiddenSize), out);
    return out;
  }

  /** The last layer's output of the last forward or logProbs, [T * B, H] (valid until the next one). */
  get lastOutput(): Tensor {
    const a = this.requireLast('lastOutput');
    return flat(a.y, a.T * a.B, this.config.hiddenSize);
  }

  /** A forward's work on the host: the batch checked, its views and states, and it as the last forward. */
  private begin(batch: Batch, training: boolean): { a: StepViews; st: States } {
    const { seqLength: T, batchSize: B } = batch, N = T * B;
    if (batch.inputs.length !== N || batch.targets.length !== N) {
      throw invalidArgument(`a batch of ${T} x ${B} needs ${N} inputs and targets (got ${batch.inputs.length} and ${batch.targets.length})`);
    }
    const a = this.arena.views(T, B);
    const st = this.states.for(B);
    this.last = { views: a, training, lengths: batch.lengths ?? null };
    return { a, st };
  }

  /** Embedding -> dropout -> RNN -> dropout (the decoder's input, yDrop). */
  private run(batch: Batch, opts: { training: boolean; seed?: number; staged?: boolean }): StepViews {
    const { seqLength: T, batchSize: B } = batch;
    const N = T * B;
    const { a, st } = this.begin(batch, opts.training);
    const { embeddingSize: E, hiddenSize: H } = this.config;
    const r = this.rates, s = this.stream, train = opts.training;
    const rng = new Random(opts.seed ?? 0);
    // Locked: element (t, b, c) of [T, B, C] draws key (b, c), so every step shares the mask.
    const keys = (C: number) => (r.locked ? { period: B * C } : undefined);
    if (!opts.staged) s.write(a.ids, batch.inputs);
    this.embed(a.ids, flat(a.emb, N, E));
    // The seeds are drawn in a fixed order whatever is on, so one option does not move another's masks.
    const [inputSeed, rnnSeed, outputSeed, wordSeed, weightSeed] = [rng.seed(), rng.seed(), rng.seed(), rng.seed(), rng.seed()];
    if (a.embDrop !== a.emb) {
      if (train && r.words > 0) s.dropoutForward(a.emb, a.wordMask, a.embDrop, r.words, wordSeed, { stride: E, ids: a.ids });
      else s.copy(a.emb, a.embDrop);
      if (train && r.input > 0) s.dropoutForward(a.embDrop, a.embMask, a.embDrop, r.input, inputSeed, keys(E));
    }
    const weights = train && this.weightDrop ? this.weightDrop.apply(this.rnnWeights, weightSeed) : this.rnnWeights;
    if (train && this.layerwise) {
      this.layerwise.forward({ x: a.embDrop, y: a.y, hx: st.hx, cx: st.cx, hy: st.hy, cy: st.cy, weights, lengths: batch.lengths ?? null, seed: rnnSeed });
    } else {
      s.rnnForward(this.rnn, {
        x: a.embDrop, y: a.y, hx: st.hx, cx: st.cx, hy: st.hy, cy: st.cy,
        ...this.rnnArgs, weights,
        reserve: a.reserve, workspace: a.workspace,
        lengths: batch.lengths ?? null, training: train, seed: rnnSeed,
      });
    }
    if (train && r.output > 0) s.dropoutForward(a.y, a.yMask, a.yDrop, r.output, outputSeed, keys(H));
    else if (a.yDrop !== a.y) s.copy(a.y, a.yDrop);
    return a;
  }

  /**
   * Gradients of the last forward's loss (from the decoder's input down), accumulated into the
   * gradient buffer; with weight drop, the step's own alone (zeroGrad before each). `ar`, `tar`:
   * activation regularization alpha mean(yDrop^2) on the dropped output and temporal activation
   * regularization beta mean((y_t - y_{t-1})^2) on the last layer's output (Merity et al. 2017),
   * added to the gradients; their value lands in readPenalty().
   */
  backward(opts: { stateGrads?: boolean; ar?: number; tar?: number } = {}): void {
    if (!this.last?.training) throw invalidArgument('backward needs a forward pass with training: true first');
    const { views: a, lengths } = this.last;
    const dropped = this.weightDrop; // a training forward ran on its masked weights
    const ar = opts.ar ?? 0, tar = opts.tar ?? 0;
    if ((ar > 0 || tar > 0) && lengths) throw invalidArgument('activation regularization (ar, tar) needs batches of whole time steps, without padding (batching: \'stream\')');
    if (dropped && !this.gradsZeroed) throw invalidArgument('with weight drop, each backward needs its own zeroGrad: the recurrent gradients are masked by this step\'s mask');
    this.gradsZeroed = false;
    const st = this.requireStates('backward');
    const { paddingIdx, embeddingSize: E } = this.config;
    const N = a.T * a.B;
    const s = this.stream;
    s.fill(a.penalty, 0);
    // AR and TAR add unscaled terms: the gradient leaves the loss scale around them (exact, S a power of two).
    const scaler = ar > 0 || tar > 0 ? this.lossScaler : null;
    scaler?.unscale(a.dyDrop);
    if (ar > 0) s.activationRegularization(a.yDrop, a.dyDrop, ar, 0, a.penalty);
    if (a.dy !== a.dyDrop) s.multiply(a.dyDrop, a.yMask, a.dy);
    if (tar > 0) s.activationRegularization(a.y, a.dy, 0, tar, a.penalty);
    scaler?.scale(a.dy);
    const weights = dropped ? dropped.masked : this.rnnWeights;
    if (this.layerwise) {
      this.layerwise.backward({ y: a.y, dy: a.dy, dx: a.dEmbDrop, dhx: opts.stateGrads ? st.dhx : null, dcx: opts.stateGrads ? st.dcx : null, dweights: this.rnnGrads });
    } else {
      s.rnnBackwardData(this.rnn, {
        y: a.y, hx: st.hx, cx: st.cx, dy: a.dy, dx: a.dEmbDrop,
        dhx: opts.stateGrads ? st.dhx : null, dcx: opts.stateGrads ? st.dcx : null,
        weights, reserve: a.reserve, workspace: a.workspace, lengths,
      });
      s.rnnBackwardWeights(this.rnn, {
        x: a.embDrop, hx: st.hx, y: a.y, weights, dweights: this.rnnGrads,
        reserve: a.reserve, workspace: a.workspace, lengths,
      });
    }
    dropped?.backward(this.rnnGrads);
    if (a.dEmb !== a.dEmbDrop) {
      if (this.rates.input > 0) s.multiply(a.dEmbDrop, a.embMask, a.dEmb);
      else s.copy(a.dEmbDrop, a.dEmb);
      if (this.rates.words > 0) s.multiply(a.dEmb, a.wordMask, a.dEmb);
    }
    s.embeddingBackward(a.ids, flat(a.dEmb, N, E), this.grad('encoder.weight'), paddingIdx);
  }

  /** AR + TAR of the last backward (0 without them). */
  async readPenalty(): Promise<number> {
    return (await this.stream.read(this.requireLast('readPenalty').penalty))[0];
  }

  /** Loss of the last forward (mean NLL over counted targets) and the count. */
  async readLoss(): Promise<{ loss: number; count: number }> {
    const r = await this.stream.read(this.requireLast('readLoss').loss);
    return { loss: r[0], count: r[1] };
  }

  /** (loss, counted targets, gradient norm) of the last step: adjacent slots, one read, and the
   *  optimizer's guard (an update is skipped on the device when any of them is not finite). */
  get statsTensor(): Tensor {
    const a = this.requireLast('statsTensor');
    return tensor(a.loss.buffer, a.loss.offset, [3]);
  }
  async readStepStats(): Promise<{ loss: number; count: number; norm: number }> {
    const r = await this.stream.read(this.statsTensor);
    return { loss: r[0], count: r[1], norm: r[2] };
  }

  /** Global-norm clipping of the whole gradient; the norm before clipping lands in normTensor. */
  clipGradNorm(maxNorm: number): void {
    this.stream.clipGradNorm(this.allGrads, maxNorm, this.normTensor);
  }
  get normTensor(): Tensor {
    return this.requireLast('normTensor').norm;
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

  private requireLast(what: string): StepViews {
    if (!this.last) throw new RnnlmError('ERR_INVALID_ARGUMENT', `${what} needs a forward pass first`);
    return this.last.views;
  }
  private requireStates(what: string): States {
    if (!this.states.current) throw new RnnlmError('ERR_INVALID_ARGUMENT', `${what} needs a forward pass first`);
    return this.states.current;
  }

  dispose(): void {
    this.arena.free();
    this.scratch.free();
    this.states.free();
    this.params.free();
    this.side?.free();
    this.gradBuf?.free();
    this.weightDrop?.free();
    this.layerwise?.free();
    this.stream.dispose();
  }
}

function flat(t: Tensor, rows: number, cols: number): Tensor {
  return tensor(t.buffer, t.offset, [rows, cols]);
}

export const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
