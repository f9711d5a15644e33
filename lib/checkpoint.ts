/**
 * Checkpoint files (docs/ARCHITECTURE.md, "Checkpoints"): one .safetensors file with the weights under
 * PyTorch word_language_model's state_dict names (fp32, canonical layout whatever the device)
 * and, in __metadata__, the model config and the tokenizer as JSON strings; training state
 * in a sidecar <name>.train.safetensors. Everything read is validated before use.
 */
import { RnnlmError, invalidArgument } from './errors';
import { CELLS, isCell, type Cell } from './backend/types';
import { fromHalf, halfFinite, toHalf } from './io/half';
import { readSafetensorsFile, writeSafetensorsFile, type SafeTensor } from './io/safetensors';
import { parseSoftmax, type SoftmaxConfig } from './nn/decoder';
import { countParameters, parameterSpecs, type ParamEntry, type ParamSpec } from './nn/layout';
import { REGULARIZATION_RATES, type Regularization } from './nn/regularization';
import { floatOf, isQuantized, quantizable, quantizeRows, type HostWeights, type Quantization, type QuantizedTensor } from './nn/quantize';
import { tokenizerFromJSON, type Tokenizer } from './tokenizers';

/**
 * The element type of a checkpoint's weights: float32, half precision (half the size), or int8
 * (a quarter: every matrix as int8 with its rows' float32 scales in `<name>_scale` [rows, 1],
 * so that `q.float() * scale` is the matrix in PyTorch; biases float32; nn/quantize.ts).
 */
export type CheckpointDType = 'F32' | 'F16' | 'BF16' | 'I8';

/** A model's configuration; its Regularization fields are present only when set. */
export interface ModelConfig extends Regularization {
  cell: Cell;
  vocabSize: number;
  embeddingSize: number;
  hiddenSize: number;
  layers: number;
  dropout: number;
  tieWeights: boolean;
  /** The output layer (nn/decoder.ts); checkpoints without it have the full softmax. */
  softmax: SoftmaxConfig;
  seed: number;
}


/** The one table of config ranges: LanguageModel.create validates options, and parseConfig checkpoints, by it. */
export const CONFIG_LIMITS = {
  vocabSize: { min: 2, max: 1 << 24 },
  embeddingSize: { min: 1, max: 1 << 16 },
  hiddenSize: { min: 1, max: 1 << 16 },
  layers: { min: 1, max: 16 },
  dropout: { min: 0, max: 0.95 },
  seed: { min: 0, max: 2 ** 31 - 1 },
} as const;

/**
 * A Keras-style table of a config's layers, output shapes and parameter counts, counted from its
 * state_dict (nn/layout.ts; a tied decoder.weight is the encoder's): nothing is allocated, so
 * any valid config can be summarised.
 */
export function summaryTable(c: ModelConfig): { text: string; total: number } {
  const { vocabSize: V, embeddingSize: E, hiddenSize: H, layers: L, cell, tieWeights } = c;
  const kind = CELLS[cell].title;
  const specs = parameterSpecs(c);
  const count = (keep: (p: ParamSpec) => boolean) => countParameters(specs.filter(keep));
  const rows: [string, string, number][] = [['encoder (Embedding)', `(batch, seq, ${E})`, count((p) => p.name.startsWith('encoder.'))]];
  for (let l = 0; l < L; l++) {
    rows.push([L === 1 ? `rnn (${kind})` : `rnn_l${l} (${kind})`, `(batch, seq, ${H})`, count((p) => p.rnn?.layer === l)]);
  }
  const sm = c.softmax;
  const decoder = sm.type === 'adaptive' ? `AdaptiveLogSoftmax, cutoffs ${sm.cutoffs.join(', ')}` : `Linear${tieWeights ? ', tied' : ''}`;
  rows.push([`decoder (${decoder})`, `(batch, seq, ${V})`, count((p) => p.name.startsWith('decoder.'))]);
  const total = countParameters(specs);
  const fmt = (n: number) => n.toLocaleString('en-US');
  const w = [Math.max(20, ...rows.map((r) => r[0].length)) + 2, Math.max(18, ...rows.map((r) => r[1].length)) + 2, 14];
  const line = (ch: string) => ch.repeat(w[0] + w[1] + w[2]);
  const row = (a: string, b: string, d: string) => a.padEnd(w[0]) + b.padEnd(w[1]) + d.padStart(w[2]);
  const text = [
    line('_'),
    row('Layer (type)', 'Output Shape', 'Param #'),
    line('='),
    ...rows.flatMap((r, i) => [row(r[0], r[1], fmt(r[2])), i < rows.length - 1 ? line('_') : line('=')]),
    `Total params: ${fmt(total)}`,
    `Trainable params: ${fmt(total)}`,
    `Non-trainable params: 0`,
    line('_'),
  ].join('\n');
  return { text, total };
}

const FORMAT = 'rnnlm';
const VERSION = '1';

function bad(path: string, what: string): RnnlmError {
  return new RnnlmError('ERR_CHECKPOINT', `${path}: ${what}`);
}

/** The suffix of an int8 matrix's scales in a checkpoint: `encoder.weight` and `encoder.weight_scale`. */
export const SCALE_SUFFIX = '_scale';

/** weights: every tensor of the layout by name; int8 ones (quantized) for dtype 'I8', and only then. */
export async function writeCheckpoint(
  path: string,
  layout: readonly ParamEntry[],
  weights: HostWeights,
  config: ModelConfig,
  tokenizer: Tokenizer | undefined,
  mode: string | undefined,
  extra: Record<string, string> = {},
  dtype: CheckpointDType = 'F32',
): Promise<void> {
  const tensors = new Map<string, SafeTensor>();
  for (const e of layout) {
    const w = weights.get(e.name);
    if (!w) throw invalidArgument(`save: no tensor '${e.name}'`);
    if (dtype === 'I8' && isQuantized(w)) {
      tensors.set(e.name, { dtype, shape: [...e.shape], data: w.q });
      tensors.set(e.name + SCALE_SUFFIX, { dtype: 'F32', shape: [e.shape[0], 1], data: w.scale });
      continue;
    }
    // An int8 file needs every matrix int8; the other dtypes take an int8 model's matrices dequantized.
    if (dtype === 'I8' && quantizable(e.shape)) throw invalidArgument(`save: '${e.name}' must be int8 in an I8 checkpoint`);
    const values = floatOf(w, e.shape);
    if (dtype === 'F32' || dtype === 'I8') {
      tensors.set(e.name, { dtype: 'F32', shape: [...e.shape], data: values });
      continue;
    }
    const data = toHalf(dtype, values);
    const i = data.findIndex((h) => !halfFinite(dtype, h));
    if (i >= 0) throw invalidArgument(`save: ${e.name} holds ${values[i]} at element ${i}, beyond float16's largest finite value (65504); save with dtype 'bf16' (float32's range) or 'f32'`);
    tensors.set(e.name, { dtype, shape: [...e.shape], data });
  }
  const metadata: Record<string, string> = { format: FORMAT, version: VERSION, config: JSON.stringify(config) };
  // Checked before any file is touched: a file that would never load is not written.
  if (tokenizer) metadata.tokenizer = tokenizerMetadata('save', tokenizer, config.vocabSize);
  if (mode) metadata.mode = mode;
  await writeSafetensorsFile(path, tensors, { ...extra, ...metadata });
}

/** The tokenizer of a checkpoint's metadata, validated: the loader's check, which saves run first too (no path). */
function readTokenizer(path: string | undefined, text: string, vocabSize: number): Tokenizer {
  const fail = (what: string) => (path === undefined ? new RnnlmError('ERR_CHECKPOINT', what) : bad(path, what));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw fail('metadata tokenizer is not valid JSON');
  }
  const tokenizer = tokenizerFromJSON(json);
  if (tokenizer.vocabSize !== vocabSize) throw fail(`the tokenizer has ${tokenizer.vocabSize} tokens but config.vocabSize is ${vocabSize}`);
  return tokenizer;
}

/** The tokenizer's metadata for a checkpoint of `vocabSize` tokens; ERR_INVALID_ARGUMENT unless the loader reads it back. */
function tokenizerMetadata(where: string, tokenizer: Tokenizer, vocabSize: number): string {
  try {
    const text: unknown = JSON.stringify(tokenizer.toJSON());
    if (typeof text !== 'string') throw new Error('its toJSON() gave nothing JSON can hold');
    readTokenizer(undefined, text, vocabSize);
    return text;
  } catch (e) {
    throw invalidArgument(`${where}: the tokenizer would not load back from a checkpoint: ${(e as Error).message}`);
  }
}

/**
 * Checks a tokenizer given to LanguageModel.create: the duck type of WordTokenizer and
 * CharTokenizer, a vocabSize in CONFIG_LIMITS, and a JSON form that the loader accepts, so that
 * the model's checkpoints load back.
 */
export function checkTokenizer(where: string, t: unknown): Tokenizer {
  const k = t as Tokenizer;
  if (typeof k !== 'object' || k === null || typeof k.encode !== 'function' || typeof k.decode !== 'function' || typeof k.vocabSize !== 'number' || typeof k.toJSON !== 'function') {
    throw invalidArgument(`${where}: tokenizer must be a WordTokenizer or CharTokenizer (from WordTokenizer.fit / CharTokenizer.fit)`);
  }
  const { min, max } = CONFIG_LIMITS.vocabSize;
  if (!Number.isSafeInteger(k.vocabSize) || k.vocabSize < min || k.vocabSize > max) {
    throw invalidArgument(`${where}: tokenizer.vocabSize must be an integer in [${min}, ${max}] (got ${k.vocabSize})`);
  }
  tokenizerMetadata(where, k, k.vocabSize);
  return k;
}

/** Parses and validates a model config from untrusted JSON. */
export function parseConfig(path: string, text: string | undefined): ModelConfig {
  if (text === undefined) throw bad(path, 'metadata has no config; is this an rnnlm checkpoint?');
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(text);
  } catch {
    throw bad(path, 'metadata config is not valid JSON');
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw bad(path, 'metadata config must be a JSON object');
  const int = (k: keyof typeof CONFIG_LIMITS) => {
    const { min, max } = CONFIG_LIMITS[k];
    const v = c[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw bad(path, `config.${k} must be an integer in [${min}, ${max}] (got ${JSON.stringify(v)})`);
    return v;
  };
  const cell = c.cell;
  if (!isCell(cell)) throw bad(path, `config.cell ${JSON.stringify(cell)} is not a known cell`);
  const { min: dMin, max: dMax } = CONFIG_LIMITS.dropout;
  if (typeof c.dropout !== 'number' || !(c.dropout >= dMin && c.dropout <= dMax)) throw bad(path, `config.dropout must be a number in [${dMin}, ${dMax}]`);
  if (typeof c.tieWeights !== 'boolean') throw bad(path, 'config.tieWeights must be a boolean');
  const known = ['cell', 'vocabSize', 'embeddingSize', 'hiddenSize', 'layers', 'dropout', 'tieWeights', 'softmax', 'seed', ...REGULARIZATION_RATES, 'lockedDropout'];
  for (const k of Object.keys(c)) if (!known.includes(k)) throw bad(path, `config has an unknown field '${k}'`);
  const config: ModelConfig = {
    cell,
    vocabSize: int('vocabSize'),
    embeddingSize: int('embeddingSize'),
    hiddenSize: int('hiddenSize'),
    layers: int('layers'),
    dropout: c.dropout,
    tieWeights: c.tieWeights,
    softmax: { type: 'full' },
    seed: int('seed'),
  };
  for (const k of REGULARIZATION_RATES) {
    if (c[k] === undefined) continue;
    if (typeof c[k] !== 'number' || !(c[k] >= dMin && c[k] <= dMax)) throw bad(path, `config.${k} must be a number in [${dMin}, ${dMax}]`);
    config[k] = c[k];
  }
  if (c.lockedDropout !== undefined) {
    if (typeof c.lockedDropout !== 'boolean') throw bad(path, 'config.lockedDropout must be a boolean');
    config.lockedDropout = c.lockedDropout;
  }
  if (config.tieWeights && config.embeddingSize !== config.hiddenSize) throw bad(path, 'config.tieWeights needs embeddingSize == hiddenSize');
  config.softmax = parseSoftmax(c.softmax, config, (m) => bad(path, `config.${m}`));
  return config;
}

export interface LoadedCheckpoint {
  config: ModelConfig;
  metadata: Record<string, string>;
  tokenizer?: Tokenizer;
  mode?: 'stream' | 'sentences';
  /** 'int8' for a file of int8 matrices (nn/quantize.ts), else null. */
  quantization: Quantization | null;
  /** The flat float32 parameter buffer for a network's layout (int8 matrices dequantized). */
  params(layout: readonly ParamEntry[]): Float32Array;
  /** Every tensor by name, validated: int8 matrices for an int8 network (`quantize`; a float file's quantized), float ones otherwise. */
  weights(layout: readonly ParamEntry[], quantize: Quantization | null): HostWeights;
}

export async function readCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const { metadata, tensors } = await readSafetensorsFile(path);
  if (metadata.format !== FORMAT) throw bad(path, `metadata.format is ${JSON.stringify(metadata.format)}, expected '${FORMAT}'`);
  if (metadata.version !== VERSION) throw bad(path, `checkpoint version ${JSON.stringify(metadata.version)} is not supported (expected ${VERSION})`);
  const config = parseConfig(path, metadata.config);
  const tokenizer = metadata.tokenizer === undefined ? undefined : readTokenizer(path, metadata.tokenizer, config.vocabSize);
  const mode = metadata.mode;
  if (mode !== undefined && mode !== 'stream' && mode !== 'sentences') throw bad(path, `metadata mode ${JSON.stringify(mode)} is not 'stream' or 'sentences'`);
  // An int8 file: every matrix int8 with its scales (encoder.weight's dtype says which kind of file it is).
  const quantization: Quantization | null = tensors.get('encoder.weight')?.dtype === 'I8' ? 'int8' : null;
  // The tensors must be exactly what the config describes before anything is built from it: a
  // config claiming a huge model over a small file is a bad file, not a memory problem.
  const expected = new Map<string, number[]>();
  for (const p of parameterSpecs(config)) {
    expected.set(p.name, p.shape);
    if (quantization && quantizable(p.shape)) expected.set(p.name + SCALE_SUFFIX, [p.shape[0], 1]);
  }
  for (const name of tensors.keys()) if (!expected.has(name)) throw bad(path, `unexpected tensor '${name}'`);
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) throw bad(path, `tensor '${name}' is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw bad(path, `tensor '${name}' has shape [${t.shape.join(', ')}]; the config needs [${shape.join(', ')}]`);
    }
  }
  const tensor = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw bad(path, `tensor '${name}' is missing`);
    return t;
  };
  /** A float tensor, widened to float32 (half precision exactly) and checked finite. */
  const floats = (name: string): Float32Array => {
    const t = tensor(name);
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') throw bad(path, `tensor '${name}' is ${t.dtype}; expected F32, F16 or BF16`);
    const data = t.dtype === 'F32' ? (t.data as Float32Array) : fromHalf(t.dtype, t.data as Uint16Array);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw bad(path, `tensor '${name}' holds a non-finite value at index ${i}`);
    }
    return data;
  };
  /** An int8 matrix and its scales: q in [-127, 127], scales finite and >= 0. */
  const int8 = (name: string): QuantizedTensor => {
    const t = tensor(name);
    if (t.dtype !== 'I8') throw bad(path, `tensor '${name}' is ${t.dtype}; an int8 checkpoint holds every matrix as I8`);
    const q = t.data as Int8Array, scale = floats(name + SCALE_SUFFIX);
    const i = q.indexOf(-128);
    if (i >= 0) throw bad(path, `tensor '${name}' holds -128 at index ${i}; int8 weights are in [-127, 127]`);
    // Negative, or so large that 127 steps overflow float32 (the dequantized weight would be infinite).
    const j = scale.findIndex((v) => v < 0 || !Number.isFinite(Math.fround(v * 127)));
    if (j >= 0) throw bad(path, `tensor '${name + SCALE_SUFFIX}' holds the scale ${scale[j]} at row ${j}; scales are >= 0 and at most 3.4e38 / 127`);
    return { q, scale };
  };
  /**
   * A tensor as the file holds it; null for a tied decoder.weight, which is the encoder's (the file
   * holds the same matrix twice, as PyTorch's state_dict does: checked equal, not read again).
   */
  const read = (e: ParamEntry): Float32Array | QuantizedTensor | null => {
    const int = quantization !== null && quantizable(e.shape);
    if (e.name === 'decoder.weight' && config.tieWeights) {
      const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.prototype.every.call(a, (v: number, i: number) => v === b[i]);
      const enc = tensor('encoder.weight'), dec = tensor('decoder.weight');
      if (enc.dtype !== dec.dtype || !same(enc.data as ArrayLike<number>, dec.data as ArrayLike<number>) || (int && !same(floats('encoder.weight' + SCALE_SUFFIX), floats('decoder.weight' + SCALE_SUFFIX)))) {
        throw bad(path, 'config.tieWeights is set but decoder.weight differs from encoder.weight');
      }
      return null;
    }
    return int ? int8(e.name) : floats(e.name);
  };
  return {
    config,
    metadata,
    tokenizer,
    mode,
    quantization,
    params(layout) {
      const total = layout.reduce((a, e) => Math.max(a, e.offset + e.shape.reduce((x, y) => x * y, 1)), 0);
      const flat = new Float32Array(total);
      for (const e of layout) {
        const w = read(e);
        if (w) flat.set(floatOf(w, e.shape), e.offset);
      }
      return flat;
    },
    weights(layout, quantize) {
      const out: HostWeights = new Map();
      for (const e of layout) {
        const w = read(e);
        if (!w) out.set(e.name, out.get('encoder.weight')!);
        else if (!quantize || !quantizable(e.shape)) out.set(e.name, floatOf(w, e.shape));
        else out.set(e.name, isQuantized(w) ? w : quantizeRows(w, e.shape[0], e.shape[1]));
      }
      return out;
    },
  };
}
