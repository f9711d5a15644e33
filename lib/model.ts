/**
 * LanguageModel: the public API (docs/ARCHITECTURE.md, "Public API"). PyTorch word_language_model's
 * RNNModel — embedding -> dropout -> stacked LSTM / GRU / RNN -> dropout -> linear decoder —
 * on the CPU or CUDA backend, with tokenizers, training in stream or sentence mode,
 * evaluation, next-token prediction, sampling, beam search and safetensors checkpoints.
 *
 * Its public members are the documented API only. The rest is in private (#) fields: training
 * (./train) and inference (./generate) get what they need through a host object the model
 * builds, and advanced users get the network through networkOf (rnnlm/advanced).
 */
import { DEVICES, selectBackend, type DeviceOption } from './backend/index';
import { CELL_NAMES, PRECISIONS, type Cell, type Precision } from './backend/types';
import { CONFIG_LIMITS, checkTokenizer, readCheckpoint, summaryTable, writeCheckpoint, type CheckpointDType, type ModelConfig } from './checkpoint';
import { IGNORE } from './data';
import { RnnlmError, invalidArgument } from './errors';
import { evaluateSet, prepareScoring, type EvaluateOptions, type Evaluation } from './evaluate';
import { parseTuneCache, tuneCacheOn, type CacheTuning, type TuneCacheOptions } from './cache';
import type { EpochLog, FitOptions as FitOptionsOf } from './fit-options';
import { beamSearch, type Beam, type BeamSearchOptions } from './inference/beam';
import {
  predictNext, startFeed, startGeneration, streamGeneration,
  type GenerateOptions, type GeneratedToken, type Generation, type Prediction, type PredictOptions,
} from './inference/generate';
import { sentenceModel, type InferenceHost } from './inference/host';
import { scoreInputs, scoreModel, type Score, type ScoreOptions } from './inference/score';
import { Session, SessionStates, type SessionOptions } from './inference/session';
import { Inputs, type DataMode, type TextInput, type TokenIds } from './inputs';
import { parseSoftmax, type SoftmaxOptions } from './nn/decoder';
import { countParameters, parameterSpecs } from './nn/layout';
import { Network } from './nn/network';
import { REGULARIZATION_RATES, type Regularization } from './nn/regularization';
import { QUANTIZATIONS, quantizeWeights, type HostWeights, type Quantization } from './nn/quantize';
import { Options, signalIn } from './options';
import { Access } from './runtime/access';
import { Scheduler, type RuntimeStats } from './runtime/scheduler';
import { PAD_ID, type Tokenizer } from './tokenizers';
import { fitModel, type TrainHost } from './train';
import { DEFAULTS } from './defaults';

export type { ModelConfig } from './checkpoint';
export type { DeviceOption } from './backend/index';
export type { Cell, Precision } from './backend/types';
export type { DataMode, TextInput, TokenIds } from './inputs';
export type { EvaluateOptions, Evaluation } from './evaluate';
export type { CacheOptions, CacheTuning, TuneCacheOptions } from './cache';
export type { Regularization } from './nn/regularization';
export type { Beam, BeamSearchOptions } from './inference/beam';
export type { GenerateOptions, GeneratedToken, Generation, Prediction, PredictOptions, TopToken } from './inference/generate';
export type { RuntimeStats } from './runtime/scheduler';
export type { TokenControls } from './inference/controls';
export type { Score, ScoreOptions } from './inference/score';
export type { Session, SessionGenerateOptions, SessionOptions, SessionScoreOptions } from './inference/session';
export type { SoftmaxConfig, SoftmaxOptions } from './nn/decoder';
export type { EpochLog, LrSchedule } from './fit-options';
export type { OptimizerOptions } from './nn/optimizer';
/** Options of {@link LanguageModel.fit}; onEpochEnd is given the model being trained. */
export type FitOptions = FitOptionsOf<LanguageModel>;

/** Options of {@link LanguageModel.create}. */
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
interface RuntimeOptions {
  maxRows: number;
  precision: Precision;
}
function runtimeOptions(o: Options, defaults: { batching: boolean; maxBatchSize: number; precision: Precision }): RuntimeOptions {
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
const SAVE_DTYPES = ['f32', 'f16', 'bf16', 'int8'] as const;

/** Options of {@link LanguageModel.summary}. */
export interface SummaryOptions {
  /** Print the table with console.log as well as returning it. Default true. */
  print?: boolean;
}

const CREATE_KEYS = ['tokenizer', 'vocabSize', 'cell', 'embeddingSize', 'hiddenSize', 'layers', 'dropout', ...REGULARIZATION_RATES, 'lockedDropout', 'tieWeights', 'softmax', 'device', 'seed', 'batching', 'maxBatchSize', 'precision'] as const;
/** The constructor's key: models are made by create and load only. */
const BUILD = Symbol('LanguageModel.build');

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

/** Set in LanguageModel's static block: the only way to its network from outside the class. */
let networkOfModel: (model: LanguageModel) => Network;

/** A model's network on its backend, for advanced use (custom loops, reading or writing weights); exported by rnnlm/advanced. */
export function networkOf(model: LanguageModel): Network {
  return networkOfModel(model);
}

export class LanguageModel {
  /** The tokenizer the model was created with (stored in its checkpoints); undefined for a model of token ids. */
  readonly tokenizer?: Tokenizer;
  /** Why this device was chosen (device: 'auto' explains its choice). */
  readonly deviceReason: string;
  readonly #net: Network;
  readonly #cfg: ModelConfig;
  /** The data checks of this model (its tokenizer and vocabulary). */
  readonly #inputs: Inputs;
  #mode?: DataMode;
  #disposed = false;
  /** Who may use the model when: concurrent inference, fit alone (runtime/access.ts). */
  readonly #access = new Access(() => this.#checkAlive());
  readonly #runtime: RuntimeOptions;
  /** The batching scheduler of inference requests (made on first use). */
  #scheduler?: Scheduler;
  /** The sessions' states, freed with the model (weakly held: a dropped session goes with its garbage collection). */
  readonly #sessions = new SessionStates();

  static {
    networkOfModel = (model) => {
      if (typeof model !== 'object' || model === null || !(#net in model)) throw invalidArgument('networkOf: expected a LanguageModel');
      return model.#net;
    };
  }

  private constructor(key: symbol, net: Network, cfg: ModelConfig, tokenizer: Tokenizer | undefined, reason: string, runtime: RuntimeOptions) {
    if (key !== BUILD) throw invalidArgument('new LanguageModel() is not supported: make a model with LanguageModel.create(options) or LanguageModel.load(path)');
    this.#inputs = new Inputs(tokenizer, cfg.vocabSize);
    this.#runtime = runtime;
    this.#net = net;
    this.#cfg = cfg;
    this.tokenizer = tokenizer;
    this.deviceReason = reason;
  }

  /** A new model with freshly initialised weights (PyTorch word_language_model's initialisation). */
  static async create(options: CreateOptions = {}): Promise<LanguageModel> {
    const { cfg, tokenizer, device, runtime } = parseCreateOptions(options);
    return LanguageModel.#build(cfg, tokenizer, device, true, runtime);
  }

  static async #build(cfg: ModelConfig, tokenizer: Tokenizer | undefined, device: DeviceOption, init: boolean, runtime: RuntimeOptions, quantization: Quantization | null = null) {
    const chosen = quantization ? { ...selectBackend('cpu'), reason: `${quantization} models run on the CPU` } : selectBackend(device);
    const { backend } = chosen;
    let { reason } = chosen, { precision } = runtime;
    const supported = quantization ? ['fp32'] : backend.precisions;
    if (!supported.includes(precision)) {
      const what = quantization ? `an ${quantization} model computes in int8 and fp32` : `the ${backend.device} backend computes in ${supported.map((p) => `'${p}'`).join(' and ')}`;
      // 'auto' asks for whatever is here: the request is a permission to round more, never a need.
      const why = quantization ? '' : precision === 'tf32' ? " ('tf32' is a mode of CUDA's tensor cores)" : ` ('${precision}' is CUDA's mixed precision)`;
      if (device !== 'auto') throw invalidArgument(`LanguageModel: precision '${precision}' is not available: ${what}${why}`);
      reason += `; precision '${precision}' fell back to 'fp32' (${what})`;
      precision = 'fp32';
    }
    // With token ids no id is padding (-1: no frozen embedding row); the loss skips only IGNORE,
    // the target of padded positions, never a token.
    const net = new Network(backend, { ...cfg, dtype: 'f32', paddingIdx: tokenizer ? PAD_ID : -1, ignoreIndex: IGNORE, quantization, precision });
    try {
      if (init) net.initialize(cfg.seed);
      await net.stream.sync();
    } catch (e) {
      net.dispose();
      throw e;
    }
    return new LanguageModel(BUILD, net, cfg, tokenizer, reason, { ...runtime, precision });
  }

  /** The device the model lives on. */
  get device(): 'cpu' | 'cuda' {
    return this.#net.backend.device;
  }
  /** How its float math runs (CreateOptions.precision, after device 'auto''s fallback). */
  get precision(): Precision {
    return this.#runtime.precision;
  }
  /** The model's configuration (create's options with their defaults; a copy). */
  get config(): Readonly<ModelConfig> {
    return { ...this.#cfg };
  }
  /** 'int8' for an int8 model (quantize; inference only, on the CPU), else null. */
  get quantization(): Quantization | null {
    return this.#net.quantization;
  }
  /** Trainable parameters (a tied decoder shares the embedding's), as summary counts them. */
  get parameterCount(): number {
    return countParameters(parameterSpecs(this.#cfg));
  }
  /**
   * The data mode of the last training (saved in checkpoints); undefined before any. A model of
   * a tokenizer trained on sentences starts each prompt with <sos> and ends at <eos>.
   */
  get mode(): DataMode | undefined {
    return this.#mode;
  }

  /**
   * The inference runtime's load now: requests waiting for a batch row (`queued`) and rows
   * stepping (`rows`: requests decoding or feeding their prompt). 0/0 before the first inference
   * call and after dispose.
   */
  get runtimeStats(): RuntimeStats {
    return this.#scheduler?.stats ?? { queued: 0, rows: 0 };
  }

  /** A Keras-style table of layers, output shapes and parameter counts (printed unless print: false). */
  summary(options: SummaryOptions = {}): string {
    const print = new Options('summary', options, ['print']).boolean('print', DEFAULTS.summary.print);
    const { text } = summaryTable(this.#cfg);
    if (print) console.log(text);
    return text;
  }

  // ---- lifetime ---------------------------------------------------------------------------------

  #checkAlive(): void {
    if (this.#disposed) throw new RnnlmError('ERR_DISPOSED', 'this model was disposed; load or create a new one');
  }

  /** Frees all native memory now; calls in progress reject with ERR_DISPOSED, later calls throw it. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#scheduler?.dispose();
    this.#sessions.freeAll();
    this.#net.dispose();
  }

  // ---- training and evaluation ----------------------------------------------------------------

  /**
   * Trains; resolves with one log per epoch. See FitOptions. It starts once the inference calls in
   * flight have ended; inference called during fit waits for it (except in its onEpochEnd).
   */
  fit(train: TextInput, options: FitOptions = {}): Promise<EpochLog[]> {
    return this.#access.exclusive('fit', () => {
      if (this.quantization) throw invalidArgument(`fit: an ${this.quantization} model is for inference; train the float32 model (LanguageModel.load of its float checkpoint) and quantize it after`);
      return fitModel(this.#trainHost(), train, options);
    });
  }

  /**
   * An int8 copy of this model, for inference on the CPU: every weight matrix (embedding, recurrent,
   * decoder) as int8 with one float32 scale per row; biases, activations and states stay float32,
   * and each product quantizes its input per row on the fly (as PyTorch's quantize_dynamic). About
   * a quarter of the weights' memory and faster generation; every inference call works on it, fit
   * does not. This model is left as it is.
   */
  quantize(type: Quantization): Promise<LanguageModel> {
    return this.#access.shared(async () => {
      if (!(QUANTIZATIONS as readonly unknown[]).includes(type)) throw invalidArgument(`quantize: type must be one of ${QUANTIZATIONS.map((q) => `'${q}'`).join(', ')} (got ${typeof type === 'string' ? `'${type}'` : String(type)})`);
      if (this.quantization) throw invalidArgument(`quantize: this model is ${this.quantization} already`);
      const weights = quantizeWeights(this.#net.layout, await this.#net.readWeights());
      const model = await LanguageModel.#build(this.#cfg, this.tokenizer, 'cpu', false, { ...this.#runtime, precision: 'fp32' }, type);
      model.#mode = this.#mode;
      await model.#fill(() => weights);
      return model;
    });
  }

  /** Writes weights made from the network's layout, then waits for them; disposes the model if that fails. */
  async #fill(weights: (layout: Network['layout']) => HostWeights): Promise<void> {
    try {
      this.#net.writeWeights(weights(this.#net.layout));
      await this.#net.stream.sync();
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** What the training loop (./train) needs of this model. */
  #trainHost(): TrainHost<LanguageModel> {
    return {
      model: this,
      network: this.#net,
      inputs: this.#inputs,
      config: this.config,
      setMode: (mode) => (this.#mode = mode),
      save: (path, extra) => this.#write(path, extra),
      callback: (fn) => this.#access.callback(fn),
    };
  }

  /** Mean loss (nats per token), perplexity and count of every target token of a text or of sentences. */
  evaluate(data: TextInput, options: EvaluateOptions = {}): Promise<Evaluation> {
    return this.#access.shared(() => this.#access.network(async () => evaluateSet(this.#net, prepareScoring(this.#inputs, data, options, 'evaluate data'))), signalIn(options));
  }

  /**
   * Tunes evaluate's cache on a text (validation data, not the test text): the theta and lambda of
   * the grid with the lowest perplexity, found in one pass (the cache's products do not depend on
   * them), with that perplexity and the one without a cache. Defaults: size 2000, thetas 0.05 to
   * 3 (when the best is 3, larger ones are tried: a pass each, twice at most), lambdas 0.05 to 0.3.
   */
  async tuneCache(text: TextInput, options: TuneCacheOptions = {}): Promise<CacheTuning> {
    const t = parseTuneCache(options);
    const ids = this.#inputs.stream(text, 'tuneCache text');
    return this.#access.shared(() => this.#access.network(() => tuneCacheOn(this.#net, ids, t)), t.signal);
  }

  // ---- inference ---------------------------------------------------------------------------------

  /** What inference (./inference) needs of this model. */
  #host(): InferenceHost {
    const model = this;
    return {
      network: this.#net,
      tokenizer: this.tokenizer,
      inputs: this.#inputs,
      // Read when used: a session made before fit starts as the trained model does.
      get mode() {
        return model.#mode;
      },
      scheduler: (this.#scheduler ??= new Scheduler(this.#net, { maxRows: this.#runtime.maxRows })),
      access: this.#access,
      decode: (ids) => (this.tokenizer ? this.tokenizer.decode(ids) : ids.join(' ')),
      sessions: this.#sessions,
    };
  }

  /** A prompt's or context's ids with the model's start (<sos> first for a tokenizer model trained on sentences). */
  #start(prompt: unknown, what: string) {
    const host = this.#host();
    return { host, start: { init: null, feed: startFeed(this.#inputs.prompt(prompt, what), sentenceModel(host)) } };
  }

  /**
   * The topK most likely next tokens after a context, with their probabilities. An empty context
   * asks the model's start: after <sos> for a sentence model, else the zero state.
   */
  predictNext(context: string | TokenIds, options: PredictOptions = {}): Promise<Prediction[]> {
    return this.#access.shared(async () => {
      const { host, start } = this.#start(context, 'predictNext context');
      return predictNext(host, start, options);
    }, signalIn(options));
  }

  /** Continues a prompt by sampling; resolves with the generated text (the prompt not included), or with a Generation when `details: true`. */
  generate(options: GenerateOptions & { details: true }): Promise<Generation>;
  generate(options?: GenerateOptions): Promise<string>;
  generate(options: GenerateOptions = {}): Promise<string | Generation> {
    return this.#access.shared(async () => {
      const g = await this.#generate(options);
      return options?.details === true ? g : g.text;
    }, signalIn(options));
  }

  /** generate's tokens as they are produced, as an async iterator; leaving the loop early cancels the call. */
  generateStream(options: GenerateOptions = {}): AsyncIterableIterator<GeneratedToken> {
    return streamGeneration('generateStream', options, (o, sink) => this.#access.shared(() => this.#generate(o, sink), o.signal));
  }

  #generate(options: GenerateOptions, sink?: (t: GeneratedToken) => void): Promise<Generation> {
    const prompt = typeof options === 'object' && options !== null ? options.prompt : undefined;
    const { host, start } = this.#start(prompt, 'generate prompt');
    return startGeneration(host, start, options, 'generate', sink);
  }

  /** The beamWidth most likely continuations of a prompt (log-probabilities summed over tokens). */
  beamSearch(prompt: string | TokenIds, options: BeamSearchOptions = {}): Promise<Beam[]> {
    return this.#access.shared(() => this.#access.network(async () => {
      const { host, start } = this.#start(prompt, 'beamSearch prompt');
      if (start.feed.length === 0) {
        throw invalidArgument(`beamSearch prompt is empty; a model ${this.tokenizer ? 'trained in stream mode' : 'of token ids'} needs at least one token of context`);
      }
      return beamSearch(host, start.feed, options);
    }), signalIn(options));
  }

  /**
   * The log-probability the model gives to a text or token ids (or to each of an array of them):
   * total, per token when asked, perplexity and `<unk>` count. Batched with other calls.
   */
  score(input: string | TokenIds, options?: ScoreOptions): Promise<Score>;
  score(inputs: ReadonlyArray<string | TokenIds>, options?: ScoreOptions): Promise<Score[]>;
  score(input: unknown, options: ScoreOptions = {}): Promise<Score | Score[]> {
    return this.#access.shared(async () => {
      const { many, items } = scoreInputs(input);
      const scores = await scoreModel(this.#host(), items, options);
      return many ? scores : scores[0];
    }, signalIn(options));
  }

  /**
   * A session: a recurrent state kept between calls (append, predictNext, generate, score, fork);
   * with `cache`, also the memory of a continuous cache over what it holds.
   */
  session(options: SessionOptions = {}): Session {
    this.#checkAlive();
    return new Session(this.#host(), options);
  }

  // ---- checkpoints ---------------------------------------------------------------------------------

  /** Writes the model (weights with PyTorch names, config and tokenizer) to one .safetensors file, atomically. */
  save(path: string, options: SaveOptions = {}): Promise<void> {
    return this.#access.shared(async () => {
      const dtype = new Options('save', options, ['dtype']).oneOf('dtype', this.quantization ?? DEFAULTS.save.dtype, SAVE_DTYPES);
      return this.#write(path, {}, dtype);
    });
  }

  async #write(path: string, extra: Record<string, string> = {}, dtype: NonNullable<SaveOptions['dtype']> = 'f32'): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw invalidArgument('save: path must be a non-empty string');
    const own = await this.#net.readWeights();
    const weights = dtype === 'int8' && !this.quantization ? quantizeWeights(this.#net.layout, own) : own;
    await writeCheckpoint(path, this.#net.layout, weights, this.#cfg, this.tokenizer, this.#mode, extra, (dtype === 'int8' ? 'I8' : dtype.toUpperCase()) as CheckpointDType);
  }

  /** Reads a checkpoint written by save (validated before use) onto a device. */
  static async load(path: string, options: LoadOptions = {}): Promise<LanguageModel> {
    const o = new Options('LanguageModel.load', options, ['device', 'batching', 'maxBatchSize', 'quantize', 'precision']);
    const device = o.oneOf('device', DEFAULTS.load.device, DEVICES);
    const runtime = runtimeOptions(o, DEFAULTS.load);
    const quantize = o.has('quantize') ? o.oneOf('quantize', 'int8', QUANTIZATIONS) : null;
    if (typeof path !== 'string' || path.length === 0) throw invalidArgument('LanguageModel.load: path must be a non-empty string');
    if (quantize && runtime.precision !== 'fp32') throw invalidArgument(`LanguageModel.load: an ${quantize} model computes in int8 and fp32 (precision '${runtime.precision}' was asked)`);
    if (quantize && device === 'cuda') throw invalidArgument(`LanguageModel.load: an ${quantize} model runs on the CPU (device 'cuda' was asked): the CUDA backend has no ${quantize} kernels`);
    const ck = await readCheckpoint(path);
    // An int8 file on an explicit CUDA device loads dequantized (the GPU has no int8 kernels).
    const quantization = quantize ?? (device === 'cuda' ? null : ck.quantization);
    const model = await LanguageModel.#build(ck.config, ck.tokenizer, device, false, runtime, quantization);
    model.#mode = ck.mode;
    await model.#fill((layout) => ck.weights(layout, quantization));
    return model;
  }
}
