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
import { CELL_NAMES, type Cell, type DeviceBuffer } from './backend/types';
import { CONFIG_LIMITS, checkTokenizer, readCheckpoint, summaryTable, writeCheckpoint, type ModelConfig } from './checkpoint';
import { IGNORE } from './data';
import { RnnlmError, invalidArgument } from './errors';
import { prepareScoring, score, type EvaluateOptions, type Evaluation } from './evaluate';
import type { EpochLog, FitOptions as FitOptionsOf } from './fit-options';
import * as inference from './generate';
import type { Beam, BeamSearchOptions, GenerateOptions, InferenceHost, Prediction, PredictOptions } from './generate';
import { Inputs, type DataMode, type TextInput } from './inputs';
import { countParameters, parameterSpecs } from './nn/layout';
import { Network } from './nn/network';
import { Options } from './options';
import { PAD_ID, SOS_ID, type Tokenizer } from './tokenizers';
import { fitModel, type TrainHost } from './train';
import { DEFAULTS } from './defaults';

export type { ModelConfig } from './checkpoint';
export type { DeviceOption } from './backend/index';
export type { Cell } from './backend/types';
export type { DataMode, TextInput, TokenIds } from './inputs';
export type { EvaluateOptions, Evaluation } from './evaluate';
export type { Beam, BeamSearchOptions, GenerateOptions, Prediction, PredictOptions } from './generate';
export type { EpochLog, LrSchedule } from './fit-options';
export type { OptimizerOptions } from './nn/optimizer';
/** Options of {@link LanguageModel.fit}; onEpochEnd is given the model being trained. */
export type FitOptions = FitOptionsOf<LanguageModel>;

/** Options of {@link LanguageModel.create}. */
export interface CreateOptions {
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
  /** 'cpu', 'cuda', or 'auto': CUDA if its backend loads and a GPU answers, else the CPU (deviceReason says why). Default 'auto'. */
  device?: DeviceOption;
  /** Seed of the weight initialisation and, by default, of training (integer in [0, 2^31 - 1]). Default 1. */
  seed?: number;
}

/** Options of {@link LanguageModel.load}. */
export interface LoadOptions {
  /** As CreateOptions.device: a checkpoint loads on either device. Default 'auto'. */
  device?: DeviceOption;
}

/** Options of {@link LanguageModel.summary}. */
export interface SummaryOptions {
  /** Print the table with console.log as well as returning it. Default true. */
  print?: boolean;
}

const CREATE_KEYS = ['tokenizer', 'vocabSize', 'cell', 'embeddingSize', 'hiddenSize', 'layers', 'dropout', 'tieWeights', 'device', 'seed'] as const;
/** Capacity of the ring of sampled token ids (chunks of up to half of it are read at once). */
const RING = 512;
/** The constructor's key: models are made by create and load only. */
const BUILD = Symbol('LanguageModel.build');

/** create's options validated into a config, allocating nothing (so any size can be summarised). */
export function parseCreateOptions(options: CreateOptions): { cfg: ModelConfig; tokenizer?: Tokenizer; device: DeviceOption } {
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
    seed: o.integer('seed', DEFAULTS.create.seed, CONFIG_LIMITS.seed),
  };
  if (cfg.tieWeights && cfg.embeddingSize !== cfg.hiddenSize) {
    throw invalidArgument(`LanguageModel.create: tieWeights needs embeddingSize == hiddenSize (got ${cfg.embeddingSize} and ${cfg.hiddenSize})`);
  }
  return { cfg, tokenizer, device: o.oneOf('device', DEFAULTS.create.device, DEVICES) };
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
  #busy?: string;
  #nestedBusy?: string;
  /** Resolves when the nested operation in progress (started in a fit callback) ends. */
  #nestedDone?: Promise<void>;
  #callbackOpen = false;
  #disposed = false;
  /** Token ids sampled on the device during generate (a ring of RING). */
  #sampled?: DeviceBuffer;

  static {
    networkOfModel = (model) => {
      if (typeof model !== 'object' || model === null || !(#net in model)) throw invalidArgument('networkOf: expected a LanguageModel');
      return model.#net;
    };
  }

  private constructor(key: symbol, net: Network, cfg: ModelConfig, tokenizer: Tokenizer | undefined, reason: string) {
    if (key !== BUILD) throw invalidArgument('new LanguageModel() is not supported: make a model with LanguageModel.create(options) or LanguageModel.load(path)');
    this.#inputs = new Inputs(tokenizer, cfg.vocabSize);
    this.#net = net;
    this.#cfg = cfg;
    this.tokenizer = tokenizer;
    this.deviceReason = reason;
  }

  /** A new model with freshly initialised weights (PyTorch word_language_model's initialisation). */
  static async create(options: CreateOptions = {}): Promise<LanguageModel> {
    const { cfg, tokenizer, device } = parseCreateOptions(options);
    return LanguageModel.#build(cfg, tokenizer, device, true);
  }

  static async #build(cfg: ModelConfig, tokenizer: Tokenizer | undefined, device: DeviceOption, init: boolean) {
    const { backend, reason } = selectBackend(device);
    // With token ids no id is padding (-1: no frozen embedding row); the loss skips only IGNORE,
    // the target of padded positions, never a token.
    const net = new Network(backend, { ...cfg, dtype: 'f32', paddingIdx: tokenizer ? PAD_ID : -1, ignoreIndex: IGNORE });
    try {
      if (init) net.initialize(cfg.seed);
      await net.stream.sync();
    } catch (e) {
      net.dispose();
      throw e;
    }
    return new LanguageModel(BUILD, net, cfg, tokenizer, reason);
  }

  /** The device the model lives on. */
  get device(): 'cpu' | 'cuda' {
    return this.#net.backend.device;
  }
  /** The model's configuration (create's options with their defaults; a copy). */
  get config(): Readonly<ModelConfig> {
    return { ...this.#cfg };
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

  /** A Keras-style table of layers, output shapes and parameter counts (printed unless print: false). */
  summary(options: SummaryOptions = {}): string {
    const print = new Options('summary', options, ['print']).boolean('print', DEFAULTS.summary.print);
    const { text } = summaryTable(this.#cfg);
    if (print) console.log(text);
    return text;
  }

  // ---- lifetime ---------------------------------------------------------------------------------

  /**
   * Runs fn exclusively: one operation at a time per model (ERR_BUSY otherwise). Inside a
   * fit callback (onEpochEnd) inference and save may run, one at a time, between epochs.
   */
  async #exclusive<T>(what: string, fn: () => Promise<T>, inCallback = true): Promise<T> {
    this.#checkAlive();
    const nested = this.#busy === 'fit' && this.#callbackOpen && inCallback;
    const holder = nested ? this.#nestedBusy : this.#busy;
    if (holder) throw new RnnlmError('ERR_BUSY', `${what}: the model is busy with ${holder}; await it first (one operation at a time per model)`);
    let done: (() => void) | undefined;
    if (nested) {
      this.#nestedBusy = what;
      this.#nestedDone = new Promise<void>((resolve) => (done = resolve));
    } else this.#busy = what;
    try {
      return await fn();
    } finally {
      if (nested) {
        this.#nestedBusy = this.#nestedDone = undefined;
        done!();
      } else this.#busy = undefined;
    }
  }

  /**
   * Runs a user callback of fit, during which inference calls are allowed. Training goes on only
   * once every operation the callback started has ended, awaited or not (they share the stream).
   */
  async #fitCallback(fn: () => void | Promise<void>): Promise<void> {
    this.#callbackOpen = true;
    try {
      await fn();
    } finally {
      // A loop: an un-awaited operation may start another when it ends (e.g. in its .then).
      while (this.#nestedDone) await this.#nestedDone;
      this.#callbackOpen = false;
    }
  }

  #checkAlive(): void {
    if (this.#disposed) throw new RnnlmError('ERR_DISPOSED', 'this model was disposed; load or create a new one');
  }

  /** Frees all native memory now; later calls throw ERR_DISPOSED. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#sampled?.free();
    this.#net.dispose();
  }

  // ---- training and evaluation ----------------------------------------------------------------

  /** Trains; resolves with one log per epoch. See FitOptions. */
  fit(train: TextInput, options: FitOptions = {}): Promise<EpochLog[]> {
    return this.#exclusive('fit', () => fitModel(this.#trainHost(), train, options), false);
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
      callback: (fn) => this.#fitCallback(fn),
    };
  }

  /** Mean loss (nats per token), perplexity and count of every target token of a text or of sentences. */
  evaluate(data: TextInput, options: EvaluateOptions = {}): Promise<Evaluation> {
    return this.#exclusive('evaluate', async () => score(this.#net, prepareScoring(this.#inputs, data, options, 'evaluate data')));
  }

  // ---- inference ---------------------------------------------------------------------------------

  /** Ids of a prompt, with <sos> in front for tokenizer models trained on sentences (ids are taken as given). */
  #promptIds(prompt: unknown, what: string): Int32Array {
    let ids = this.#inputs.prompt(prompt, what);
    if (this.#mode === 'sentences' && this.tokenizer) {
      const withSos = new Int32Array(ids.length + 1);
      withSos[0] = SOS_ID;
      withSos.set(ids, 1);
      ids = withSos;
    }
    if (ids.length === 0) {
      throw invalidArgument(`${what} is empty; a model ${this.tokenizer ? 'trained in stream mode' : 'of token ids'} needs at least one token of context`);
    }
    return ids;
  }

  /** What the inference functions (./generate) need of this model. */
  #inferenceHost(): InferenceHost {
    return {
      network: this.#net,
      tokenizer: this.tokenizer,
      promptIds: (prompt, what) => this.#promptIds(prompt, what),
      decode: (ids) => (this.tokenizer ? this.tokenizer.decode(ids) : ids.join(' ')),
      ring: () => (this.#sampled ??= this.#net.stream.alloc('i32', RING)),
    };
  }

  /** The topK most likely next tokens after a context, with their probabilities. */
  predictNext(context: string | ArrayLike<number>, options: PredictOptions = {}): Promise<Prediction[]> {
    return this.#exclusive('predictNext', () => inference.predictNext(this.#inferenceHost(), context, options));
  }

  /** Continues a prompt by sampling; resolves with the generated text (the prompt not included). */
  generate(options: GenerateOptions = {}): Promise<string> {
    return this.#exclusive('generate', () => inference.generate(this.#inferenceHost(), options));
  }

  /** The beamWidth most likely continuations of a prompt (log-probabilities summed over tokens). */
  beamSearch(prompt: string | ArrayLike<number>, options: BeamSearchOptions = {}): Promise<Beam[]> {
    return this.#exclusive('beamSearch', () => inference.beamSearch(this.#inferenceHost(), prompt, options));
  }

  // ---- checkpoints ---------------------------------------------------------------------------------

  /** Writes the model (weights with PyTorch names, config and tokenizer) to one .safetensors file, atomically. */
  save(path: string): Promise<void> {
    return this.#exclusive('save', () => this.#write(path));
  }

  async #write(path: string, extra: Record<string, string> = {}): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw invalidArgument('save: path must be a non-empty string');
    const params = (await this.#net.stream.read(this.#net.allParams)) as Float32Array;
    await writeCheckpoint(path, this.#net.layout, params, this.#cfg, this.tokenizer, this.#mode, extra);
  }

  /** Reads a checkpoint written by save (validated before use) onto a device. */
  static async load(path: string, options: LoadOptions = {}): Promise<LanguageModel> {
    const device = new Options('LanguageModel.load', options, ['device']).oneOf('device', DEFAULTS.load.device, DEVICES);
    if (typeof path !== 'string' || path.length === 0) throw invalidArgument('LanguageModel.load: path must be a non-empty string');
    const ck = await readCheckpoint(path);
    const model = await LanguageModel.#build(ck.config, ck.tokenizer, device, false);
    try {
      model.#mode = ck.mode;
      model.#net.stream.write(model.#net.allParams, ck.params(model.#net.layout));
      await model.#net.stream.sync();
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  }
}
