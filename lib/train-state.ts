/**
 * The training state of fit's checkpoints: a sidecar <name>.train.safetensors beside the model
 * file with the optimizer moments, the carried recurrent state and the position in the data, so
 * that a resumed run computes the same numbers as an uninterrupted one; and the previous sidecar,
 * so that a crash in the middle of a save still leaves the state that matches the model file.
 */
import { lossScaleStateProblem, type LossScaleState } from './nn/loss-scale';
import { readCheckpoint, type ModelConfig } from './checkpoint';
import { RnnlmError, invalidArgument } from './errors';
import type { EpochLog } from './fit-options';
import { fileTarget, moveFileAtomic, removeFile } from './io/atomic';
import { readSafetensorsFile, writeSafetensorsFile, type SafeTensor } from './io/safetensors';
import type { Network } from './nn/network';
import type { Optimizer } from './nn/optimizer';
import type { Tensor } from './backend/types';

/** What a training state is saved with and restored into. */
export interface CheckpointedModel {
  readonly network: Network;
  readonly config: Readonly<ModelConfig>;
  /** Writes the model file of a checkpoint, with `extra` metadata. */
  save(path: string, extra: Record<string, string>): Promise<void>;
}

/** Everything a checkpoint must hold to continue exactly. */
export interface TrainState {
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
  /** Steps of the epoch whose scaled gradients overflowed (fit's lossScale; absent in older states). */
  epochOverflows?: number;
  /** The loss scale's device state when saved (fit's lossScale). */
  lossScale?: LossScaleState;
  fingerprint: string;
  /** Steps taken into the mean of iterate averaging (fit's average; lib/train-average.ts); 0: not averaging (yet). */
  averaged: number;
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
export async function trainStateFiles(path: string, verb = 'write'): Promise<{ current: string; previous: string; found: boolean }> {
  const model = (await fileTarget(path, verb)).path;
  const current = sidecarPath(model), previous = previousSidecarPath(model);
  const found = Boolean((await fileTarget(current, verb)).stat) || Boolean((await fileTarget(previous, verb)).stat);
  return { current, previous, found };
}

/** After a finished fit: the previous state is of no more use, the current one only to resume further. */
export async function finishTrainState(path: string, keep: boolean): Promise<void> {
  const { current, previous } = await trainStateFiles(path, 'remove');
  await removeFile(previous);
  if (!keep) await removeFile(current);
}

/**
 * Saves checkpoint `path`: the training state (the carried state of `carriedBatch` columns
 * mid-epoch, and `extra` tensors of the parameters' size), then the model file.
 */
export async function saveTrainState(model: CheckpointedModel, opt: Optimizer, st: TrainState, path: string, carriedBatch: number, extra: { name: string; tensor: Tensor }[] = []): Promise<void> {
  const net = model.network;
  const tensors = new Map<string, SafeTensor>();
  for (const { name, tensor } of [...opt.namedState, ...extra]) {
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
  await model.save(path, { trainStep: String(st.step) });
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

/**
 * Continues from checkpoint `path`: its weights, optimizer state, carried state and position, into
 * `st`; returns `extra`'s tensors that it has (saveTrainState's), each checked to be F32 of the parameters' size.
 */
export async function restoreTrainState(model: CheckpointedModel, opt: Optimizer, st: TrainState, path: string, carriedBatch: number, extra: string[] = []): Promise<Map<string, Float32Array>> {
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
  const extras = new Map(extra.filter((name) => tensors.has(name)).map((name) => [name, tensorData(tensors.get(name), [net.parameterCount], `${side}: ${name}`)]));
  await net.stream.sync();
  if (!Number.isSafeInteger(saved.averaged ?? 0) || (saved.averaged ?? 0) < 0) throw new RnnlmError('ERR_CHECKPOINT', `${side}: state.averaged must be a non-negative integer`);
  if (!Number.isSafeInteger(saved.epochOverflows ?? 0) || (saved.epochOverflows ?? 0) < 0) throw new RnnlmError('ERR_CHECKPOINT', `${side}: state.epochOverflows must be a non-negative integer`);
  const scaleProblem = saved.lossScale === undefined ? null : lossScaleStateProblem(saved.lossScale);
  if (scaleProblem) throw new RnnlmError('ERR_CHECKPOINT', `${side}: state.lossScale: ${scaleProblem}`);
  opt.step = saved.optimizerStep;
  Object.assign(st, { ...saved, best: saved.best ?? Infinity, epochSkipped: saved.epochSkipped ?? 0, averaged: saved.averaged ?? 0 });
  // Resumed from the previous state: it becomes the current one, so that the newer sidecar (ahead
  // of the model) is not moved aside over it at the next save.
  if (side !== current) await moveFileAtomic(previous, current);
  return extras;
}

function tensorData(t: SafeTensor | undefined, shape: readonly number[], what: string): Float32Array {
  if (!t || t.dtype !== 'F32' || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new RnnlmError('ERR_CHECKPOINT', `${what} is missing or not F32 [${shape.join(', ')}]`);
  }
  return t.data as Float32Array;
}

