/**
 * The training loop of LanguageModel.fit — PyTorch word_language_model's loop: for each
 * window (stream) or padded batch (sentences): zero the gradients, forward, backward,
 * clip, step; the hidden state carried between stream windows without its gradient;
 * validation and the learning-rate schedule once per epoch; checkpoints and exact resume.
 * fitModel reads as: options and data (checked before any work), then epochs, each of steps.
 *
 * Reproducibility: dropout masks come from (seed, global step) and the sentence order from
 * (seed, epoch), and a checkpoint holds the optimizer moments, the carried state and the
 * position in the data (./train-state), so a resumed run computes the same numbers as an
 * uninterrupted one.
 */
import { SingleBar } from 'cli-progress';
import { SentenceBatches, StreamBatches, maxVariableLength } from './data';
import { Random } from './util/random';
import { RnnlmError, invalidArgument } from './errors';
import { evaluateSet, prepareScoring, type ScoringSet } from './evaluate';
import { parseFitOptions, type EpochLog, type FitOptions, type FitSettings } from './fit-options';
import type { DataMode, Inputs, TextInput } from './inputs';
import { idOrderProblem } from './nn/decoder';
import { gib, type Batch, type Network } from './nn/network';
import { StepGraphs, graphsEnabled } from './nn/graphs';
import { Optimizer } from './nn/optimizer';
import { finishTrainState, restoreTrainState, saveTrainState, trainStateFiles, type CheckpointedModel, type TrainState } from './train-state';
import { DEFAULTS } from './defaults';
import { Averager } from './train-average';
import { LossScaler, MIN_LOSS_SCALE } from './nn/loss-scale';

/** The training state's name for the raw weights while averaging (the model file holds the mean). */
const RAW = 'average.raw';

export type { EpochLog, FitOptions, LrSchedule } from './fit-options';
export { previousSidecarPath, readTrainState, sidecarPath } from './train-state';

/** What fit needs of a model (LanguageModel hands it in; this module never names the model). */
export interface TrainHost<Model> extends CheckpointedModel {
  /** The model handed to onEpochEnd. */
  readonly model: Model;
  readonly inputs: Inputs;
  /** Records the data mode being trained (saved with the model; sentence models prompt with <sos>). */
  setMode(mode: DataMode): void;
  /** Runs a user callback during which the model's inference and save may run; resolves once all they started has ended. */
  callback(fn: () => void | Promise<void>): Promise<void>;
}

/** The training data, batched, and the validation data, ready to score. */
interface FitData {
  stream?: StreamBatches;
  sentences?: SentenceBatches;
  validation?: ScoringSet;
  batchesPerEpoch: number;
  /** What a resumed run must share with the run it continues. */
  fingerprint: string;
}

/** A step's loss, counted targets and gradient norm (with a loss scale, also the scale it ran with). */
type StepStats = { loss: number; count: number; norm: number; scale?: number };

export async function fitModel<Model>(host: TrainHost<Model>, train: TextInput, options: FitOptions<Model>): Promise<EpochLog[]> {
  const settings = parseFitOptions(options, { mode: host.inputs.inferMode(train), seed: host.config.seed, lossScale: host.network.config.precision === 'fp16' });
  // What is at the checkpoint's paths is checked now (a FIFO, a device, a directory is refused), not after an epoch.
  if (settings.checkpoint) await trainStateFiles(settings.checkpoint.path);
  const data = prepareData(host.inputs, train, settings, host.network);
  checkMemory(host.network, settings, data);
  const run = new FitRun(host, settings, data);
  try {
    if (settings.resumePath) await run.resume(settings.resumePath);
    host.setMode(settings.mode);
    while (run.st.epoch <= settings.epochs) {
      await run.epoch();
      Object.assign(run.st, nextEpoch(run.st));
    }
    if (settings.checkpoint) await finishTrainState(settings.checkpoint.path, settings.checkpoint.keepTrainingState);
    return run.st.history;
  } finally {
    run.close();
  }
}

/** Encodes, validates and batches the data before any work. */
function prepareData<Model>(inputs: Inputs, train: TextInput, s: FitSettings<Model>, net: Network): FitData {
  const { mode, batchSize, seqLength } = s;
  const ids = mode === 'stream' ? [inputs.stream(train, 'training data')] : inputs.sentences(train, 'training data');
  const stream = mode === 'stream' ? new StreamBatches(ids[0], batchSize, seqLength, 'the training text') : undefined;
  const sentences = mode === 'sentences' ? new SentenceBatches(ids, batchSize, { shuffle: s.shuffle, bucketing: s.bucketing, seed: s.seed }) : undefined;
  // Raw token ids (no tokenizer numbered them) may not run from frequent to rare, as the adaptive softmax needs.
  const order = inputs.tokenizer ? null : idOrderProblem(net.config.softmax!, net.config.vocabSize, ids);
  if (order) process.emitWarning(`fit: ${order}`, { type: 'RnnlmWarning', code: 'RNNLM_ID_ORDER' });
  if (stream && stream.cols - 1 < seqLength) {
    throw invalidArgument(
      `the training text (${stream.cols * batchSize} tokens) is shorter than one window of ${batchSize} x ${seqLength + 1} tokens; use more text or smaller batchSize/seqLength`,
    );
  }
  // Prepared (and so refused if it cannot be scored) before training, scored after each epoch.
  const validation = s.validation && prepareScoring(inputs, s.validation.data, { mode, batchSize: mode === 'stream' ? DEFAULTS.evaluate.batchSize.stream : batchSize, seqLength }, 'validation data');
  const batchesPerEpoch = stream ? stream.count : sentences!.count;
  const fingerprint = JSON.stringify({ mode, batchSize, seqLength, seed: s.seed, optimizer: s.optim.type, batches: batchesPerEpoch, tokens: stream ? stream.tokens : sentences!.tokens, ...(s.average ? { average: s.average } : {}), ...(s.variableLength ? { variableLength: true } : {}) });
  return { stream, sentences, validation, batchesPerEpoch, fingerprint };
}

/** Refuses what cannot fit before allocating any of it (the OS would kill the process instead). */
function checkMemory<Model>(net: Network, s: FitSettings<Model>, data: FitData): void {
  const { optim, batchSize, mode } = s;
  const optimizerBytes = 4 * net.parameterCount * ((optim.type === 'sgd' ? ((optim.momentum ?? 0) > 0 ? 1 : 0) : 2) + (s.average ? 2 : 0));
  const steps = mode === 'stream' ? (s.variableLength ? maxVariableLength(s.seqLength) : s.seqLength) : data.sentences!.maxSteps;
  const activations = net.activationBytes(steps, batchSize);
  const available = net.backend.availableBytes();
  if (optimizerBytes + activations > available) {
    throw new RnnlmError('ERR_OUT_OF_MEMORY', `fit: batches of ${batchSize} x ${steps} need ${gib(activations)} of activations and the optimizer ${gib(optimizerBytes)}; the ${net.backend.device} has ${gib(available)} available — lower batchSize${mode === 'stream' ? ' or seqLength' : ''}`);
  }
}

/** The position at the start of the epoch after st's. */
function nextEpoch(st: TrainState): TrainState {
  return { ...st, epoch: st.epoch + 1, batch: 0, epochNll: 0, epochCount: 0, epochSeconds: 0, epochSkipped: 0, epochOverflows: 0 };
}

/** One fit in progress: its optimizer, its position (st) and the step whose loss is being read. */
class FitRun<Model> {
  readonly st: TrainState;
  private readonly net: Network;
  private readonly opt: Optimizer;
  /** Iterate averaging (fit's average), when asked for. */
  private readonly averager?: Averager;
  /** The read of the step in flight (two steps in flight: step k's loss is read while step k+1 is queued). */
  private pending?: Promise<StepStats>;
  private bar?: SingleBar;
  /** Steps captured as graphs and replayed (nn/graphs.ts): opt-in (RNNLM_GRAPHS=1) until a GPU run has verified them. */
  private readonly graphs?: StepGraphs;
  /** The dynamic loss scale (fit's lossScale; nn/loss-scale.ts). */
  private readonly scaler?: LossScaler;

  constructor(
    private readonly host: TrainHost<Model>,
    private readonly settings: FitSettings<Model>,
    private readonly data: FitData,
  ) {
    this.net = host.network;
    this.opt = new Optimizer(this.net.stream, settings.optim, this.net.parameterCount, 'f32');
    this.st = { step: 0, epoch: 1, batch: 0, lr: this.opt.lr, best: Infinity, bad: 0, history: [], epochNll: 0, epochCount: 0, epochSeconds: 0, epochSkipped: 0, epochOverflows: 0, fingerprint: data.fingerprint, averaged: 0 };
    if (graphsEnabled() && this.net.graphable && data.stream && !settings.average) this.graphs = new StepGraphs(this.net.stream);
    try {
      if (settings.average) this.averager = new Averager(this.net.stream, this.net.allParams, settings.average, this.st);
      if (settings.lossScale) this.net.lossScaler = this.scaler = new LossScaler(this.net.stream, 'f32', settings.lossScale);
    } catch (e) {
      this.opt.dispose();
      this.averager?.free();
      throw e;
    }
  }

  /** Columns whose recurrent state a mid-epoch checkpoint carries (0 in sentences mode: none). */
  private get carried(): number {
    return this.data.stream ? this.settings.batchSize : 0;
  }

  async resume(path: string): Promise<void> {
    const extra = await restoreTrainState(this.host, this.opt, this.st, path, this.carried, [RAW]);
    if (this.scaler && this.st.lossScale) this.scaler.restore(this.st.lossScale);
    if (this.st.averaged > 0) {
      const raw = extra.get(RAW);
      if (!this.averager || !raw) throw new RnnlmError('ERR_CHECKPOINT', `${path}: its training state averages weights but ${raw ? 'this fit has no average option' : `has no ${RAW}`}`);
      this.averager.restore(raw);
    }
  }

  /** Saves checkpoint `st` (a mid-epoch one, or the next epoch's start): the model file holds the mean while averaging, the training state the raw weights. */
  private async save(st: TrainState, carried: number): Promise<void> {
    const a = this.averager;
    a?.swapIn();
    const lossScale = await this.scaler?.read();
    await saveTrainState(this.host, this.opt, { ...st, lossScale }, this.settings.checkpoint!.path, carried, a?.active ? [{ name: RAW, tensor: a.rawTensor }] : []);
  }

  /** A checkpoint in the middle of an epoch (every N steps, or an abort). */
  private async saveHere(): Promise<void> {
    if (!this.settings.checkpoint) return;
    await this.save(this.st, this.carried);
    this.averager?.swapOut();
  }

  /** The epoch st.epoch from batch st.batch on: its steps, then its log, schedule, callback and checkpoint. */
  async epoch(): Promise<void> {
    const { st, net, settings: s, data } = this;
    this.opt.lr = st.lr;
    this.averager?.maybeStart(st.epoch, st.history.map((h) => h.valLoss));
    if (data.stream && st.batch === 0) net.resetState(s.batchSize);
    const order = data.sentences?.order(st.epoch);
    // Variable BPTT: this epoch's windows, from (seed, epoch) so that a resumed run cuts the same ones.
    const windows = data.stream && s.variableLength ? data.stream.variableWindows(new Random((s.seed ^ Math.imul(st.epoch, 0x9e3779b1)) >>> 0)) : undefined;
    const count = windows?.length ?? data.batchesPerEpoch;
    this.startBar(count);
    let t0 = performance.now();
    while (st.batch < count) {
      if (s.signal?.aborted) {
        await this.settle();
        st.epochSeconds += (performance.now() - t0) / 1000;
        await this.saveHere();
        throw s.signal.reason ?? new DOMException('fit was aborted', 'AbortError');
      }
      const w = windows?.[st.batch];
      // A window's learning rate in proportion to its length (AWD-LSTM): each token weighs the same.
      this.opt.lr = w ? (st.lr * w.length) / s.seqLength : st.lr;
      await this.step(w ? data.stream!.window(w.start, w.length) : data.stream ? data.stream.batch(st.batch) : data.sentences!.batch(order!, st.batch));
      this.updateBar(t0);
      const every = s.checkpoint?.every;
      if (typeof every === 'number' && st.step % every === 0 && st.batch < count) {
        await this.settle();
        st.epochSeconds += (performance.now() - t0) / 1000;
        t0 = performance.now();
        await this.saveHere();
      }
    }
    await this.settle();
    this.bar?.stop();
    this.bar = undefined;
    st.epochSeconds += (performance.now() - t0) / 1000;
    this.averager?.swapIn(); // the mean is validated, handed to onEpochEnd and saved
    const log = await this.epochLog();
    this.updateLr(log);
    st.history.push(log);
    const { onEpochEnd, checkpoint } = s;
    if (onEpochEnd) await this.host.callback(() => onEpochEnd(log, this.host.model));
    if (checkpoint && (checkpoint.every === 'epoch' || st.epoch === s.epochs)) {
      // The position after this epoch: the start of the next one.
      await this.save(nextEpoch(st), 0);
    }
    if (st.epoch < s.epochs) this.averager?.swapOut();
  }

  /** One step: forward, backward, clipping, update; its loss is read while the next step is queued. */
  private async step(batch: Batch): Promise<void> {
    const { st, net, settings: s } = this;
    if (this.data.sentences) net.resetState(batch.batchSize);
    const compute = (staged: boolean) => {
      net.zeroGrad();
      net.forward(batch, { training: true, seed: (s.seed * 1000003 + st.step) % 2147483647, staged });
      net.backward({ ar: s.ar, tar: s.tar });
      this.scaler?.unscale(net.allGrads);
      if (s.clipValue !== undefined) net.stream.clipValue(net.allGrads, s.clipValue);
      // Always measured (clipping only with clipNorm): a non-finite norm makes the device skip the update.
      net.clipGradNorm(s.clipNorm ?? 0);
    };
    if (this.graphs && !batch.lengths) {
      // The step's writes first (the batch, lr and step); the rest is one graph per window shape.
      net.stage(batch);
      this.opt.prepare();
      this.graphs.run(`${batch.seqLength}x${batch.batchSize}`, () => {
        compute(true);
        this.opt.update(net.allParams, net.allGrads, net.statsTensor);
        this.scaler?.update(net.statsTensor);
        net.carryState();
      });
    } else {
      compute(false);
      this.opt.apply(net.allParams, net.allGrads, net.statsTensor);
      this.scaler?.update(net.statsTensor);
      this.averager?.afterStep();
      if (this.data.stream) net.carryState();
    }
    // Queue this step's read, then account for the previous step's (the one in flight).
    const previous = this.pending;
    this.pending = this.scaler ? this.scaler.readRecord() : net.readStepStats();
    if (previous) await this.account(previous);
    st.step++;
    st.batch++;
  }

  /** Adds one step's read to the epoch's sums (or handles its non-finite loss / gradient). */
  private async account(read: Promise<StepStats>): Promise<void> {
    const r = await read;
    const st = this.st;
    if (!Number.isFinite(r.loss) || !Number.isFinite(r.norm)) {
      // A finite loss whose scaled gradients overflowed is the scale's (it has halved), unless
      // the step ran at the least scale (1): then, as with a loss that is not finite, the model's.
      if (r.scale !== undefined && Number.isFinite(r.loss) && r.scale > MIN_LOSS_SCALE) {
        st.epochOverflows = (st.epochOverflows ?? 0) + 1;
        return;
      }
      if (this.settings.nonFinite === 'stop') {
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
  }

  /** Accounts for the step in flight, if any. */
  private async settle(): Promise<void> {
    const read = this.pending;
    this.pending = undefined;
    if (read) await this.account(read);
  }

  /** The finished epoch's log, scored on the validation data. */
  private async epochLog(): Promise<EpochLog> {
    const st = this.st;
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
    if (this.scaler) {
      log.overflows = st.epochOverflows ?? 0;
      log.lossScale = (await this.scaler.read()).scale;
      // An epoch that updated nothing has no loss to log: under 'stop' that is an error, not a NaN.
      if (st.epochCount === 0 && this.settings.nonFinite === 'stop') {
        throw new RnnlmError('ERR_NON_FINITE', `epoch ${st.epoch}: none of its ${log.overflows} steps updated the weights: the scaled gradients of each overflowed, the loss scale backing off to ${log.lossScale}; give lossScale a smaller initial scale or more steps per epoch (nonFinite: 'skip' logs such an epoch with loss NaN)`);
      }
    }
    if (this.data.validation !== undefined) {
      const v = await evaluateSet(this.net, this.data.validation);
      log.valLoss = v.loss;
      log.valPerplexity = v.perplexity;
    }
    return log;
  }

  /** The learning-rate schedule: the rate of the next epoch. */
  private updateLr(log: EpochLog): void {
    const { st, settings: { schedule } } = this;
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
  }

  private startBar(count: number): void {
    if (!this.settings.showProgress) return;
    this.bar?.stop();
    this.bar = new SingleBar({
      format: `epoch ${this.st.epoch}/${this.settings.epochs} [{bar}] {percentage}% | loss {loss} | ppl {ppl} | {tps} tok/s | ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
    });
    this.bar.start(count, this.st.batch, { loss: '-', ppl: '-', tps: '-' });
  }

  private updateBar(t0: number): void {
    if (!this.bar) return;
    const st = this.st;
    const secs = st.epochSeconds + (performance.now() - t0) / 1000;
    const l = st.epochCount ? st.epochNll / st.epochCount : NaN;
    this.bar.update(st.batch, { loss: l.toFixed(3), ppl: Math.exp(l).toFixed(1), tps: Math.round(st.epochCount / secs) });
  }

  /** Frees the optimizer; a read still in flight when fit ends by an error rejects later (ERR_DISPOSED): not unhandled. */
  close(): void {
    this.pending?.catch(() => {});
    this.bar?.stop();
    this.graphs?.clear();
    this.opt.dispose();
    if (this.scaler) {
      this.net.lossScaler = null;
      this.scaler.free();
    }
    // However fit ends, a model that was averaging is left with the mean (as its checkpoints hold).
    if (this.averager && !this.net.stream.disposed) this.averager.swapIn();
    this.averager?.free();
  }
}
