/**
 * LanguageModel.fit's options and epoch logs (the public types), and their validation into the
 * settings of a run: every option is checked, in this order, before any data is read.
 */
import { invalidArgument } from './errors';
import type { DataMode, TextInput } from './inputs';
import { OPTIMIZER_DEFAULTS, type OptimizerOptions } from './nn/optimizer';
import { Options, show } from './options';
import { DEFAULTS } from './defaults';
import type { AverageSettings } from './train-average';
import { checkInitialScale, type LossScaleSettings } from './nn/loss-scale';

export type LrSchedule =
  | 'constant'
  | { type: 'constant' }
  /** lr *= factor (default 0.5) after each `every` (1) epochs, from epoch `start` (1) on (e.g. x0.5 per epoch after epoch 4). */
  | { type: 'step'; factor?: number; start?: number; every?: number }
  /**
   * lr *= factor (default 0.25, as PyTorch's example divides by 4) when the validation loss (the
   * training loss without validation) has not improved by more than `threshold` (0) for
   * `patience` (0) + 1 epochs.
   */
  | { type: 'plateau'; factor?: number; patience?: number; threshold?: number };

/** One epoch of fit. */
export interface EpochLog {
  epoch: number;
  /** Mean training loss of the epoch (nats per token) and its perplexity. */
  loss: number;
  perplexity: number;
  /** The validation data's loss and perplexity after the epoch (with `validation` only). */
  valLoss?: number;
  valPerplexity?: number;
  /** Learning rate used during the epoch. */
  lr: number;
  /** Target tokens trained on. */
  tokens: number;
  tokensPerSecond: number;
  seconds: number;
  /** Steps whose loss or gradient was not finite (their updates were skipped). */
  skipped: number;
  /** With a loss scale (FitOptions.lossScale): steps whose scaled gradients overflowed (skipped, the scale halved; not in `skipped`). */
  overflows?: number;
  /** With a loss scale: the scale at the epoch's end. */
  lossScale?: number;
}

/**
 * Options of LanguageModel.fit. `Model` is the model handed to onEpochEnd: the public type is
 * model.ts's FitOptions (a LanguageModel); this module names no model, so its default is any.
 */
export interface FitOptions<Model = any> {
  /**
   * Text (or sentences, in the training data's mode) scored after each epoch, into the log's
   * valLoss; checked before training (at least 2 tokens). Default: none.
   */
  validation?: TextInput;
  /** Default: from the training data — a string or token ids are 'stream', an array of them 'sentences'. */
  mode?: DataMode;
  /** Epochs to train (integer >= 1); with resume, the total, epochs already done included. Default 1. */
  epochs?: number;
  /** Sequences per batch: columns of the text in stream mode (default 20), sentences per batch (default 32). */
  batchSize?: number;
  /** Truncated-BPTT window in stream mode (integer >= 1). Default 35. */
  seqLength?: number;
  /**
   * Stream mode: windows of varying length around seqLength, drawn anew each epoch, and each
   * step's learning rate scaled by its window's length / seqLength (AWD-LSTM's variable BPTT:
   * seqLength, or half of it 5 % of the time, plus normal noise of deviation 5; at least 5 and at
   * most seqLength + 20 steps). Default false.
   */
  variableLength?: boolean;
  /**
   * An optimizer's options, or just its type (with its defaults). Default 'adam': PyTorch's Adam
   * (lr 1e-3); 'sgd' has lr 1 (OptimizerOptions lists every default).
   */
  optimizer?: OptimizerOptions | OptimizerOptions['type'];
  /** How the learning rate changes between epochs. Default 'constant'. */
  lrSchedule?: LrSchedule;
  /** Global gradient-norm clipping (PyTorch clip_grad_norm_), > 0. Default: none. */
  clipNorm?: number;
  /** Elementwise gradient clipping to [-clipValue, clipValue], > 0. Default: none. */
  clipValue?: number;
  /**
   * Activation regularization (Merity et al. 2017; AWD-LSTM uses 2): ar * mean(h^2) of the last
   * layer's dropped output is added to the training objective (not to the reported loss). Stream
   * mode only. Default 0.
   */
  ar?: number;
  /** Temporal activation regularization (AWD-LSTM uses 1): tar * mean((h_t - h_{t-1})^2) of the last layer's output, likewise. Default 0. */
  tar?: number;
  /**
   * Iterate averaging: from its trigger on, the model validated, handed to onEpochEnd, saved and
   * returned is the mean of the weights after every step since (training goes on from the raw
   * weights). With optimizer 'sgd' this is AWD-LSTM's NT-ASGD. 'nonmonotone' (or
   * `{ trigger: 'nonmonotone', window }`, window default 5): from the epoch after the first one
   * whose validation loss is worse than the best before the last `window` epochs (needs
   * validation); `{ trigger: 'epoch', start }`: from epoch `start` on. Default: none.
   */
  average?: 'nonmonotone' | { trigger: 'nonmonotone'; window?: number } | { trigger: 'epoch'; start: number };
  /** Shuffle sentences each epoch (sentences mode). Default true. */
  shuffle?: boolean;
  /** Batch sentences of similar length together (sentences mode). Default false. */
  bucketing?: boolean;
  /**
   * Called after each epoch (awaited when it returns a Promise). The model's inference and save
   * may run in it; whatever it starts, awaited or not, ends before training goes on. Default: none.
   */
  onEpochEnd?: (log: EpochLog, model: Model) => void | Promise<void>;
  /**
   * Periodic checkpoints to `path`: after every epoch (every: 'epoch', the default), or every N
   * steps; the last epoch and an abort always save. The training state goes beside the model
   * file; a finished fit removes it unless keepTrainingState (default false). Default: none.
   */
  checkpoint?: { path: string; every?: 'epoch' | number; keepTrainingState?: boolean };
  /** Continue from checkpoint.path (true) or from a given checkpoint file, exactly. Default false. */
  resume?: boolean | string;
  /** Stops training after the current step (saving a checkpoint if configured); fit rejects with its reason. Default: none. */
  signal?: AbortSignal;
  /** A progress bar on stderr when it is a TTY (default true); false for none. */
  progress?: boolean;
  /** Seed of dropout masks and shuffling (integer in [0, 2^31 - 1]). Default: the model's seed. */
  seed?: number;
  /**
   * A step whose loss or gradient is NaN/Inf never updates the weights (checked on the device).
   * 'stop' (default): fit then rejects with ERR_NON_FINITE; 'skip': training goes on, the step
   * is counted in the epoch's `skipped`.
   */
  nonFinite?: 'stop' | 'skip';
  /**
   * Dynamic loss scaling, as PyTorch's GradScaler: the loss gradient is multiplied by a scale S
   * (a power of two) before the backward pass and the gradients divided by it after, so that
   * fp16's backward pass keeps the small ones; a step whose scaled gradients overflow is skipped
   * and halves S (counted in the log's `overflows`, never an error), `growthInterval` finite
   * steps in a row double it (S stays in [1, 2^24]). true: initial 2^16, growthInterval 2000.
   * Default: on in precision 'fp16', off otherwise (bf16 and fp32 keep float32's range). Exact:
   * a step that does not overflow updates the weights as it would without it.
   */
  lossScale?: boolean | { initial?: number; growthInterval?: number };
}

const FIT_KEYS = ['validation', 'mode', 'epochs', 'batchSize', 'seqLength', 'variableLength', 'optimizer', 'lrSchedule', 'clipNorm', 'clipValue', 'ar', 'tar', 'average',
  'shuffle', 'bucketing', 'onEpochEnd', 'checkpoint', 'resume', 'signal', 'progress', 'seed', 'nonFinite', 'lossScale'] as const;

export interface Schedule {
  kind: 'constant' | 'step' | 'plateau';
  factor: number;
  start: number;
  every: number;
  patience: number;
  threshold: number;
}

/** fit's options, validated and with their defaults. */
export interface FitSettings<Model> {
  mode: DataMode;
  epochs: number;
  batchSize: number;
  seqLength: number;
  variableLength: boolean;
  optim: OptimizerOptions;
  schedule: Schedule;
  clipNorm?: number;
  clipValue?: number;
  ar: number;
  tar: number;
  average?: AverageSettings;
  shuffle: boolean;
  bucketing: boolean;
  onEpochEnd?: (log: EpochLog, model: Model) => void | Promise<void>;
  checkpoint?: { path: string; every: 'epoch' | number; keepTrainingState: boolean };
  resumePath?: string;
  signal?: AbortSignal;
  showProgress: boolean;
  seed: number;
  nonFinite: 'stop' | 'skip';
  lossScale?: LossScaleSettings;
  /** The validation data as given (prepared with the training data). */
  validation?: { data: unknown };
}

/** Validates fit's options; `mode`, `seed` and `lossScale` (on in fp16) are the defaults that depend on the data and the model. */
export function parseFitOptions<Model>(options: FitOptions<Model>, defaults: { mode: DataMode; seed: number; lossScale: boolean }): FitSettings<Model> {
  const o = new Options('fit', options, FIT_KEYS);
  const mode = o.oneOf('mode', defaults.mode, ['stream', 'sentences'] as const);
  const epochs = o.integer('epochs', DEFAULTS.fit.epochs, { min: 1, max: 1_000_000 });
  const batchSize = o.integer('batchSize', DEFAULTS.fit.batchSize[mode], { min: 1, max: 1 << 16 });
  const seqLength = o.integer('seqLength', DEFAULTS.fit.seqLength, { min: 1, max: 1 << 16 });
  const variableLength = o.boolean('variableLength', false);
  if (variableLength && mode === 'sentences') throw invalidArgument("fit: variableLength is for mode 'stream' (sentences have their own lengths)");
  const optim = parseOptimizer(o);
  const schedule = parseSchedule(o);
  const clipNorm = o.optionalNumber('clipNorm', { min: 0, exclusiveMin: true });
  const clipValue = o.optionalNumber('clipValue', { min: 0, exclusiveMin: true });
  const ar = o.number('ar', 0, { min: 0, max: 1e3 });
  const tar = o.number('tar', 0, { min: 0, max: 1e3 });
  if ((ar > 0 || tar > 0) && mode === 'sentences') throw invalidArgument("fit: ar and tar need mode 'stream' (padded sentences have no single time axis to regularize)");
  const average = parseAverage(o);
  if (average?.trigger === 'nonmonotone' && !o.has('validation')) throw invalidArgument("fit: average 'nonmonotone' is triggered by the validation loss: give validation data");
  const shuffle = o.boolean('shuffle', DEFAULTS.fit.shuffle);
  const bucketing = o.boolean('bucketing', DEFAULTS.fit.bucketing);
  const onEpochEnd = o.func<(log: EpochLog, model: Model) => void | Promise<void>>('onEpochEnd');
  const ck = o.nested('checkpoint', ['path', 'every', 'keepTrainingState']);
  const checkpoint = ck && { path: ck.string('path')!, every: ck.raw('every') ?? DEFAULTS.checkpoint.every, keepTrainingState: ck.boolean('keepTrainingState', DEFAULTS.checkpoint.keepTrainingState) };
  if (ck && !ck.has('path')) throw invalidArgument('fit: checkpoint.path is required');
  if (checkpoint && checkpoint.every !== 'epoch' && !(Number.isSafeInteger(checkpoint.every) && (checkpoint.every as number) >= 1)) {
    throw invalidArgument(`fit: checkpoint.every must be 'epoch' or a number of steps >= 1 (got ${JSON.stringify(checkpoint.every)})`);
  }
  const resumeRaw = o.raw('resume');
  if (resumeRaw !== undefined && typeof resumeRaw !== 'boolean' && (typeof resumeRaw !== 'string' || !resumeRaw)) {
    throw invalidArgument('fit: resume must be true/false or the path of a checkpoint');
  }
  const resumePath = resumeRaw === true ? checkpoint?.path : typeof resumeRaw === 'string' ? resumeRaw : undefined;
  if (resumeRaw === true && !resumePath) throw invalidArgument('fit: resume: true needs checkpoint.path (or give resume the checkpoint path)');
  const signal = o.raw('signal') as AbortSignal | undefined;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument('fit: signal must be an AbortSignal');
  const showProgress = o.boolean('progress', DEFAULTS.fit.progress) && Boolean(process.stderr.isTTY);
  const seed = o.integer('seed', defaults.seed, { min: 0, max: 2 ** 31 - 1 });
  const nonFinite = o.oneOf('nonFinite', DEFAULTS.fit.nonFinite, ['stop', 'skip'] as const);
  const lossScale = parseLossScale(o, defaults.lossScale);
  return {
    mode, epochs, batchSize, seqLength, variableLength, optim, schedule, clipNorm, clipValue, ar, tar, average, shuffle, bucketing, onEpochEnd,
    checkpoint: checkpoint as FitSettings<Model>['checkpoint'], resumePath, signal, showProgress, seed, nonFinite, lossScale,
    validation: o.has('validation') ? { data: o.raw('validation') } : undefined,
  };
}

function parseAverage(o: Options): AverageSettings | undefined {
  const raw = o.raw('average');
  if (raw === undefined) return undefined;
  if (raw === 'nonmonotone') return { trigger: 'nonmonotone', window: DEFAULTS.fit.averageWindow };
  const trigger = typeof raw === 'object' && raw !== null ? (raw as { trigger?: unknown }).trigger : undefined;
  if (trigger === 'nonmonotone') {
    const a = o.nested('average', ['trigger', 'window'])!;
    return { trigger, window: a.integer('window', DEFAULTS.fit.averageWindow, { min: 1, max: 1_000_000 }) };
  }
  if (trigger === 'epoch') {
    const a = o.nested('average', ['trigger', 'start'])!;
    if (!a.has('start')) throw invalidArgument("fit: average { trigger: 'epoch' } needs start (the first epoch averaged)");
    return { trigger, start: a.integer('start', 1, { min: 1, max: 1_000_000 }) };
  }
  throw invalidArgument(`fit: average must be 'nonmonotone', { trigger: 'nonmonotone', window } or { trigger: 'epoch', start } (got ${JSON.stringify(raw)})`);
}

function parseSchedule(o: Options): Schedule {
  const raw = o.raw('lrSchedule');
  const base: Schedule = { kind: 'constant', factor: 1, start: 1, every: 1, patience: 0, threshold: 0 };
  if (raw === undefined || raw === 'constant') return base;
  const type = typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined;
  if (type === 'constant') return base;
  if (type === 'step') {
    const s = o.nested('lrSchedule', ['type', 'factor', 'start', 'every'])!;
    return { ...base, kind: 'step', factor: s.number('factor', DEFAULTS.lrSchedule.step.factor, { min: 0, max: 1, exclusiveMin: true }), start: s.integer('start', DEFAULTS.lrSchedule.step.start, { min: 1 }), every: s.integer('every', DEFAULTS.lrSchedule.step.every, { min: 1 }) };
  }
  if (type === 'plateau') {
    const s = o.nested('lrSchedule', ['type', 'factor', 'patience', 'threshold'])!;
    return { ...base, kind: 'plateau', factor: s.number('factor', DEFAULTS.lrSchedule.plateau.factor, { min: 0, max: 1, exclusiveMin: true }), patience: s.integer('patience', DEFAULTS.lrSchedule.plateau.patience, { min: 0 }), threshold: s.number('threshold', DEFAULTS.lrSchedule.plateau.threshold, { min: 0 }) };
  }
  throw invalidArgument(`fit: lrSchedule must be 'constant', { type: 'step', ... } or { type: 'plateau', ... } (got ${JSON.stringify(raw)})`);
}

function parseOptimizer(o: Options): OptimizerOptions {
  const raw = o.raw('optimizer');
  const type = raw === undefined ? DEFAULTS.fit.optimizer : typeof raw === 'string' ? raw : typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined;
  // The string form is the type with its defaults, as for lrSchedule.
  const s = typeof raw === 'string' || raw === undefined ? new Options('fit: optimizer', {}, []) : undefined;
  if (type === 'adam' || type === 'adamw') {
    const d = OPTIMIZER_DEFAULTS[type];
    const n = s ?? o.nested('optimizer', ['type', 'lr', 'beta1', 'beta2', 'eps', 'weightDecay'])!;
    return {
      type,
      lr: n.number('lr', d.lr, { min: 0, max: 1e3, exclusiveMin: true }),
      beta1: n.number('beta1', d.beta1, { min: 0, max: 0.999999 }),
      beta2: n.number('beta2', d.beta2, { min: 0, max: 0.999999999 }),
      eps: n.number('eps', d.eps, { min: 0, max: 1, exclusiveMin: true }),
      weightDecay: n.number('weightDecay', d.weightDecay, { min: 0, max: 1e3 }),
    };
  }
  if (type === 'sgd') {
    const d = OPTIMIZER_DEFAULTS.sgd;
    const n = s ?? o.nested('optimizer', ['type', 'lr', 'momentum', 'dampening', 'weightDecay', 'nesterov'])!;
    return {
      type,
      lr: n.number('lr', d.lr, { min: 0, max: 1e3, exclusiveMin: true }),
      momentum: n.number('momentum', d.momentum, { min: 0, max: 1 }),
      dampening: n.number('dampening', d.dampening, { min: 0, max: 1 }),
      weightDecay: n.number('weightDecay', d.weightDecay, { min: 0, max: 1e3 }),
      nesterov: n.boolean('nesterov', d.nesterov),
    };
  }
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    throw invalidArgument(`fit: optimizer.type must be 'adam', 'adamw' or 'sgd' (got ${JSON.stringify(type)})`);
  }
  throw invalidArgument(`fit: optimizer must be 'adam', 'adamw', 'sgd' or an object { type, lr, ... } (got ${JSON.stringify(raw) ?? String(raw)})`);
}

function parseLossScale(o: Options, on: boolean): LossScaleSettings | undefined {
  const raw = o.raw('lossScale');
  if (raw === false || (raw === undefined && !on)) return undefined;
  const d = DEFAULTS.fit.lossScale;
  if (raw === true || raw === undefined) return { ...d };
  if (typeof raw !== 'object' || raw === null || Object.getPrototypeOf(raw) !== Object.prototype) throw invalidArgument(`fit: lossScale must be true, false or { initial?, growthInterval? } (got ${show(raw)})`);
  const n = o.nested('lossScale', ['initial', 'growthInterval'])!;
  // A power of two: the scaling is then exact.
  const initial = checkInitialScale(n.raw('initial') ?? d.initial, 'fit: lossScale: initial');
  return { initial, growthInterval: n.integer('growthInterval', d.growthInterval, { min: 1, max: 1 << 24 }) };
}
