/**
 * The API's defaults, one table per option group: each call's option parsing takes its defaults
 * from here, and the CLI's --help shows them from here, so the two cannot disagree. An option
 * whose default is not a value (fit's mode: from the input; fit's seed: the model's; generate's
 * seed: random) is not here. README.md's API tables list the same values.
 */
import type { Precision } from './backend/types';

const device = 'auto';
/** The runtime's (create and load): continuous batching, the rows stepped together at most, the float math's precision. */
const runtime = { batching: true, maxBatchSize: 64, precision: 'fp32' as Precision };

export const DEFAULTS = {
  /** LanguageModel.create */
  create: { cell: 'lstm', embeddingSize: 200, hiddenSize: 200, layers: 2, dropout: 0, tieWeights: false, device, seed: 1, ...runtime },
  /** create's softmax: { type: 'adaptive', cutoffs } (cutoffs have no default: they depend on the vocabulary) */
  adaptiveSoftmax: { divValue: 4, headBias: false },
  /** model.save: a float model's dtype (an int8 model saves as 'int8'). */
  save: { dtype: 'f32' as 'f32' | 'f16' | 'bf16' | 'int8' },
  /** LanguageModel.load */
  load: { device, ...runtime },
  /** model.fit (batchSize by data mode) */
  fit: {
    epochs: 1,
    batchSize: { stream: 20, sentences: 32 },
    seqLength: 35,
    optimizer: 'adam',
    shuffle: true,
    bucketing: false,
    progress: true,
    nonFinite: 'stop',
    /** average 'nonmonotone': epochs looked back past (AWD-LSTM's nonmono) */
    averageWindow: 5,
    /** lossScale (on by default in precision 'fp16'): PyTorch GradScaler's first scale and growth interval */
    lossScale: { initial: 2 ** 16, growthInterval: 2000 },
  },
  /** fit's checkpoint */
  checkpoint: { every: 'epoch', keepTrainingState: false },
  /** fit's optimizer, by type: PyTorch's, except SGD's learning rate. */
  optimizer: {
    adam: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
    adamw: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
    // lr 1: the plain-SGD rate of the classic LSTM language models (Zaremba et al. 2014, PTB,
    // with clipping); PyTorch's 1e-3 (required before 2.2) barely moves such a model.
    sgd: { lr: 1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
  },
  /** fit's lrSchedule: 'constant' unless given; the others' parameters by type */
  lrSchedule: {
    step: { factor: 0.5, start: 1, every: 1 },
    plateau: { factor: 0.25, patience: 0, threshold: 0 },
  },
  /** model.evaluate (batchSize by data mode; fit's validation takes the stream one in stream mode, fit's own in sentences mode) */
  evaluate: { batchSize: { stream: 10, sentences: 32 }, seqLength: 35 },
  predictNext: { topK: 5 },
  generate: { maxTokens: 100, temperature: 1, topK: 0, topP: 1, stopAtEos: true, topLogProbs: 0 },
  beamSearch: { beamWidth: 5, maxTokens: 20, lengthPenalty: 0 },
  score: { tokenLogProbs: false },
  /** WordTokenizer.fit */
  wordTokenizer: { minFreq: 1, lowercase: false },
  /** CharTokenizer.fit */
  charTokenizer: { minFreq: 1, unk: false },
  /** tokenizer.decode */
  decode: { skipSpecial: true },
  /** createServer and `rnnlm serve` (seconds for the timeouts) */
  serve: {
    host: '127.0.0.1', port: 8080, modelId: 'rnnlm', maxBodyBytes: 1_048_576, maxTokens: 2048, maxConcurrent: 64, maxQueue: 256,
    timeout: 60, shutdownTimeout: 10, accessLog: false,
  },
  /** model.summary */
  summary: { print: true },
} as const;
