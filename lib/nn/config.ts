/** What a Network is made of (NetworkConfig) and what one step of it takes (Batch): nn/network.ts. */
import type { Cell, Precision } from '../backend/types';
import type { SoftmaxConfig } from './decoder';
import type { Quantization } from './quantize';
import type { Regularization } from './regularization';

export interface NetworkConfig extends Regularization {
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
  /** Its embedding row gets no gradient (-1: none); targets with this id are not counted, unless ignoreIndex says otherwise. */
  paddingIdx: number;
  /** Targets with this value are not counted in the loss (default: paddingIdx). */
  ignoreIndex?: number;
  /** The output layer (nn/decoder.ts). Default: the full softmax. */
  softmax?: SoftmaxConfig;
  /**
   * 'int8': an inference-only network of int8 matrices with per-row scales (nn/quantize.ts), on a
   * backend with int8 kernels (the CPU). Default null: float weights, trainable.
   */
  quantization?: Quantization | null;
  /**
   * Train the stack one layer at a time (nn/layerwise.ts) when locked dropout between layers is on.
   * Default: on CUDA, whose stacked RNN drops per element between layers, with RNNLM_CUDA_LAYERWISE=1
   * (opt-in until a GPU run has verified it); true makes the CPU take that path as well (its
   * checks, and the GPU check's reference).
   */
  layerwise?: boolean;
  /** How the float products run (backend/types.ts PRECISIONS; the backend's precisions). Default 'fp32'. */
  precision?: Precision;
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
