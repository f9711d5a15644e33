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
import type { Precision } from './backend/types';
import { readCheckpoint, summaryTable, writeCheckpoint, type CheckpointDType, type ModelConfig } from './checkpoint';
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
import { countParameters, parameterSpecs } from './nn/layout';
import { Network } from './nn/network';
import { QUANTIZATIONS, quantizeWeights, type HostWeights, type Quantization } from './nn/quantize';
import { Options, signalIn } from './options';
import { Access } from './runtime/access';
import { Scheduler, type RuntimeStats } from './runtime/scheduler';
import { PAD_ID, type Tokenizer } from './tokenizers';
import { fitModel, type TrainHost } from './train';
import { DEFAULTS } from './defaults';
import { SAVE_DTYPES, parseCreateOptions, runtimeOptions, type CreateOptions, type LoadOptions, type RuntimeOptions, type SaveOptions, type SummaryOptions } from './model-options';

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

export { parseCreateOptions, type CreateOptions, type LoadOptions, type SaveOptions, type SummaryOptions } from './model-options';

/** The constructor's key: models are made by create and load only. */
const BUILD = Symbol('LanguageModel.build');

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
