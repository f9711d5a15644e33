/**
 * LanguageModel: the public API (DESIGN.md, "Public API"). PyTorch word_language_model's
 * RNNModel — embedding -> dropout -> stacked LSTM / GRU / RNN -> dropout -> linear decoder —
 * on the CPU or CUDA backend, with tokenizers, training in stream or sentence mode,
 * evaluation, next-token prediction, sampling, beam search and safetensors checkpoints.
 */
import { selectBackend, type DeviceOption } from './backend/index';
import { type Cell, type DeviceBuffer } from './backend/types';
import { DEFAULTS } from './defaults';
import { CONFIG_LIMITS, checkTokenizer, readCheckpoint, summaryTable, writeCheckpoint, type ModelConfig } from './checkpoint';
import { IGNORE } from './data';
import { RnnlmError, invalidArgument } from './errors';
import { prepareScoring, score, type EvaluateOptions, type Evaluation } from './evaluate';
import * as inference from './generate';
import type { InferenceHost } from './generate';
import { Inputs, isIdArray, type DataMode, type TokenIds } from './inputs';
import { Network } from './nn/network';
import { Options } from './options';
import { EOS_ID, PAD_ID, SOS_ID, type Tokenizer } from './tokenizers';
import { fitModel, type EpochLog, type FitOptions } from './train';

export type { ModelConfig } from './checkpoint';
export type { DataMode, TokenIds } from './inputs';
export type { EvaluateOptions, Evaluation } from './evaluate';
/** Text for stream mode, or sentences; token ids are accepted wherever text is. */
export type TextInput = string | string[] | TokenIds | TokenIds[];

export interface CreateOptions {
  /** A fitted WordTokenizer or CharTokenizer (stored in checkpoints); or give vocabSize for token ids. */
  tokenizer?: Tokenizer;
  vocabSize?: number;
  cell?: Cell;
  embeddingSize?: number;
  hiddenSize?: number;
  layers?: number;
  /** Dropout on embeddings, between layers and on the output (training only). */
  dropout?: number;
  /** Share the embedding matrix with the decoder (needs embeddingSize == hiddenSize). */
  tieWeights?: boolean;
  device?: DeviceOption;
  /** Seed of the weight initialisation and, by default, of training. */
  seed?: number;
}

export interface Prediction {
  token: string;
  id: number;
  probability: number;
}

export interface GenerateOptions {
  prompt?: string | TokenIds;
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stop?: string | string[];
  /** End at a sampled `<eos>` (default true); false: go on through sentence ends for maxTokens. */
  stopAtEos?: boolean;
}

export interface Beam {
  text: string;
  ids: number[];
  logProb: number;
}

const CREATE_KEYS = ['tokenizer', 'vocabSize', 'cell', 'embeddingSize', 'hiddenSize', 'layers', 'dropout', 'tieWeights', 'device', 'seed'] as const;
const CELLS: readonly Cell[] = ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'];
/** Capacity of the ring of sampled token ids (chunks of up to half of it are read at once). */
const RING = 512;
/** The constructor's key: models are made by create and load only. */
const BUILD = Symbol('LanguageModel.build');

export class LanguageModel {
  /** The network on its backend; for advanced use (custom loops, tests). */
  readonly network: Network;
  readonly tokenizer?: Tokenizer;
  /** Why this device was chosen (device: 'auto' explains its choice). */
  readonly deviceReason: string;
  private readonly cfg: ModelConfig;
  /** Data mode of the last training; sentence models start from <sos> and stop at <eos>. */
  mode?: DataMode;
  /** @internal The data checks of this model (its tokenizer and vocabulary). */
  readonly inputs: Inputs;
  private busy?: string;
  private nestedBusy?: string;
  /** Resolves when the nested operation in progress (started in a fit callback) ends. */
  private nestedDone?: Promise<void>;
  private callbackOpen = false;
  private disposed = false;
  /** Token ids sampled on the device during generate (a ring of RING). */
  private sampled?: DeviceBuffer;

  private constructor(key: symbol, net: Network, cfg: ModelConfig, tokenizer: Tokenizer | undefined, reason: string) {
    if (key !== BUILD) throw invalidArgument('new LanguageModel() is not supported: make a model with LanguageModel.create(options) or LanguageModel.load(path)');
    this.inputs = new Inputs(tokenizer, cfg.vocabSize);
    this.network = net;
    this.cfg = cfg;
    this.tokenizer = tokenizer;
    this.deviceReason = reason;
  }

  static async create(options: CreateOptions = {}): Promise<LanguageModel> {
    const { cfg, tokenizer, device } = LanguageModel.configOf(options);
    return LanguageModel.build(cfg, tokenizer, device, true);
  }

  /** @internal create's options validated into a config, allocating nothing (the CLI's summary of any size). */
  static configOf(options: CreateOptions): { cfg: ModelConfig; tokenizer?: Tokenizer; device: DeviceOption } {
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
      cell: o.oneOf('cell', DEFAULTS.create.cell, CELLS),
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
    return { cfg, tokenizer, device: o.oneOf('device', DEFAULTS.create.device, ['auto', 'cpu', 'cuda'] as const) };
  }

  private static async build(cfg: ModelConfig, tokenizer: Tokenizer | undefined, device: DeviceOption, init: boolean) {
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

  get device(): 'cpu' | 'cuda' {
    return this.network.backend.device;
  }
  get config(): Readonly<ModelConfig> {
    return { ...this.cfg };
  }
  get parameterCount(): number {
    return this.network.parameterCount;
  }

  /** A Keras-style table of layers, output shapes and parameter counts (printed unless print: false). */
  summary(options: { print?: boolean } = {}): string {
    const print = new Options('summary', options, ['print']).boolean('print', DEFAULTS.summary.print);
    const { text: out, total } = summaryTable(this.cfg);
    if (total !== this.parameterCount) throw new RnnlmError('ERR_NATIVE', `summary counts ${total} parameters but the model has ${this.parameterCount}`);
    if (print) console.log(out);
    return out;
  }

  // ---- data -------------------------------------------------------------------------------------

  private checkIds(data: ArrayLike<number>, what: string): Int32Array {
    return this.inputs.checkIds(data, what);
  }

  private requireTokenizer(what: string): Tokenizer {
    return this.inputs.requireTokenizer(what);
  }

  private decode(ids: number[]): string {
    return this.tokenizer ? this.tokenizer.decode(ids) : ids.join(' ');
  }

  /**
   * Runs fn exclusively: one operation at a time per model (ERR_BUSY otherwise). Inside a
   * fit callback (onEpochEnd) inference and save may run, one at a time, between epochs.
   */
  private async exclusive<T>(what: string, fn: () => Promise<T>, inCallback = true): Promise<T> {
    this.checkAlive();
    const nested = this.busy === 'fit' && this.callbackOpen && inCallback;
    const holder = nested ? this.nestedBusy : this.busy;
    if (holder) throw new RnnlmError('ERR_BUSY', `${what}: the model is busy with ${holder}; await it first (one operation at a time per model)`);
    let done: (() => void) | undefined;
    if (nested) {
      this.nestedBusy = what;
      this.nestedDone = new Promise<void>((resolve) => (done = resolve));
    } else this.busy = what;
    try {
      return await fn();
    } finally {
      if (nested) {
        this.nestedBusy = this.nestedDone = undefined;
        done!();
      } else this.busy = undefined;
    }
  }

  /**
   * Runs a user callback of fit, during which inference calls are allowed. Training goes on only
   * once every operation the callback started has ended, awaited or not (they share the stream).
   */
  async fitCallback(fn: () => void | Promise<void>): Promise<void> {
    this.callbackOpen = true;
    try {
      await fn();
    } finally {
      // A loop: an un-awaited operation may start another when it ends (e.g. in its .then).
      while (this.nestedDone) await this.nestedDone;
      this.callbackOpen = false;
    }
  }

  private checkAlive(): void {
    if (this.disposed) throw new RnnlmError('ERR_DISPOSED', 'this model was disposed; load or create a new one');
  }

  // ---- training and evaluation ----------------------------------------------------------------

  /** Trains; resolves with one log per epoch. See FitOptions. */
  fit(train: TextInput, options: FitOptions = {}): Promise<EpochLog[]> {
    return this.exclusive('fit', () => fitModel(this, train, options), false);
  }

  /** Mean loss (nats per token), perplexity and count of every target token of a text or of sentences. */
  evaluate(data: TextInput, options: EvaluateOptions = {}): Promise<Evaluation> {
    return this.exclusive('evaluate', async () => score(this.network, prepareScoring(this.inputs, data, options, 'evaluate data')));
  }

  // ---- inference ---------------------------------------------------------------------------------

  /** Ids of a prompt, with <sos> in front for tokenizer models trained on sentences (ids are taken as given). */
  private promptIds(prompt: unknown, what: string, allowEmpty: boolean): Int32Array {
    let ids: Int32Array;
    if (prompt === undefined || prompt === '') ids = new Int32Array(0);
    else if (typeof prompt === 'string') ids = this.requireTokenizer(what).encode(prompt);
    else if (isIdArray(prompt)) ids = this.checkIds(prompt, what);
    else throw invalidArgument(`${what} must be a string or an array of token ids`);
    if (this.mode === 'sentences' && this.tokenizer) {
      const withSos = new Int32Array(ids.length + 1);
      withSos[0] = SOS_ID;
      withSos.set(ids, 1);
      ids = withSos;
    }
    if (ids.length === 0 && !allowEmpty) {
      throw invalidArgument(`${what} is empty; a model ${this.tokenizer ? 'trained in stream mode' : 'of token ids'} needs at least one token of context`);
    }
    return ids;
  }

  /** What the inference functions (./generate) need of this model. */
  private host(): InferenceHost {
    return {
      network: this.network,
      tokenizer: this.tokenizer,
      promptIds: (prompt, what) => this.promptIds(prompt, what, false),
      decode: (ids) => this.decode(ids),
      ring: () => (this.sampled ??= this.network.stream.alloc('i32', RING)),
    };
  }

  /** The topK most likely next tokens after a context, with their probabilities. */
  predictNext(context: string | ArrayLike<number>, options: { topK?: number } = {}): Promise<Prediction[]> {
    return this.exclusive('predictNext', () => inference.predictNext(this.host(), context, options));
  }

  /** Continues a prompt by sampling; resolves with the generated text (the prompt not included). */
  generate(options: GenerateOptions = {}): Promise<string> {
    return this.exclusive('generate', () => inference.generate(this.host(), options));
  }

  /** The beamWidth most likely continuations of a prompt (log-probabilities summed over tokens). */
  beamSearch(prompt: string | ArrayLike<number>, options: { beamWidth?: number; maxTokens?: number } = {}): Promise<Beam[]> {
    return this.exclusive('beamSearch', () => inference.beamSearch(this.host(), prompt, options));
  }

  // ---- checkpoints ---------------------------------------------------------------------------------

  /** Writes the model (weights with PyTorch names, config and tokenizer) to one .safetensors file, atomically. */
  save(path: string): Promise<void> {
    return this.exclusive('save', () => this.saveNow(path));
  }

  async saveNow(path: string, extra: Record<string, string> = {}): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw invalidArgument('save: path must be a non-empty string');
    const params = (await this.network.stream.read(this.network.allParams)) as Float32Array;
    await writeCheckpoint(path, this.network.layout, params, this.cfg, this.tokenizer, this.mode, extra);
  }

  /** Reads a checkpoint written by save (validated before use) onto a device. */
  static async load(path: string, options: { device?: DeviceOption } = {}): Promise<LanguageModel> {
    const device = new Options('LanguageModel.load', options, ['device']).oneOf('device', DEFAULTS.load.device, ['auto', 'cpu', 'cuda'] as const);
    if (typeof path !== 'string' || path.length === 0) throw invalidArgument('LanguageModel.load: path must be a non-empty string');
    const ck = await readCheckpoint(path);
    const model = await LanguageModel.build(ck.config, ck.tokenizer, device, false);
    try {
      model.mode = ck.mode;
      model.network.stream.write(model.network.allParams, ck.params(model.network.layout));
      await model.network.stream.sync();
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  }

  /** Frees all native memory now; later calls throw ERR_DISPOSED. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.sampled?.free();
    this.network.dispose();
  }
}
