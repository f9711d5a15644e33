/**
 * The options of LanguageModel's create, load, save and summary (lib/model.ts), documented and
 * validated here, as fit's are in fit-options.ts: create's become the model's config (nothing
 * allocated, so any size can be summarised), create's and load's runtime options (batching,
 * precision) are not stored in checkpoints.
 */
import { DEVICES, type DeviceOption } from './backend/index';
import { CELL_NAMES, PRECISIONS, type Cell, type Precision } from './backend/types';
import { CONFIG_LIMITS, checkTokenizer, type ModelConfig } from './checkpoint';
import { invalidArgument } from './errors';
import { parseSoftmax, type SoftmaxOptions } from './nn/decoder';
import { REGULARIZATION_RATES, type Regularization } from './nn/regularization';
import type { Quantization } from './nn/quantize';
import { Options } from './options';
import type { Tokenizer } from './tokenizers';
import { DEFAULTS } from './defaults';

/** Options of {@link LanguageModel.create}; the Regularization fields are AWD-LSTM's (fit's `ar` and `tar` go with them). */
export interface CreateOptions extends Regularization {
  /** A fitted WordTokenizer or CharTokenizer (stored in checkpoints). One of tokenizer and vocabSize is required. */
  tokenizer?: Tokenizer;
  /** Vocabulary size of a model of token ids, without a tokenizer (integer in [2, 2^24]). */
  vocabSize?: number;
  /** The recurrent cell, with PyTorch's math and gate order. Default 'lstm'. */
  cell?: Cell;
  /** Size of the token embeddings (integer in [1, 65536]). Default 200. */
  embeddingSize?: number;
  /** Size of each recurrent layer's state (integer in [1, 65536]). Default 200. */
  hiddenSize?: number;
  /** Stacked recurrent layers (integer in [1, 16]). Default 2. */
  layers?: number;
  /** Dropout on embeddings, between layers and on the output, in training only (in [0, 0.95]). Default 0. */
  dropout?: number;
  /** Share the embedding matrix with the decoder (needs embeddingSize == hiddenSize). Default false. */
  tieWeights?: boolean;
  /**
   * The output layer. `{ type: 'full' }` (default): a linear layer and a softmax over the whole
   * vocabulary. `{ type: 'adaptive', cutoffs, divValue?, headBias? }`: PyTorch's
   * nn.AdaptiveLogSoftmaxWithLoss (Grave et al. 2017), much faster on large vocabularies. The head
   * scores ids below cutoffs[0] and one entry per cluster; cluster i holds ids [cutoffs[i],
   * cutoffs[i + 1]) (the last ends at the vocabulary size) behind a projection to
   * floor(hiddenSize / divValue^(i + 1)) dimensions (divValue > 1, default 4); headBias (default
   * false) gives the head a bias. Ids must run from frequent to rare, as the tokenizers number them.
   * Not with tieWeights.
   */
  softmax?: SoftmaxOptions;
  /** 'cpu', 'cuda', or 'auto': CUDA if its backend loads and a GPU answers, else the CPU (deviceReason says why). Default 'auto'. */
  device?: DeviceOption;
  /** Seed of the weight initialisation and, by default, of training (integer in [0, 2^31 - 1]). Default 1. */
  seed?: number;
  /**
   * Continuous batching: concurrent predictNext, generate, score and session calls share native
   * steps. false: they run one at a time, in arrival order. Default true.
   */
  batching?: boolean;
  /** Requests stepped together at most when batching (integer in [1, 4096]). Default 64. */
  maxBatchSize?: number;
  /**
   * How the float math runs on the device: 'fp32' (default); on CUDA also 'tf32' (tensor cores
   * multiply operands rounded to TF32, a 10-bit mantissa, and sum in float32: Ampere and later),
   * 'bf16' and 'fp16' (mixed precision: cuDNN's RNN runs on bf16 / fp16 copies of its data with
   * float math, the decoder's products round their operands to bf16 / fp16 and sum in float32;
   * 'fp16' training scales its loss dynamically, FitOptions.lossScale; 'bf16' needs cuDNN 9.13).
   * The CPU computes in 'fp32' only: device 'cpu' refuses the others, device 'auto' falls back
   * to 'fp32' on the CPU (deviceReason says so). Parameters, gradients, optimizer state and
   * checkpoints are float32 in every precision: the half copies are made as the math needs them.
   */
  precision?: Precision;
}

/** Options of {@link LanguageModel.load}. */
export interface LoadOptions {
  /** As CreateOptions.device: a checkpoint loads on either device. Default 'auto'. */
  device?: DeviceOption;
  /** As CreateOptions.batching. Default true. */
  batching?: boolean;
  /** As CreateOptions.maxBatchSize. Default 64. */
  maxBatchSize?: number;
  /** As CreateOptions.precision (a checkpoint is float32 and loads in any). Default 'fp32'. */
  precision?: Precision;
  /**
   * 'int8': load as an int8 model (see LanguageModel.quantize), whatever the file holds. An int8
   * file loads as an int8 model on the CPU anyway, or dequantized to float32 on device 'cuda'.
   */
  quantize?: Quantization;
}

/** The runtime options of create and load (not stored in checkpoints). */
export interface RuntimeOptions {
  maxRows: number;
  precision: Precision;
}
export function runtimeOptions(o: Options, defaults: { batching: boolean; maxBatchSize: number; precision: Precision }): RuntimeOptions {
  const batching = o.boolean('batching', defaults.batching);
  const maxBatchSize = o.integer('maxBatchSize', defaults.maxBatchSize, { min: 1, max: 4096 });
  return { maxRows: batching ? maxBatchSize : 1, precision: o.oneOf('precision', defaults.precision, PRECISIONS) };
}

/** Options of {@link LanguageModel.save}. */
export interface SaveOptions {
  /**
   * The weights' element type: 'f32' (exact), or half precision, half the file: 'f16' (IEEE half,
   * 11 bits of precision, values up to 65504) or 'bf16' (bfloat16: float32's range, 8 bits). A
   * half-precision file loads as float32 (training resumes from float32 checkpoints only). 'int8':
   * a quarter of float32's size, every matrix as int8 with its rows' float32 scales (`<name>` and
   * `<name>_scale`, [rows, 1]; biases float32); it loads as an int8 model (see quantize). Default:
   * 'f32', or 'int8' for an int8 model (whose other dtypes hold its dequantized weights).
   */
  dtype?: 'f32' | 'f16' | 'bf16' | 'int8';
}
export const SAVE_DTYPES = ['f32', 'f16', 'bf16', 'int8'] as const;

/** Options of {@link LanguageModel.summary}. */
export interface SummaryOptions {
  /** Print the table with console.log as well as returning it. Default true. */
  print?: boolean;
}

const CREATE_KEYS = ['tokenizer', 'vocabSize', 'cell', 'embeddingSize', 'hiddenSize', 'layers', 'dropout', ...REGULARIZATION_RATES, 'lockedDropout', 'tieWeights', 'softmax', 'device', 'seed', 'batching', 'maxBatchSize', 'precision'] as const;

/** create's options validated into a config, allocating nothing (so any size can be summarised). */
export function parseCreateOptions(options: CreateOptions): { cfg: ModelConfig; tokenizer?: Tokenizer; device: DeviceOption; runtime: RuntimeOptions } {
  const o = new Options('LanguageModel.create', options, CREATE_KEYS);
  const tokenizer = o.has('tokenizer') ? checkTokenizer('LanguageModel.create', o.raw('tokenizer')) : undefined;
  let vocabSize = o.optionalInteger('vocabSize', CONFIG_LIMITS.vocabSize);
  if (tokenizer) {
    if (vocabSize !== undefined && vocabSize !== tokenizer.vocabSize) {
      throw invalidArgument(`LanguageModel.create: vocabSize ${vocabSize} disagrees with the tokenizer's ${tokenizer.vocabSize}; leave vocabSize out`);
    }
    vocabSize = tokenizer.vocabSize;
  }
  if (vocabSize === undefined) throw invalidArgument('LanguageModel.create: give a tokenizer or a vocabSize');
  const cfg: ModelConfig = {
    cell: o.oneOf('cell', DEFAULTS.create.cell, CELL_NAMES),
    vocabSize,
    embeddingSize: o.integer('embeddingSize', DEFAULTS.create.embeddingSize, CONFIG_LIMITS.embeddingSize),
    hiddenSize: o.integer('hiddenSize', DEFAULTS.create.hiddenSize, CONFIG_LIMITS.hiddenSize),
    layers: o.integer('layers', DEFAULTS.create.layers, CONFIG_LIMITS.layers),
    dropout: o.number('dropout', DEFAULTS.create.dropout, CONFIG_LIMITS.dropout),
    tieWeights: o.boolean('tieWeights', DEFAULTS.create.tieWeights),
    softmax: { type: 'full' },
    seed: o.integer('seed', DEFAULTS.create.seed, CONFIG_LIMITS.seed),
  };
  for (const k of REGULARIZATION_RATES) {
    const v = o.optionalNumber(k, CONFIG_LIMITS.dropout);
    if (v !== undefined) cfg[k] = v;
  }
  if (o.has('lockedDropout')) cfg.lockedDropout = o.boolean('lockedDropout', false);
  if (cfg.tieWeights && cfg.embeddingSize !== cfg.hiddenSize) {
    throw invalidArgument(`LanguageModel.create: tieWeights needs embeddingSize == hiddenSize (got ${cfg.embeddingSize} and ${cfg.hiddenSize})`);
  }
  cfg.softmax = parseSoftmax(o.raw('softmax'), cfg, (m) => invalidArgument(`LanguageModel.create: ${m}`));
  return { cfg, tokenizer, device: o.oneOf('device', DEFAULTS.create.device, DEVICES), runtime: runtimeOptions(o, DEFAULTS.create) };
}
