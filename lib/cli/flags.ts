/**
 * What the CLI's commands share: value parsers, the options several commands take, and the
 * defaults their help shows — the API's, read from lib/defaults.ts. A flag left out is left out
 * of the API call, so the API applies the same default that the help shows.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULTS } from '../defaults';
import { CELL_NAMES, PRECISIONS } from '../backend/types';
import { DEVICES } from '../backend/index';
import { QUANTIZATIONS } from '../nn/quantize';
import { invalidArgument } from '../errors';
import type { SoftmaxOptions } from '../nn/decoder';
import type { CreateOptions } from '../model';

export function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be an integer`);
    return n;
  };
}

export function num(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

export function fraction(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !(n >= 0 && n < 1)) throw new InvalidArgumentError(`${name} must be a number in [0, 1) (got ${v})`);
    return n;
  };
}

export const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/** A comma-separated list of integers. */
export function ints(name: string) {
  const one = int(name);
  return (v: string) => list(v).map(one);
}

export const lines = (text: string) => text.split(/\r?\n/).filter((l) => l.trim().length > 0);

/** An option key as its flag: hiddenSize -> --hidden-size. */
export const kebab = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * ` (default: …)` for a flag's help, written as commander writes the defaults it holds (JSON).
 * Given a default per kind (data mode, optimizer, schedule), `0.001 for adam/adamw, 1 for sgd`;
 * a single value when every kind has the same.
 */
export function shown(value: unknown): string {
  if (typeof value !== 'object' || value === null) return ` (default: ${JSON.stringify(value)})`;
  const kinds = new Map<string, string[]>();
  for (const [kind, v] of Object.entries(value)) {
    const key = JSON.stringify(v);
    kinds.set(key, [...(kinds.get(key) ?? []), kind]);
  }
  const parts = [...kinds].map(([v, ks]) => (kinds.size === 1 ? v : `${v} for ${ks.join('/')}`));
  return ` (default: ${parts.join(', ')})`;
}

/** One field of a table of defaults by kind, for the kinds that have it: field(DEFAULTS.optimizer, 'lr'). */
export function field(table: Record<string, object>, key: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(table).filter(([, d]) => key in d).map(([kind, d]) => [kind, (d as Record<string, unknown>)[key]]));
}

const C = DEFAULTS.create;

/** The model flags, named as ModelConfig's fields (the API's CreateOptions). */
export const MODEL_KEYS = ['cell', 'embeddingSize', 'hiddenSize', 'layers', 'dropout', 'dropoutInput', 'dropoutHidden', 'dropoutOutput',
  'dropoutEmbedding', 'lockedDropout', 'weightDrop', 'tieWeights', 'seed'] as const;

/** The model flags' values by ModelConfig's names (those left out: undefined, so the API applies its defaults). */
export function modelFlags(o: Record<string, unknown>): Pick<CreateOptions, (typeof MODEL_KEYS)[number]> {
  return Object.fromEntries(MODEL_KEYS.map((k) => [k, o[k]]));
}

export const modelOptions = (cmd: Command) =>
  cmd
    .addOption(new Option('--cell <cell>', `recurrent cell${shown(C.cell)}`).choices(CELL_NAMES))
    .option('--embedding-size <n>', `embedding size${shown(C.embeddingSize)}`, int('--embedding-size'))
    .option('--hidden-size <n>', `hidden size${shown(C.hiddenSize)}`, int('--hidden-size'))
    .option('--layers <n>', `stacked recurrent layers${shown(C.layers)}`, int('--layers'))
    .option('--dropout <p>', `dropout on embeddings, between layers and on the output${shown(C.dropout)}`, num('--dropout'))
    .option('--dropout-input <p>', 'dropout on the embedding output (unless given: --dropout; AWD-LSTM: 0.65)', num('--dropout-input'))
    .option('--dropout-hidden <p>', 'dropout between layers (unless given: --dropout; AWD-LSTM: 0.3)', num('--dropout-hidden'))
    .option('--dropout-output <p>', 'dropout on the last layer\'s output (unless given: --dropout; AWD-LSTM: 0.4)', num('--dropout-output'))
    .option('--dropout-embedding <p>', 'drop whole words from the embedding (AWD-LSTM: 0.1)', num('--dropout-embedding'))
    .option('--locked-dropout', 'one dropout mask per sequence, shared by its time steps (AWD-LSTM; without it, a mask per element)')
    .option('--weight-drop <p>', 'DropConnect on the recurrent weights weight_hh (AWD-LSTM: 0.5)', num('--weight-drop'))
    .option('--tie-weights', `share the embedding matrix with the decoder${shown(C.tieWeights)}`)
    .option('--adaptive-softmax <cutoffs>', 'the adaptive softmax for large vocabularies, with these cutoffs (ids where the head ends and each cluster begins), e.g. 2000,10000; without it, the full softmax', ints('--adaptive-softmax'))
    .option('--div-value <x>', `with --adaptive-softmax: cluster i projects to hidden size / x^(i+1)${shown(DEFAULTS.adaptiveSoftmax.divValue)}`, num('--div-value'))
    .option('--head-bias', `with --adaptive-softmax: a bias on its head${shown(DEFAULTS.adaptiveSoftmax.headBias)}`);

/** The softmax option of the model flags (undefined: the API's default, the full softmax). */
export function softmaxOf(o: Record<string, unknown>): SoftmaxOptions | undefined {
  if (o.adaptiveSoftmax === undefined) {
    if (o.divValue !== undefined || o.headBias !== undefined) throw invalidArgument(`${o.divValue !== undefined ? '--div-value' : '--head-bias'} is for --adaptive-softmax`);
    return undefined;
  }
  return { type: 'adaptive', cutoffs: o.adaptiveSoftmax as number[], ...(o.divValue !== undefined ? { divValue: o.divValue as number } : {}), ...(o.headBias !== undefined ? { headBias: o.headBias as boolean } : {}) };
}

/** --device of create (train) or of load (the other commands), with that call's default. */
export const deviceOption = (device: string) =>
  new Option('--device <device>', `where to compute (auto: CUDA if it answers, else the CPU)${shown(device)}`).choices(DEVICES);

/** --precision of create (train) or load (the other commands): how the float math runs on the device. */
export const precisionOption = () =>
  new Option('--precision <precision>', `float math: fp32, or on CUDA tf32 (tensor cores), bf16 or fp16 (mixed precision)${shown(DEFAULTS.create.precision)}`).choices(PRECISIONS);

/** Says on stderr when the model computes in another precision than --precision asked (device auto's fallback). */
export function notePrecision(model: { precision: string; deviceReason: string }, asked: string | undefined): void {
  if (asked !== undefined && model.precision !== asked) console.error(`rnnlm: ${model.deviceReason.split('; ').pop()}`);
}

/** Commands that load a model: quantize it as it loads (an int8 file loads as int8 anyway). */
export const quantizeOption = () => new Option('--quantize <type>', 'load as an int8 model: int8 weights, inference on the CPU (README: "Compact models")').choices(QUANTIZATIONS);

export const lossyOption = () => new Option('--lossy-utf8', 'read bytes that are not UTF-8 as U+FFFD (with a warning) instead of refusing the file');

export const API_DEFAULTS = '\nAn API option\'s flag left out is left out of the call: the API applies the default shown (README.md, "API").';
