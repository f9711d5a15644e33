/**
 * LanguageModel: the public API (DESIGN.md, "Public API"). PyTorch word_language_model's
 * RNNModel — embedding -> dropout -> stacked LSTM / GRU / RNN -> dropout -> linear decoder —
 * on the CPU or CUDA backend, with tokenizers, training in stream or sentence mode,
 * evaluation, next-token prediction, sampling, beam search and safetensors checkpoints.
 */
import { selectBackend, type DeviceOption } from './backend/index';
import { numel, type Cell, type DeviceBuffer } from './backend/types';
import { CONFIG_LIMITS, readCheckpoint, stateDictShapes, writeCheckpoint, type ModelConfig } from './checkpoint';
import { SentenceBatches, StreamBatches } from './data';
import { RnnlmError, invalidArgument } from './errors';
import * as inference from './generate';
import type { InferenceHost } from './generate';
import { Network } from './nn/network';
import { Options } from './options';
import { EOS_ID, PAD_ID, SOS_ID, type Tokenizer } from './tokenizers';
import { fitModel, type EpochLog, type FitOptions } from './train';

export type { ModelConfig } from './checkpoint';
export type DataMode = 'stream' | 'sentences';
/** Text for stream mode, or sentences; token ids are accepted wherever text is. */
export type TextInput = string | string[] | ArrayLike<number> | ArrayLike<number>[];

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
  prompt?: string | ArrayLike<number>;
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

export class LanguageModel {
  /** The network on its backend; for advanced use (custom loops, tests). */
  readonly network: Network;
  readonly tokenizer?: Tokenizer;
  /** Why this device was chosen (device: 'auto' explains its choice). */
  readonly deviceReason: string;
  private readonly cfg: ModelConfig;
  /** Data mode of the last training; sentence models start from <sos> and stop at <eos>. */
  mode?: DataMode;
  private busy?: string;
  private nestedBusy?: string;
  private callbackOpen = false;
  private disposed = false;
  /** Token ids sampled on the device during generate (a ring of RING). */
  private sampled?: DeviceBuffer;

  private constructor(net: Network, cfg: ModelConfig, tokenizer: Tokenizer | undefined, reason: string) {
    this.network = net;
    this.cfg = cfg;
    this.tokenizer = tokenizer;
    this.deviceReason = reason;
  }

  static async create(options: CreateOptions = {}): Promise<LanguageModel> {
    const o = new Options('LanguageModel.create', options, CREATE_KEYS);
    const tokenizer = o.raw('tokenizer') as Tokenizer | undefined;
    if (tokenizer !== undefined && !isTokenizer(tokenizer)) {
      throw invalidArgument('LanguageModel.create: tokenizer must be a WordTokenizer or CharTokenizer (from WordTokenizer.fit / CharTokenizer.fit)');
    }
    let vocabSize = o.optionalInteger('vocabSize', CONFIG_LIMITS.vocabSize);
    if (tokenizer) {
      if (vocabSize !== undefined && vocabSize !== tokenizer.vocabSize) {
        throw invalidArgument(`LanguageModel.create: vocabSize ${vocabSize} disagrees with the tokenizer's ${tokenizer.vocabSize}; leave vocabSize out`);
      }
      vocabSize = tokenizer.vocabSize;
    }
    if (vocabSize === undefined) throw invalidArgument('LanguageModel.create: give a tokenizer or a vocabSize');
    const cfg: ModelConfig = {
      cell: o.oneOf('cell', 'lstm', CELLS),
      vocabSize,
      embeddingSize: o.integer('embeddingSize', 200, CONFIG_LIMITS.embeddingSize),
      hiddenSize: o.integer('hiddenSize', 200, CONFIG_LIMITS.hiddenSize),
      layers: o.integer('layers', 2, CONFIG_LIMITS.layers),
      dropout: o.number('dropout', 0, CONFIG_LIMITS.dropout),
      tieWeights: o.boolean('tieWeights', false),
      seed: o.integer('seed', 1, CONFIG_LIMITS.seed),
    };
    if (cfg.tieWeights && cfg.embeddingSize !== cfg.hiddenSize) {
      throw invalidArgument(`LanguageModel.create: tieWeights needs embeddingSize == hiddenSize (got ${cfg.embeddingSize} and ${cfg.hiddenSize})`);
    }
    return LanguageModel.build(cfg, tokenizer, o.oneOf('device', 'auto', ['auto', 'cpu', 'cuda'] as const), true);
  }

  private static async build(cfg: ModelConfig, tokenizer: Tokenizer | undefined, device: DeviceOption, init: boolean) {
    const { backend, reason } = selectBackend(device);
    const net = new Network(backend, { ...cfg, dtype: 'f32', paddingIdx: PAD_ID });
    if (init) net.initialize(cfg.seed);
    await net.stream.sync();
    return new LanguageModel(net, cfg, tokenizer, reason);
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
    const print = new Options('summary', options, ['print']).boolean('print', true);
    const { vocabSize: V, embeddingSize: E, hiddenSize: H, layers: L, cell, tieWeights } = this.cfg;
    const kind = { lstm: 'LSTM', gru: 'GRU', rnn_tanh: 'RNN (tanh)', rnn_relu: 'RNN (relu)' }[cell];
    // Counted from the state_dict shapes a checkpoint holds (a tied decoder.weight is the encoder's).
    const shapes = [...stateDictShapes(this.cfg)];
    const count = (name: RegExp) => shapes.reduce((a, [n, s]) => (name.test(n) && !(tieWeights && n === 'decoder.weight') ? a + numel(s) : a), 0);
    const rows: [string, string, number][] = [['encoder (Embedding)', `(batch, seq, ${E})`, count(/^encoder\./)]];
    for (let l = 0; l < L; l++) {
      rows.push([L === 1 ? `rnn (${kind})` : `rnn_l${l} (${kind})`, `(batch, seq, ${H})`, count(new RegExp(`^rnn\\..*_l${l}$`))]);
    }
    rows.push([`decoder (Linear${tieWeights ? ', tied' : ''})`, `(batch, seq, ${V})`, count(/^decoder\./)]);
    const total = rows.reduce((a, r) => a + r[2], 0);
    const fmt = (n: number) => n.toLocaleString('en-US');
    const w = [Math.max(20, ...rows.map((r) => r[0].length)) + 2, Math.max(18, ...rows.map((r) => r[1].length)) + 2, 14];
    const line = (c: string) => c.repeat(w[0] + w[1] + w[2]);
    const row = (a: string, b: string, c: string) => a.padEnd(w[0]) + b.padEnd(w[1]) + c.padStart(w[2]);
    const out = [
      line('_'),
      row('Layer (type)', 'Output Shape', 'Param #'),
      line('='),
      ...rows.flatMap((r, i) => [row(r[0], r[1], fmt(r[2])), i < rows.length - 1 ? line('_') : line('=')]),
      `Total params: ${fmt(total)}`,
      `Trainable params: ${fmt(total)}`,
      `Non-trainable params: 0`,
      line('_'),
    ].join('\n');
    if (total !== this.parameterCount) throw new RnnlmError('ERR_NATIVE', `summary counts ${total} parameters but the model has ${this.parameterCount}`);
    if (print) console.log(out);
    return out;
  }

  // ---- data -------------------------------------------------------------------------------------

  /** Token ids of a text (stream mode) or of token ids given directly. */
  encodeStream(data: unknown, what: string): Int32Array {
    let ids: Int32Array;
    if (typeof data === 'string') {
      ids = this.requireTokenizer(what).encode(data);
    } else if (isIdArray(data)) {
      ids = this.checkIds(data, what);
    } else {
      throw invalidArgument(`${what} must be a string or an array of token ids in stream mode (for sentences, pass an array of strings and mode: 'sentences')`);
    }
    if (ids.length === 0) throw invalidArgument(`${what} is empty: it has no tokens`);
    return ids;
  }

  /** Sentences (strings or id arrays) as <sos> ... <eos> id sequences. */
  encodeSentences(data: unknown, what: string): Int32Array[] {
    if (!Array.isArray(data) || data.length === 0) {
      throw invalidArgument(`${what} must be a non-empty array of sentences (strings or token id arrays) in sentences mode`);
    }
    return data.map((s, i) => {
      const ids = typeof s === 'string' ? this.requireTokenizer(what).encode(s) : isIdArray(s) ? this.checkIds(s, `${what}[${i}]`) : null;
      if (!ids) throw invalidArgument(`${what}[${i}] must be a string or an array of token ids`);
      const out = new Int32Array(ids.length + 2);
      out[0] = SOS_ID;
      out.set(ids, 1);
      out[ids.length + 1] = EOS_ID;
      return out;
    });
  }

  /** stream for a string or id array, sentences for an array of strings / id arrays. */
  inferMode(data: unknown): DataMode {
    return Array.isArray(data) && data.length > 0 && (typeof data[0] === 'string' || isIdArray(data[0])) ? 'sentences' : 'stream';
  }

  private checkIds(data: ArrayLike<number>, what: string): Int32Array {
    const V = this.cfg.vocabSize;
    const ids = new Int32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (!Number.isInteger(v) || v < 0 || v >= V) {
        throw new RnnlmError('ERR_VOCAB', `${what}: token id ${String(v)} at index ${i} is not in [0, ${V}) (the vocabulary size)`);
      }
      ids[i] = v;
    }
    return ids;
  }

  private requireTokenizer(what: string): Tokenizer {
    if (!this.tokenizer) throw invalidArgument(`${what}: text needs a tokenizer; create the model with one, or pass token ids`);
    return this.tokenizer;
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
    if (nested) this.nestedBusy = what;
    else this.busy = what;
    try {
      return await fn();
    } finally {
      if (nested) this.nestedBusy = undefined;
      else this.busy = undefined;
    }
  }

  /** Runs a user callback of fit, during which inference calls are allowed. */
  async fitCallback(fn: () => void | Promise<void>): Promise<void> {
    this.callbackOpen = true;
    try {
      await fn();
    } finally {
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

  /** Mean loss (nats per token), perplexity and token count of a text or of sentences. */
  evaluate(data: TextInput, options: { mode?: DataMode; batchSize?: number; seqLength?: number } = {}) {
    return this.exclusive('evaluate', () => this.evaluateNow(data, options));
  }

  /** evaluate without the exclusivity guard, for use inside fit. */
  async evaluateNow(data: unknown, options: unknown): Promise<{ loss: number; perplexity: number; tokens: number }> {
    const o = new Options('evaluate', options, ['mode', 'batchSize', 'seqLength']);
    const mode = o.oneOf('mode', this.inferMode(data), ['stream', 'sentences'] as const);
    const B = o.integer('batchSize', mode === 'stream' ? 10 : 32, { min: 1, max: 1 << 16 });
    const T = o.integer('seqLength', 35, { min: 1, max: 1 << 16 });
    const net = this.network;
    let nll = 0, count = 0;
    if (mode === 'stream') {
      const ids = this.encodeStream(data, 'evaluate data');
      const batches = new StreamBatches(ids, Math.min(B, Math.max(1, Math.floor(ids.length / 2))), T, 'evaluate data');
      net.resetState(batches.batchSize);
      for (let k = 0; k < batches.count; k++) {
        net.forward(batches.batch(k), { training: false });
        net.carryState();
        const r = await net.readLoss();
        nll += r.loss * r.count;
        count += r.count;
      }
    } else {
      const sb = new SentenceBatches(this.encodeSentences(data, 'evaluate data'), B, { shuffle: false, bucketing: true, seed: 0 });
      const order = sb.order(0);
      for (let k = 0; k < sb.count; k++) {
        const batch = sb.batch(order, k);
        net.resetState(batch.batchSize);
        net.forward(batch, { training: false });
        const r = await net.readLoss();
        nll += r.loss * r.count;
        count += r.count;
      }
    }
    const loss = nll / count;
    return { loss, perplexity: Math.exp(loss), tokens: count };
  }

  // ---- inference ---------------------------------------------------------------------------------

  /** Ids of a prompt, with <sos> in front for models trained on sentences. */
  private promptIds(prompt: unknown, what: string, allowEmpty: boolean): Int32Array {
    let ids: Int32Array;
    if (prompt === undefined || prompt === '') ids = new Int32Array(0);
    else if (typeof prompt === 'string') ids = this.requireTokenizer(what).encode(prompt);
    else if (isIdArray(prompt)) ids = this.checkIds(prompt, what);
    else throw invalidArgument(`${what} must be a string or an array of token ids`);
    if (this.mode === 'sentences') {
      const withSos = new Int32Array(ids.length + 1);
      withSos[0] = SOS_ID;
      withSos.set(ids, 1);
      ids = withSos;
    }
    if (ids.length === 0 && !allowEmpty) {
      throw invalidArgument(`${what} is empty; a model trained in stream mode needs at least one token of context`);
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
    const device = new Options('LanguageModel.load', options, ['device']).oneOf('device', 'auto', ['auto', 'cpu', 'cuda'] as const);
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

function isIdArray(v: unknown): v is ArrayLike<number> {
  return v instanceof Int32Array || v instanceof Uint32Array || v instanceof Uint16Array || (Array.isArray(v) && (v.length === 0 || typeof v[0] === 'number'));
}

function isTokenizer(t: unknown): t is Tokenizer {
  const k = t as Tokenizer;
  return typeof k === 'object' && k !== null && typeof k.encode === 'function' && typeof k.decode === 'function' && typeof k.vocabSize === 'number' && typeof k.toJSON === 'function';
}
