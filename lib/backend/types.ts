/**
 * The backend interface: memory and ops on tensors that live on one device,
 * queued in order on a per-model stream. Both backends (native/cpu, native/cuda)
 * implement it natively; this file is its contract.
 *
 * Conventions
 * - A Tensor is a typed window { buffer, offset, shape } into a DeviceBuffer;
 *   sizes and offsets count elements. Row-major; sequences are time-major [T, B, *].
 * - Every call validates its arguments synchronously and throws RnnlmError; the
 *   work itself runs later on the stream. Ops that fail on data (a token id out
 *   of range) make the next read() or sync() reject, and the ops queued between
 *   are skipped.
 * - Outputs named d* of weights *accumulate* (+=); zero the gradient buffer
 *   with fill() before each backward pass.
 */

/** i8: the int8 weights of a quantized model (Backend.int8: the CPU). */
export type DType = 'f32' | 'f64' | 'i32' | 'i8';
/**
 * The recurrent cells, with PyTorch's math and gate order: the gates of each (the rows of every
 * weight matrix are gates x hiddenSize) and the name a summary gives it. The one list of them in
 * TypeScript; native/common/rnn_layout.h (gateCount, parseCell) is its native twin, and a test
 * checks that the two agree.
 */
export const CELLS = {
  lstm: { gates: 4, title: 'LSTM' },
  gru: { gates: 3, title: 'GRU' },
  rnn_tanh: { gates: 1, title: 'RNN (tanh)' },
  rnn_relu: { gates: 1, title: 'RNN (relu)' },
} as const;
export type Cell = keyof typeof CELLS;
export const CELL_NAMES = Object.keys(CELLS) as Cell[];
export const isCell = (v: unknown): v is Cell => typeof v === 'string' && Object.hasOwn(CELLS, v);

/**
 * How a model's float math runs (create's and load's `precision`): 'fp32' float32 products, the
 * default and the CPU's only one; 'tf32' CUDA tensor cores with products of TF32-rounded
 * operands (10-bit mantissa) and float32 sums; 'bf16' / 'fp16' (CUDA) cuDNN's RNN on half copies of
 * its data with float math, and the decoder's products of bf16- / fp16-rounded operands with
 * float32 sums ('fp16' trains with a dynamic loss scale: FitOptions.lossScale). Parameters,
 * gradients, optimizer state and checkpoints are float32 in every precision.
 * native/common/precision.h is the native twin of this list.
 */
export const PRECISIONS = ['fp32', 'tf32', 'bf16', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** Stream.updateLossScale's rule: growth >= 1, backoff in (0, 1], interval >= 1, minScale <= maxScale. */
export interface LossScaleArgs {
  growth: number;
  backoff: number;
  interval: number;
  minScale: number;
  maxScale: number;
}

/** Options of Backend.createStream. */
export interface StreamOptions {
  /** The precision of the stream's products (cuBLAS's math mode on CUDA). Default 'fp32'. */
  precision?: Precision;
}

export interface DeviceBuffer {
  readonly length: number;
  readonly dtype: DType | 'released';
  readonly released: boolean;
  /** Releases the memory once queued ops that use it have run. */
  free(): void;
}

export interface Tensor {
  readonly buffer: DeviceBuffer;
  readonly offset: number;
  readonly shape: readonly number[];
}

export type TypedArrayOf<D extends DType> = D extends 'f32' ? Float32Array : D extends 'f64' ? Float64Array : D extends 'i8' ? Int8Array : Int32Array;
export type FloatArray = Float32Array | Float64Array;

export interface RnnOptions {
  cell: Cell;
  inputSize: number;
  hiddenSize: number;
  layers: number;
  /** Dropout between stacked layers, applied in training mode only. */
  dropout?: number;
  /** That dropout locked: one mask per sequence, shared by its time steps (CUDA refuses training with it, layers > 1 and dropout > 0). */
  lockedDropout?: boolean;
  /** The precision of the stack's products (cuDNN's math type on CUDA). Default 'fp32'. */
  precision?: Precision;
  /**
   * cuDNN's RNN algorithm (native/common/rnn_algorithm.h): one named, or 'auto': each shape's first
   * use times every algorithm cuDNN runs it with and keeps the fastest. The CPU has one and ignores
   * it. Default on CUDA: RNNLM_CUDNN_RNN_ALGO, else 'standard' (auto is opt-in until a GPU run has
   * checked every algorithm's parity and speed).
   */
  algorithm?: RnnAlgorithm;
}

export const RNN_ALGORITHMS = ['standard', 'persist_static', 'persist_static_small_h', 'auto'] as const;
export type RnnAlgorithm = (typeof RNN_ALGORITHMS)[number];

/** One shape's algorithm choice (RnnDescriptor.algorithms): the key and each candidate's time (null: it refused the shape). */
export interface RnnAlgorithmChoice {
  training: boolean;
  batchSize: number;
  /** The key's: the sequence length rounded up to a power of two. */
  seqLength: number;
  algorithm: Exclude<RnnAlgorithm, 'auto'>;
  /** Milliseconds per run (training: forward + both backwards), by algorithm. */
  ms: Partial<Record<Exclude<RnnAlgorithm, 'auto'>, number | null>>;
}

/** Shape of one canonical parameter (PyTorch layout) and its offset in the weight space. */
export interface RnnParamRef {
  offset: number;
  shape: number[];
}

export interface RnnDescriptor {
  /** Elements of the weight space of the whole stack. */
  readonly weightSize: number;
  /** id: 0 = weight_ih, 1 = weight_hh, 2 = bias_ih, 3 = bias_hh (PyTorch's names and gate order). */
  weightParam(layer: number, id: 0 | 1 | 2 | 3): RnnParamRef;
  /** Elements of reserve (forward -> backward) and workspace (scratch) space for T steps of B sequences. */
  spaces(seqLength: number, batchSize: number): { reserve: number; workspace: number };
  /** The algorithm choices made so far ('auto' on CUDA; otherwise none). */
  algorithms(): RnnAlgorithmChoice[];
}

export interface RnnForwardArgs {
  x: Tensor; // [T, B, inputSize]
  y: Tensor; // [T, B, hiddenSize]; zero at padded steps
  hx?: Tensor | null; // [layers, B, H] initial hidden state (null = zeros)
  cx?: Tensor | null; // LSTM initial cell state
  hy?: Tensor | null; // final hidden state (at each sequence's last step)
  cy?: Tensor | null;
  weights: Tensor; // [weightSize]; i8 for a quantized stack (inference, with scales)
  /**
   * With i8 weights (in the weight space's layout, the biases' slots unused): f32
   * [layers * 4 * gates * hiddenSize], per layer the row scales of weight_ih and of weight_hh, then
   * bias_ih and bias_hh (the state_dict's order, one float per weight row). Products are then int8
   * (native/cpu/quant.h) and batch-invariant.
   */
  scales?: Tensor | null;
  reserve: Tensor;
  workspace: Tensor;
  /** Per-sequence lengths in [1, T] (padded batch); null = all T. */
  lengths?: Int32Array | null;
  training: boolean;
  /** Seed of the dropout masks between layers. */
  seed?: number;
  /**
   * For inference: each sequence's results (y, hy, cy) come out bit for bit the same whatever
   * the batch it runs in (its size, the sequence's place in it), so that a request batched with
   * others returns what it would alone. On the CPU the forward GEMMs then use a fixed-order
   * kernel (native/cpu/gemm_nt_simd.inc) instead of OpenBLAS, whose rounding of a row depends on
   * the batch. The CUDA backend accepts the flag and ignores it: on the GPU (cuBLAS, cuDNN) a
   * row's rounding may depend on the batch.
   */
  batchInvariant?: boolean;
}

export interface RnnBackwardDataArgs {
  /** The forward pass's output and initial state (cuDNN reads them; optional on the CPU). */
  y?: Tensor | null;
  hx?: Tensor | null;
  cx?: Tensor | null;
  dy: Tensor;
  dhy?: Tensor | null;
  dcy?: Tensor | null;
  dx?: Tensor | null;
  dhx?: Tensor | null;
  dcx?: Tensor | null;
  weights: Tensor;
  reserve: Tensor;
  workspace: Tensor;
  lengths?: Int32Array | null;
}

export interface RnnBackwardWeightsArgs {
  x: Tensor;
  /** The forward pass's initial state and output (cuDNN reads them; optional on the CPU). */
  hx?: Tensor | null;
  y?: Tensor | null;
  weights: Tensor;
  dweights: Tensor; // accumulates
  reserve: Tensor;
  workspace: Tensor;
  lengths?: Int32Array | null;
}

export interface SgdArgs {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  step: number;
}

export interface AdamArgs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** true = AdamW (decoupled weight decay), false = Adam with L2 added to the gradient. */
  decoupled: boolean;
  step: number;
}

export interface Stream {
  readonly disposed: boolean;
  alloc(dtype: DType, length: number): DeviceBuffer;
  /** Copies `data` now; the device copy happens in stream order. Float data must be finite, int8 data in [-127, 127]. */
  write(dst: Tensor, data: Float32Array | Float64Array | Int32Array | Int8Array): void;
  read(src: Tensor): Promise<Float32Array | Float64Array | Int32Array | Int8Array>;
  /** Resolves when everything queued so far has run (rejects with the first error). */
  sync(): Promise<void>;
  fill(dst: Tensor, value: number): void;
  copy(src: Tensor, dst: Tensor): void;
  /** Stops the stream; queued work is dropped and pending reads reject with ERR_DISPOSED. */
  dispose(): void;
  /** Buffers allocated on this stream so far (a captured graph is valid while this is unchanged). */
  readonly allocations: number;

  /**
   * Graphs (native/common/binding/graphs.h): captureBegin(), then one step's compute ops, then
   * captureEnd() returns an id that replay(id) runs again in one call (a CUDA graph; on the CPU the
   * ops kept). Each op's arguments are fixed when queued; what changes per step must be in device
   * memory, written before the replay (the optimizers' `live`). Between begin and end, alloc, write,
   * read and sync throw. A failed capture fails the stream's next read, and its replays.
   */
  captureBegin(): void;
  captureEnd(): number;
  replay(graph: number): void;
  /** Frees a graph (after the replays queued before). */
  releaseGraph(graph: number): void;

  /** out[n] = table[ids[n]]. table [V, E], ids i32 [N], out [N, E]; an i8 table with its row scales (f32 [V]): out[n] = scale[id] table[id]. */
  embeddingForward(table: Tensor, ids: Tensor, out: Tensor, scale?: Tensor | null): void;
  /** dtable[ids[n]] += dout[n], skipping ids equal to paddingIdx (-1: none). */
  embeddingBackward(ids: Tensor, dout: Tensor, dtable: Tensor, paddingIdx: number): void;
  /**
   * Inverted dropout: mask = keep / (1 - p) from (seed, key); y = x * mask (y may be x). Element i
   * draws the number of key (ids ? ids[i / stride] : i / stride) mod period (native/common/rng.h):
   * by default one per element; `period: B * C` over [T, B, C] is locked dropout (one mask per
   * sequence, the same at every step); `stride: E, ids` over [N, E] drops whole words (one mask
   * per token id, shared by its every occurrence).
   */
  dropoutForward(x: Tensor, mask: Tensor, y: Tensor, p: number, seed: number, options?: { period?: number; stride?: number; ids?: Tensor | null }): void;
  /**
   * Activation regularization (AR) and temporal activation regularization (TAR) of x [T, ...]
   * (Merity et al. 2017): out[0] += alpha mean(x^2) + beta mean over t >= 1 of (x_t - x_{t-1})^2,
   * and dx += the gradient of that with respect to x. out [1].
   */
  activationRegularization(x: Tensor, dx: Tensor, alpha: number, beta: number, out: Tensor): void;
  /** avg += weight * (x - avg), weight in [0, 1]: with weight 1 / (k + 1) at the k-th call, avg is the mean of the x given (iterate averaging). */
  average(avg: Tensor, x: Tensor, weight: number): void;
  /** out = a * b elementwise. */
  multiply(a: Tensor, b: Tensor, out: Tensor): void;
  /**
   * y = x W^T + b. x [N, I], W [O, I], b [O], y [N, O]. batchInvariant: each row of y as it
   * would be alone, on the CPU (see RnnForwardArgs.batchInvariant). scale: the row scales (f32
   * [O]) of an i8 W: int8 products, batch-invariant always (native/cpu/quant.h).
   */
  linearForward(x: Tensor, W: Tensor, b: Tensor | null, y: Tensor, options?: { batchInvariant?: boolean; scale?: Tensor | null }): void;
  /** dx (= or +=) dy W; dW += dy^T x; db += column sums of dy. */
  linearBackward(
    x: Tensor,
    W: Tensor,
    dy: Tensor,
    dx: Tensor | null,
    dW: Tensor | null,
    db: Tensor | null,
    accumulateDx?: boolean,
  ): void;
  /**
   * Fused log-softmax + mean negative log-likelihood over targets != ignoreIndex.
   * out [2] = (loss, counted targets). dlogits (may be the logits tensor itself) = d loss / d logits.
   * options.divisor (> 0): the sum is divided by it instead of the counted targets (loss and
   * dlogits); options.accumulate: out[0] += loss, out[1] is left as is. Together they let several
   * calls make one mean (the adaptive softmax's head and clusters).
   */
  crossEntropy(
    logits: Tensor,
    targets: Tensor,
    ignoreIndex: number,
    out: Tensor,
    dlogits: Tensor | null,
    options?: { divisor?: number; accumulate?: boolean },
  ): void;
  logSoftmax(logits: Tensor, out: Tensor): void;
  /**
   * out[n, column + j] = logSoftmax(x[n])_j + shift[n, shiftColumn] (0 without shift) for j < count:
   * a block of columns of a wider log-probability matrix. x [N, K], out [N, W], shift [N, S]; separate.
   */
  logSoftmaxInto(x: Tensor, out: Tensor, column: number, count: number, shift: Tensor | null, shiftColumn: number): void;
  /**
   * ids[n] (i32 [N]) drawn from softmax(logits[n] / temperature) — argmax when temperature is 0 —
   * among the topK most likely ids (0 = all) and the smallest most-likely set with probability
   * >= topP, never one of `exclude` (at most 16 ids). The draw for row n is a pure function of
   * (seed, n). The CUDA backend supports topK 0 and topP 1 only (filtering is on the host there).
   * `values` (logits' dtype, [N]), when given, receives values[n] = logits[n, ids[n]], the entry
   * before temperature: with log-probabilities as logits, each drawn id's log-probability.
   */
  sample(
    logits: Tensor,
    ids: Tensor,
    temperature: number,
    topK: number,
    topP: number,
    seed: number,
    exclude?: Int32Array | null,
    values?: Tensor | null,
    /**
     * i32 [2]: the seed's low and high 32 bits, read when the draw runs instead of `seed` (a graph's
     * replay draws each token's); or i32 [N, 2], a seed per row: row n draws as it would alone with
     * its own seed (the batched rows of generation in one op).
     */
    seedFrom?: Tensor | null,
  ): void;
  /** out [1] = ||grads||; grads *= maxNorm / (norm + 1e-6) when that is < 1 (maxNorm 0: measure only). */
  clipGradNorm(grads: Tensor, maxNorm: number, out: Tensor): void;
  clipValue(grads: Tensor, value: number): void;
  /** guard [n <= 8] (e.g. the step's loss and gradient norm): when any is not finite the update is skipped, on the device. */
  /** live (i32 [4], optional: Optimizer.prepare writes lr's float64 bits and the step): read when the update runs, overriding args' lr and step (a graph's replay takes this step's). */
  sgd(params: Tensor, grads: Tensor, momentum: Tensor | null, args: SgdArgs, guard?: Tensor | null, live?: Tensor | null): void;
  adam(params: Tensor, grads: Tensor, m: Tensor, v: Tensor, args: AdamArgs, guard?: Tensor | null, live?: Tensor | null): void;

  /**
   * Dynamic loss scaling (native/common/loss_scale.h): state [3] (the network's dtype) = the
   * scale S, finite steps since S changed, backoffs so far; read when each op runs.
   * scaleBy: x *= S, or x *= 1 / S with inverse.
   */
  scaleBy(x: Tensor, state: Tensor, inverse: boolean): void;
  /**
   * After a step: when every entry of guard (the optimizer's: loss, count, gradient norm) is
   * finite, counts it and multiplies S by growth every interval finite steps (at most maxScale);
   * else multiplies S by backoff (at least minScale), restarts the count and counts a backoff.
   * record ([guard's n + 1]), when given, receives the guard's values and the S the step ran with.
   */
  updateLossScale(state: Tensor, guard: Tensor, args: LossScaleArgs, record?: Tensor | null): void;

  rnnForward(rnn: RnnDescriptor, args: RnnForwardArgs): void;
  /** After a training-mode rnnForward with the same T, B and lengths. */
  rnnBackwardData(rnn: RnnDescriptor, args: RnnBackwardDataArgs): void;
  /** After rnnBackwardData; dweights += dL/dW. */
  rnnBackwardWeights(rnn: RnnDescriptor, args: RnnBackwardWeightsArgs): void;
}

export interface Backend {
  readonly device: 'cpu' | 'cuda';
  /** Float dtypes the backend computes in. */
  readonly dtypes: readonly DType[];
  /** Whether it has int8 kernels (quantized inference): the CPU. */
  readonly int8: boolean;
  /** The precisions it computes in (createStream and createRnn refuse the others). */
  readonly precisions: readonly Precision[];
  createStream(options?: StreamOptions): Stream;
  createRnn(options: RnnOptions): RnnDescriptor;
  info(): Record<string, unknown>;
  /**
   * Device memory this backend has allocated in the process (buffers and its own scratch):
   * how many allocations so far, bytes live now and at the peak. After warm-up a training
   * step allocates nothing, which the benchmarks check with `allocations`.
   */
  memoryStats(): MemoryStats;
  /** Bytes the device can still allocate (host: MemAvailable; GPU: free device memory). */
  availableBytes(): number;
}

export interface MemoryStats {
  allocations: number;
  liveBytes: number;
  peakBytes: number;
}

export function tensor(buffer: DeviceBuffer, offset: number, shape: readonly number[]): Tensor {
  return { buffer, offset, shape };
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
