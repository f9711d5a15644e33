/**
 * The training loop of LanguageModel.fit — PyTorch word_language_model's loop: for each
 * window (stream) or padded batch (sentences): zero the gradients, forward, backward,
 * clip, step; the hidden state carried between stream windows without its gradient;
 * validation and the learning-rate schedule once per epoch; checkpoints and exact resume.
 *
 * Reproducibility: dropout masks come from (seed, global step) and the sentence order from
 * (seed, epoch), and a checkpoint holds the optimizer moments, the carried state and the
 * position in the data, so a resumed run computes the same numbers as an uninterrupted one.
 */
import { SingleBar } from 'cli-progress';
import { readCheckpoint, writeCheckpoint } from './checkpoint';
import { SentenceBatches, StreamBatches } from './data';
import { DEFAULTS } from './defaults';
import { RnnlmError, invalidArgument } from './errors';
import { prepareScoring, score } from './evaluate';
import { fileTarget, moveFileAtomic, removeFile } from './io/atomic';
import { readSafetensorsFile, writeSafetensorsFile, type SafeTensor } from './io/safetensors';
import type { DataMode, LanguageModel, TextInput } from './model';
import { gib } from './nn/network';
import { OPTIMIZER_DEFAULTS, Optimizer, type OptimizerOptions } from './nn/optimizer';
import { Options } from './options';

export type LrSchedule =
  | 'constant'
  | { type: 'constant' }
  /** lr *= factor after each `every` epochs, from epoch `start` on (e.g. x0.5 per epoch after epoch 4). */
  | { type: 'step'; factor?: number; start?: number; every?: number }
  /** lr *= factor when the validation loss has not improved for `patience` + 1 epochs (PyTorch example: /4). */
  | { type: 'plateau'; factor?: number; patience?: number; threshold?: number };

export interface EpochLog {
  epoch: number;
  /** Mean training loss of the epoch (nats per token) and its perplexity. */
  loss: number;
  perplexity: number;
  valLoss?: number;
  valPerplexity?: number;
  /** Learning rate used during the epoch. */
  lr: number;
  tokens: number;
  tokensPerSecond: number;
  seconds: number;
  /** Steps whose loss or gradient was not finite (their updates were skipped). */
  skipped: number;
}

export interface FitOptions {
  validation?: TextInput;
  mode?: DataMode;
  epochs?: number;
  batchSize?: number;
  seqLength?: number;
  /** An optimizer's options, or just its type (with its defaults). */
  optimizer?: OptimizerOptions | OptimizerOptions['type'];
  lrSchedule?: LrSchedule;
  /** Global gradient-norm clipping (PyTorch clip_grad_norm_). */
  clipNorm?: number;
  /** Elementwise gradient clipping to [-clipValue, clipValue]. */
  clipValue?: number;
  /** Shuffle sentences each epoch (sentences mode; default true). */
  shuffle?: boolean;
  /** Batch sentences of similar length together (sentences mode; default false). */
  bucketing?: boolean;
  onEpochEnd?: (log: EpochLog, model: LanguageModel) => void | Promise<void>;
  /**
   * Periodic checkpoints: after every epoch, or every N steps. The training state goes beside
   * the model file; a finished fit removes it unless keepTrainingState (default false).
   */
  checkpoint?: { path: string; every?: 'epoch' | number; keepTrainingState?: boolean };
  /** Continue from checkpoint.path (true) or from a given checkpoint file. */
  resume?: boolean | string;
  signal?: AbortSignal;
  /** A progress bar on stderr when it is a TTY (default true); false for none. */
  progress?: boolean;
  /** Seed of dropout masks and shuffling (default: the model's seed). */
  seed?: number;
  /**
   * A step whose loss or gradient is NaN/Inf never updates the weights (checked on the device).
   * 'stop' (default): fit then rejects with ERR_NON_FINITE; 'skip': training goes on, the step
   * is counted in the epoch's `skipped`.
   */
  nonFinite?: 'stop' | 'skip';
}

const FIT_KEYS = ['validation', 'mode', 'epochs', 'batchSize', 'seqLength', 'optimizer', 'lrSchedule', 'clipNorm', 'clipValue',
  'shuffle', 'bucketing', 'onEpochEnd', 'checkpoint', 'resume', 'signal', 'progress', 'seed', 'nonFinite'] as const;

interface Schedule {
  kind: 'constant' | 'step' | 'plateau';
  factor: number;
  start: number;
  every: number;
  patience: number;
  threshold: number;
}

/** Everything a checkpoint must hold to continue exactly. */
interface TrainState {
  step: number;
  epoch: number; // 1-based, the epoch in progress
  batch: number; // next batch index within the epoch
  lr: number;
  best: number; // best validation loss so far (plateau)
  bad: number; // epochs without improvement (plateau)
  history: EpochLog[];
  epochNll: number; // sum of loss * count in the epoch so far
  epochCount: number;
  epochSeconds: number;
  epochSkipped: number;
  fingerprint: string;
}

export function sidecarPath(path: string): string {
  return path.replace(/(\.safetensors)?$/, '.train.safetensors');
}
/** The training state of the checkpoint before (kept so that a crash mid-save loses nothing). */
export function previousSidecarPath(path: string): string {
  return path.replace(/(\.safetensors)?$/, '.train.prev.safetensors');
}

/**
 * The training-state files of checkpoint `path`: beside the model file, which for a symlink is
 * its target (the state belongs to the file it was saved with). Each of the three must be a
 * regular file or absent (ERR_CHECKPOINT otherwise); `verb` says what for.
 */
async function trainStateFiles(path: string, verb = 'write'): Promise<{ current: string; previous: string; found: boolean }> {
  const model = (await fileTarget(path, verb)).path;
  const current = sidecarPath(model), previous = previousSidecarPath(model);
  const found = Boolean((await fileTarget(current, verb)).stat) || Boolean((await fileTarget(previous, verb)).stat);
  return { current, previous, found };
}

/** After a finished fit: the previous state is of no more use, the current one only to resume further. */
async function finishTrainState(path: string, keep: boolean): Promise<void> {
  const { current, previous } = await trainStateFiles(path, 'remove');
  await removeFile(previous);
  if (!keep) await removeFile(current);
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

export async function fitModel(model: LanguageModel, train: TextInput, options: FitOptions): Promise<EpochLog[]> {
  const o = new Options('fit', options, FIT_KEYS);
  const mode = o.oneOf('mode', model.inputs.inferMode(train), ['stream', 'sentences'] as const);
  const epochs = o.integer('epochs', DEFAULTS.fit.epochs, { min: 1, max: 1_000_000 });
  const batchSize = o.integer('batchSize', DEFAULTS.fit.batchSize[mode], { min: 1, max: 1 << 16 });
  const seqLength = o.integer('seqLength', DEFAULTS.fit.seqLength, { min: 1, max: 1 << 16 });
  const optim = parseOptimizer(o);
  const schedule = parseSchedule(o);
  const clipNorm = o.optionalNumber('clipNorm', { min: 0, exclusiveMin: true });
  const clipValue = o.optionalNumber('clipValue', { min: 0, exclusiveMin: true });
  const shuffle = o.boolean('shuffle', DEFAULTS.fit.shuffle);
  const bucketing = o.boolean('bucketing', DEFAULTS.fit.bucketing);
  const onEpochEnd = o.func<(log: EpochLog, model: LanguageModel) => void | Promise<void>>('onEpochEnd');
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
  const seed = o.integer('seed', model.config.seed, { min: 0, max: 2 ** 31 - 1 });
  const nonFinite = o.oneOf('nonFinite', DEFAULTS.fit.nonFinite, ['stop', 'skip'] as const);
  // What is at the checkpoint's paths is checked now (a FIFO, a device, a directory is refused), not after an epoch.
  if (checkpoint) await trainStateFiles(checkpoint.path);

  // Data, validated before any work.
  const net = model.network;
  const stream = mode === 'stream' ? new StreamBatches(model.inputs.stream(train, 'training data'), batchSize, seqLength, 'the training text') : undefined;
  const sentences = mode === 'sentences' ? new SentenceBatches(model.inputs.sentences(train, 'training data'), batchSize, { shuffle, bucketing, seed }) : undefined;
  if (stream && stream.cols - 1 < seqLength) {
    throw invalidArgument(
      `the training text (${stream.cols * batchSize} tokens) is shorter than one window of ${batchSize} x ${seqLength + 1} tokens; use more text or smaller batchSize/seqLength`,
    );
  }
  // Prepared (and so refused if it cannot be scored) before training, scored after each epoch.
  const validation = o.has('validation')
    ? prepareScoring(model.inputs, o.raw('validation'), { mode, batchSize: mode === 'stream' ? DEFAULTS.evaluate.batchSize.stream : batchSize, seqLength }, 'validation data')
    : undefined;
  const batchesPerEpoch = stream ? stream.count : sentences!.count;
  const fingerprint = JSON.stringify({ mode, batchSize, seqLength, seed, optimizer: optim.type, batches: batchesPerEpoch, tokens: stream ? stream.tokens : sentences!.tokens });

  // Refuse what cannot fit before allocating any of it (the OS would kill the process instead).
  const optimizerBytes = 4 * net.parameterCount * (optim.type === 'sgd' ? ((optim.momentum ?? 0) > 0 ? 1 : 0) : 2);
  const activations = net.activationBytes(mode === 'stream' ? seqLength : sentences!.maxSteps, batchSize);
  const available = net.backend.availableBytes();
  if (optimizerBytes + activations > available) {
    throw new RnnlmError('ERR_OUT_OF_MEMORY', `fit: batches of ${batchSize} x ${mode === 'stream' ? seqLength : sentences!.maxSteps} need ${gib(activations)} of activations and the optimizer ${gib(optimizerBytes)}; the ${net.backend.device} has ${gib(available)} available — lower batchSize${mode === 'stream' ? ' or seqLength' : ''}`);
  }
  const opt = new Optimizer(net.stream, optim, net.parameterCount, 'f32');
  // The read of the step in flight (two steps in flight: step k's loss is read while step k+1 is queued).
  let pending: Promise<{ loss: number; count: number; norm: number }> | undefined;
  const st: TrainState = { step: 0, epoch: 1, batch: 0, lr: opt.lr, best: Infinity, bad: 0, history: [], epochNll: 0, epochCount: 0, epochSeconds: 0, epochSkipped: 0, fingerprint };
  let bar: SingleBar | undefined;
  try {
    if (resumePath) await restore(model, opt, st, resumePath, mode === 'stream' ? batchSize : 0);
    model.mode = mode;
    const save = async () => {
      if (!checkpoint) return;
      await saveTrainState(model, opt, st, checkpoint.path, mode === 'stream' ? batchSize : 0);
    };

    for (; st.epoch <= epochs; st.epoch++, st.batch = 0, st.epochNll = 0, st.epochCount = 0, st.epochSeconds = 0, st.epochSkipped = 0) {
      opt.lr = st.lr;
      if (stream && st.batch === 0) net.resetState(batchSize);
      const order = sentences?.order(st.epoch);
      if (showProgress) {
        bar?.stop();
        bar = new SingleBar({
          format: `epoch ${st.epoch}/${epochs} [{bar}] {percentage}% | loss {loss} | ppl {ppl} | {tps} tok/s | ETA {eta_formatted}`,
          stream: process.stderr,
          hideCursor: true,
        });
        bar.start(batchesPerEpoch, st.batch, { loss: '-', ppl: '-', tps: '-' });
      }
      let t0 = performance.now();
      // Adds one step's read to the epoch's sums (or handles its non-finite loss / gradient).
      const account = async (read: NonNullable<typeof pending>) => {
        const r = await read;
        if (!Number.isFinite(r.loss) || !Number.isFinite(r.norm)) {
          if (nonFinite === 'stop') {
            throw new RnnlmError(
              'ERR_NON_FINITE',
              `the ${Number.isFinite(r.loss) ? 'gradient norm' : 'training loss'} became ${Number.isFinite(r.loss) ? r.norm : r.loss} near step ${st.step}; that update was skipped, so the weights are still finite. Lower the learning rate, set clipNorm, or pass nonFinite: 'skip'`,
            );
          }
          st.epochSkipped++;
          return;
        }
        st.epochNll += r.loss * r.count;
        st.epochCount += r.count;
      };
      const settle = async () => {
        const read = pending;
        pending = undefined;
        if (read) await account(read);
      };
      for (; st.batch < batchesPerEpoch; ) {
        if (signal?.aborted) {
          await settle();
          st.epochSeconds += (performance.now() - t0) / 1000;
          await save();
          throw signal.reason ?? new DOMException('fit was aborted', 'AbortError');
        }
        const batch = stream ? stream.batch(st.batch) : sentences!.batch(order!, st.batch);
        if (sentences) net.resetState(batch.batchSize);
        net.zeroGrad();
        net.forward(batch, { training: true, seed: (seed * 1000003 + st.step) % 2147483647 });
        net.backward();
        if (clipValue !== undefined) net.stream.clipValue(net.allGrads, clipValue);
        // Always measured (clipping only with clipNorm): a non-finite norm makes the device skip the update.
        net.clipGradNorm(clipNorm ?? 0);
        opt.apply(net.allParams, net.allGrads, net.statsTensor);
        if (stream) net.carryState();
        // Queue this step's read, then account for the previous step's (the one in flight).
        const previous = pending;
        pending = net.readStepStats();
        if (previous) await account(previous);
        st.step++;
        st.batch++;
        if (bar) {
          const secs = st.epochSeconds + (performance.now() - t0) / 1000;
          const l = st.epochCount ? st.epochNll / st.epochCount : NaN;
          bar.update(st.batch, { loss: l.toFixed(3), ppl: Math.exp(l).toFixed(1), tps: Math.round(st.epochCount / secs) });
        }
        if (checkpoint && typeof checkpoint.every === 'number' && st.step % checkpoint.every === 0 && st.batch < batchesPerEpoch) {
          await settle();
          st.epochSeconds += (performance.now() - t0) / 1000;
          t0 = performance.now();
          await save();
        }
      }
      await settle();
      bar?.stop();
      bar = undefined;
      st.epochSeconds += (performance.now() - t0) / 1000;
      const loss = st.epochNll / st.epochCount;
      const log: EpochLog = {
        epoch: st.epoch,
        loss,
        perplexity: Math.exp(loss),
        lr: st.lr,
        tokens: st.epochCount,
        tokensPerSecond: st.epochCount / st.epochSeconds,
        seconds: st.epochSeconds,
        skipped: st.epochSkipped,
      };
      if (validation !== undefined) {
        const v = await score(net, validation);
        log.valLoss = v.loss;
        log.valPerplexity = v.perplexity;
      }
      // Learning-rate schedule for the next epoch.
      if (schedule.kind === 'step' && st.epoch >= schedule.start && (st.epoch - schedule.start) % schedule.every === 0) {
        st.lr *= schedule.factor;
      } else if (schedule.kind === 'plateau') {
        const metric = log.valLoss ?? log.loss;
        if (metric < st.best - schedule.threshold) {
          st.best = metric;
          st.bad = 0;
        } else if (++st.bad > schedule.patience) {
          st.lr *= schedule.factor;
          st.bad = 0;
        }
      }
      st.history.push(log);
      if (onEpochEnd) await model.fitCallback(() => onEpochEnd(log, model));
      if (checkpoint && (checkpoint.every === 'epoch' || st.epoch === epochs)) {
        // The position after this epoch: the start of the next one.
        const next = { ...st, epoch: st.epoch + 1, batch: 0, epochNll: 0, epochCount: 0, epochSeconds: 0, epochSkipped: 0 };
        await saveTrainState(model, opt, next, checkpoint.path, 0);
      }
    }
    if (checkpoint) await finishTrainState(checkpoint.path, checkpoint.keepTrainingState);
    return st.history;
  } finally {
    // A read still in flight when fit ends by an error rejects later (ERR_DISPOSED): not unhandled.
    pending?.catch(() => {});
    bar?.stop();
    opt.dispose();
  }
}

async function saveTrainState(model: LanguageModel, opt: Optimizer, st: TrainState, path: string, carriedBatch: number): Promise<void> {
  const net = model.network;
  const tensors = new Map<string, SafeTensor>();
  for (const { name, tensor } of opt.namedState) {
    tensors.set(name, { dtype: 'F32', shape: [net.parameterCount], data: (await net.stream.read(tensor)) as Float32Array });
  }
  if (carriedBatch > 0 && st.batch > 0) {
    const s = net.state(carriedBatch);
    tensors.set('state.h', { dtype: 'F32', shape: [...s.hx.shape], data: (await net.stream.read(s.hx)) as Float32Array });
    tensors.set('state.c', { dtype: 'F32', shape: [...s.cx.shape], data: (await net.stream.read(s.cx)) as Float32Array });
  }
  const meta = { format: 'rnnlm-train', version: '1', state: JSON.stringify({ ...st, optimizerStep: opt.step, best: Number.isFinite(st.best) ? st.best : null }) };
  // Both files carry the step; resume takes the training state whose step is the model's. The
  // current state moves aside first, so a crash before the model is replaced (each write is
  // atomic) still leaves the state that matches the model on disk: killed anywhere, resumable.
  const { current, previous } = await trainStateFiles(path);
  await moveFileAtomic(current, previous);
  await writeSafetensorsFile(current, tensors, meta);
  await model.saveNow(path, { trainStep: String(st.step) });
}

/** The training state saved with checkpoint `path`: the current sidecar, or the previous one
 *  when a crash came between writing the sidecar and the model. */
export async function readTrainState(path: string, modelStep: string | undefined) {
  const { current, previous, found } = await trainStateFiles(path, 'read');
  if (!found) {
    throw new RnnlmError('ERR_CHECKPOINT', `${path} has no training state beside it (${current}): the fit that saved it finished without checkpoint.keepTrainingState, or save() wrote it; load it and fit without resume to train it further from its weights`);
  }
  let firstError: unknown;
  for (const side of [current, previous]) {
    try {
      const { metadata, tensors } = await readSafetensorsFile(side);
      const bad = (what: string) => new RnnlmError('ERR_CHECKPOINT', `${side}: ${what}`);
      if (metadata.format !== 'rnnlm-train' || metadata.version !== '1' || !metadata.state) throw bad('not an rnnlm training-state file');
      let saved: TrainState & { optimizerStep: number; best: number | null };
      try {
        saved = JSON.parse(metadata.state);
      } catch {
        throw bad('training state is not valid JSON');
      }
      const ints = ['step', 'epoch', 'batch', 'optimizerStep', 'bad'] as const;
      for (const k of ints) if (!Number.isSafeInteger(saved[k]) || saved[k] < 0) throw bad(`state.${k} must be a non-negative integer`);
      if (typeof saved.lr !== 'number' || !(saved.lr > 0) || !Array.isArray(saved.history)) throw bad('state.lr or state.history is invalid');
      if (String(saved.step) !== modelStep) {
        throw bad(`training state is from step ${saved.step} but ${path} is from step ${modelStep ?? 'none'}; they do not belong together`);
      }
      return { side, current, previous, saved, tensors };
    } catch (e) {
      firstError ??= e;
    }
  }
  throw firstError;
}

async function restore(model: LanguageModel, opt: Optimizer, st: TrainState, path: string, carriedBatch: number): Promise<void> {
  const ck = await readCheckpoint(path);
  const { side, current, previous, saved, tensors } = await readTrainState(path, ck.metadata.trainStep);
  if (saved.fingerprint !== st.fingerprint) {
    throw invalidArgument(`fit: resume from ${path}: the checkpoint was made with different data or options (${saved.fingerprint}); now ${st.fingerprint}`);
  }
  const cfg = model.config;
  if (JSON.stringify(ck.config) !== JSON.stringify(cfg)) throw invalidArgument(`fit: resume from ${path}: the checkpoint's model config differs from this model's`);
  const net = model.network;
  net.stream.write(net.allParams, ck.params(net.layout));
  for (const { name, tensor } of opt.namedState) {
    net.stream.write(tensor, tensorData(tensors.get(name), [net.parameterCount], `${side}: ${name}`));
  }
  if (carriedBatch > 0 && saved.batch > 0) {
    const s = net.state(carriedBatch);
    net.stream.write(s.hx, tensorData(tensors.get('state.h'), s.hx.shape, `${side}: state.h`));
    net.stream.write(s.cx, tensorData(tensors.get('state.c'), s.cx.shape, `${side}: state.c`));
  }
  await net.stream.sync();
  opt.step = saved.optimizerStep;
  Object.assign(st, { ...saved, best: saved.best ?? Infinity, epochSkipped: saved.epochSkipped ?? 0 });
  // Resumed from the previous state: it becomes the current one, so that the newer sidecar (ahead
  // of the model) is not moved aside over it at the next save.
  if (side !== current) await moveFileAtomic(previous, current);
}

function tensorData(t: SafeTensor | undefined, shape: readonly number[], what: string): Float32Array {
  if (!t || t.dtype !== 'F32' || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new RnnlmError('ERR_CHECKPOINT', `${what} is missing or not F32 [${shape.join(', ')}]`);
  }
  return t.data as Float32Array;
}

