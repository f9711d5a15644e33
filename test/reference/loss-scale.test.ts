// Dynamic loss scaling (issue 26, item 3: fp16 training), on the CPU. The rule (native/common/
// loss_scale.h) is the same code on both devices; its ops against a reference written here; fit
// with a loss scale against fit without, bit for bit (the scale is a power of two, so exact in
// float32), with AR / TAR (which leave the scale around them), clipping and captured steps; the
// control that shows the comparison would catch a gradient left scaled; overflows (injected) skip
// their step and halve the scale without stopping fit, down to 1, where a non-finite step is the
// model's again; the scale saved in checkpoints and resumed; the option's refusals. fp16 itself
// is CUDA's (the GPU check trains it).
import { afterEach, expect, test } from 'vitest';
import { cpuBackend } from '../../lib/advanced';
import type { LossScaleArgs, Tensor } from '../../lib/backend/types';
import { LossScaler } from '../../lib/nn/loss-scale';
import { LanguageModel, networkOf, type FitOptions } from '../../lib/model';
import { Random } from '../../lib/util/random';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorOf, make, setNonFinite } from '../helpers';
import { readSafetensorsFile, writeSafetensorsFile } from '../../lib/io/safetensors';
import { sidecarPath } from '../../lib/train-state';

afterEach(() => {
  delete process.env.RNNLM_GRAPHS;
});

/** The rule as loss_scale.h states it, in float64 (exact here: powers of two and small counts). */
function reference(state: number[], finite: boolean, p: LossScaleArgs): number[] {
  const [s, good, backoffs] = state;
  if (!finite) return [Math.max(s * p.backoff, p.minScale), 0, backoffs + 1];
  return good + 1 >= p.interval ? [Math.min(s * p.growth, p.maxScale), 0, backoffs] : [s, good + 1, backoffs];
}

test('scaleBy and updateLossScale: the rule of loss_scale.h, read from the device when each op runs, and each step\'s record (f32 and f64)', async () => {
  for (const dtype of ['f32', 'f64'] as const) {
    const s = cpuBackend.createStream();
    const rng = new Random(11);
    const p: LossScaleArgs = { growth: 2, backoff: 0.5, interval: 3, minScale: 1, maxScale: 64 };
    const state = make(s, dtype, [3], [8, 0, 0]);
    const guard = make(s, dtype, [3]), record = make(s, dtype, [4]);
    let expected = [8, 0, 0];
    for (let k = 0; k < 60; k++) {
      // Down to the floor and past it, up to the cap and past it, then at random.
      const finite = k < 6 ? false : k < 31 ? true : rng.next() < 0.7;
      s.write(guard, dtype === 'f32' ? new Float32Array([1.5, 4, 0.25]) : new Float64Array([1, 4, 0.5]));
      if (!finite) setNonFinite(s, { ...guard, offset: dtype === 'f32' ? 2 : 0, shape: [1] }, dtype === 'f32' ? Infinity : NaN);
      s.updateLossScale(state, guard, p, record);
      // The record: the guard as it was, then the scale the step ran with (before this update).
      const guardValues = Array.from(await s.read(guard));
      const ranWith = expected[0];
      expected = reference(expected, finite, p);
      expect(Array.from(await s.read(record))).toEqual([...guardValues, ranWith]);
      // Queued after the update: scaleBy multiplies by the scale the state holds when it runs.
      const x = make(s, dtype, [5], [1, -2, 3.5, 0, 1e-3]);
      s.scaleBy(x, state, false);
      const y = make(s, dtype, [5], [1, -2, 3.5, 0, 1e-3]);
      s.scaleBy(y, state, true);
      expect(Array.from(await s.read(state))).toEqual(expected);
      if (k === 5) expect(expected).toEqual([1, 0, 6]);
      if (k === 30) expect(expected[0]).toBe(64);
      const f = expected[0];
      expect(Array.from(await s.read(x))).toEqual([1, -2, 3.5, 0, 1e-3].map((v) => (dtype === 'f32' ? Math.fround(Math.fround(v) * f) : v * f)));
      expect(Array.from(await s.read(y))).toEqual([1, -2, 3.5, 0, 1e-3].map((v) => (dtype === 'f32' ? Math.fround(Math.fround(v) / f) : v / f)));
    }
    s.dispose();
  }
});

test('the ops refuse what they cannot use: a state not [3] of the tensors\' dtype, no guard, a rule out of range, a record not [n + 1]', () => {
  const s = cpuBackend.createStream();
  const state = make(s, 'f32', [3], [4, 0, 0]), guard = make(s, 'f32', [3]), x = make(s, 'f32', [4]);
  const p: LossScaleArgs = { growth: 2, backoff: 0.5, interval: 10, minScale: 1, maxScale: 2 ** 24 };
  expect(errorOf(() => s.scaleBy(x, make(s, 'f32', [4]), false))).toMatch(/ERR_INVALID_ARGUMENT: scaleBy: state must have shape \[3\]/);
  expect(errorOf(() => s.scaleBy(x, make(s, 'f64', [3]), false))).toMatch(/scaleBy: state must be f32 like the tensors it scales \(got f64\)/);
  expect(errorOf(() => s.scaleBy(state, state, false))).toMatch(/scaleBy: .*overlap/);
  expect(errorOf(() => s.updateLossScale(state, null as unknown as Tensor, p))).toMatch(/updateLossScale: guard \(the step's loss and gradient norm\) is required/);
  expect(errorOf(() => s.updateLossScale(state, guard, { ...p, growth: 0.5 }))).toMatch(/growth must be in \[1, 1024\]/);
  expect(errorOf(() => s.updateLossScale(state, guard, { ...p, interval: 0 }))).toMatch(/interval must be/);
  expect(errorOf(() => s.updateLossScale(state, guard, { ...p, minScale: 8, maxScale: 4 }))).toMatch(/minScale 8 is above maxScale 4/);
  expect(errorOf(() => s.updateLossScale(state, guard, p, make(s, 'f32', [3])))).toMatch(/updateLossScale: record must have shape \[4\]/);
  expect(errorOf(() => s.updateLossScale(state, guard, p, make(s, 'f64', [4])))).toMatch(/updateLossScale: record must be f32 like the state \(got f64\)/);
  const shared = make(s, 'f32', [7]);
  expect(errorOf(() => s.updateLossScale({ ...shared, shape: [3] }, guard, p, { ...shared, offset: 2, shape: [4] }))).toMatch(/updateLossScale: .*overlap/);
  s.dispose();
});

const V = 23;
const data = (() => {
  const rng = new Random(7);
  return Array.from({ length: 1600 }, () => 1 + Math.floor(rng.next() * (V - 1)));
})();

/** A fit of a fresh model; its per-epoch losses, logs and final weights. `tamper` may wrap the network before training. */
async function fitOnce(options: FitOptions, tamper?: (m: LanguageModel) => void) {
  const m = await LanguageModel.create({ vocabSize: V, embeddingSize: 8, hiddenSize: 8, layers: 2, device: 'cpu', seed: 9 });
  try {
    tamper?.(m);
    const logs = await m.fit(data, { epochs: 2, batchSize: 4, seqLength: 10, progress: false, ...options });
    return { logs, loss: logs.map((l) => l.loss), w: await networkOf(m).stream.read(networkOf(m).allParams) };
  } finally {
    m.dispose();
  }
}

test('fit with a loss scale trains the same weights as without, bit for bit (Adam with AR / TAR and both clippings; SGD; captured steps)', async () => {
  const cases: FitOptions[] = [
    { optimizer: { type: 'adam', lr: 0.01 }, ar: 2, tar: 1, clipNorm: 0.5, clipValue: 0.05 },
    { optimizer: { type: 'sgd', lr: 0.5, momentum: 0.9 }, clipNorm: 1 },
  ];
  for (const c of cases) {
    const plain = await fitOnce(c);
    const scaled = await fitOnce({ ...c, lossScale: { initial: 2 ** 10, growthInterval: 7 } });
    expect(scaled.loss).toEqual(plain.loss);
    expect(scaled.w).toEqual(plain.w);
    expect(plain.logs[0].lossScale).toBeUndefined();
    // 40 steps an epoch (39 windows of 10 and one of 9): 5 doublings in the first, 11 by the end of the second.
    expect(scaled.logs.map((l) => [l.lossScale, l.overflows, l.skipped])).toEqual([[2 ** 15, 0, 0], [2 ** 21, 0, 0]]);
  }
  // Captured steps (RNNLM_GRAPHS=1): the scale is read on the device, so replays scale as queued steps do.
  const c = cases[1];
  const plain = await fitOnce(c);
  process.env.RNNLM_GRAPHS = '1';
  let replays = 0;
  const graphs = await fitOnce({ ...c, lossScale: { initial: 4, growthInterval: 3 } }, (m) => {
    const s = networkOf(m).stream, replay = s.replay.bind(s);
    Object.defineProperty(s, 'replay', { value: (id: number) => void (replays++, replay(id)) });
  });
  // The 39 windows of 10 an epoch replay after their warm-up and capture (the one of 9 never comes a third time).
  expect(replays).toBe(2 * 39 - 2);
  expect(graphs.w).toEqual(plain.w);
  // 13 doublings an epoch, capped at 2^24.
  expect(graphs.logs.map((l) => l.lossScale)).toEqual([2 ** 15, 2 ** 24]);
});

test('control: a gradient left scaled (no unscale) trains other weights, so the comparison above can fail', async () => {
  const c: FitOptions = { optimizer: { type: 'sgd', lr: 0.1 } };
  const plain = await fitOnce(c);
  const unscale = LossScaler.prototype.unscale;
  LossScaler.prototype.unscale = () => {};
  try {
    const broken = await fitOnce({ ...c, lossScale: { initial: 2, growthInterval: 1000 } });
    expect(broken.w).not.toEqual(plain.w);
  } finally {
    LossScaler.prototype.unscale = unscale;
  }
});

/**
 * Makes the gradient norm of the given steps (0-based) infinite, as an fp16 overflow does, before
 * the update's guard reads it; and the loss NaN at the steps of `nanLoss` (the model's own failure).
 */
function overflowAt(steps: Set<number>, nanLoss = new Set<number>()) {
  return (m: LanguageModel) => {
    const net = networkOf(m);
    const clip = net.clipGradNorm.bind(net);
    let step = 0;
    net.clipGradNorm = (maxNorm: number) => {
      clip(maxNorm);
      if (steps.has(step)) setNonFinite(net.stream, net.normTensor, Infinity);
      if (nanLoss.has(step)) setNonFinite(net.stream, { ...net.statsTensor, shape: [1] }, NaN);
      step++;
    };
  };
}

test('an overflow skips its step and halves the scale, and fit goes on (nonFinite stop); at scale 1 a non-finite step is the model\'s', async () => {
  const c: FitOptions = { optimizer: { type: 'adam', lr: 0.01 } };
  const at = new Set([0, 1, 2, 40, 41]);
  // The same steps skipped without a scale (nonFinite 'skip'): the weights must be the same.
  const skipped = await fitOnce({ ...c, nonFinite: 'skip' }, overflowAt(at));
  expect(skipped.logs.map((l) => l.skipped)).toEqual([3, 2]);
  const scaled = await fitOnce({ ...c, lossScale: { initial: 2 ** 8, growthInterval: 1000 } }, overflowAt(at));
  expect(scaled.w).toEqual(skipped.w);
  expect(scaled.logs.map((l) => [l.overflows, l.skipped, l.lossScale])).toEqual([[3, 0, 2 ** 5], [2, 0, 2 ** 3]]);
  // From scale 4: two overflows bring it to 1, the third is an error under nonFinite 'stop'.
  await expect(fitOnce({ ...c, lossScale: { initial: 4, growthInterval: 1000 } }, overflowAt(new Set([3, 5, 8])))).rejects.toMatchObject({
    code: 'ERR_NON_FINITE',
    message: expect.stringMatching(/gradient norm became Infinity near step \d+; that update was skipped/),
  });
  // Each step is judged by the scale it ran with (its record), not by what the scale became: a NaN
  // loss is the model's whatever the scale (step 0, at 4; the scale still backs off, as PyTorch's
  // does); step 4 overflows at scale 2; steps 5 and 50 fail at scale 1, the model's.
  const judged = await fitOnce({ ...c, nonFinite: 'skip', lossScale: { initial: 4, growthInterval: 1000 } }, overflowAt(new Set([4, 5, 50]), new Set([0])));
  expect(judged.logs.map((l) => [l.overflows, l.skipped, l.lossScale])).toEqual([[1, 2, 1], [0, 1, 1]]);
});

test('an epoch none of whose steps updated the weights is an error under nonFinite stop, not a NaN loss; under skip it is logged with its counts', async () => {
  // 5 steps an epoch (4 windows of 20 x 16 and one of 19), every one overflowing from 2^24.
  const all = new Set(Array.from({ length: 5 }, (_, i) => i));
  const c: FitOptions = { epochs: 1, batchSize: 16, seqLength: 20, lossScale: { initial: 2 ** 24, growthInterval: 1000 } };
  await expect(fitOnce(c, overflowAt(all))).rejects.toMatchObject({
    code: 'ERR_NON_FINITE',
    message: expect.stringMatching(/^epoch 1: none of its 5 steps updated the weights: the scaled gradients of each overflowed, the loss scale backing off to 524288; give lossScale a smaller initial scale/),
  });
  const skipped = await fitOnce({ ...c, nonFinite: 'skip' }, overflowAt(all));
  expect(skipped.logs.map((l) => [l.tokens, l.overflows, l.skipped, l.lossScale, Number.isNaN(l.loss)])).toEqual([[0, 5, 0, 2 ** 19, true]]);
});

test('the scale is saved with the training state and resumed: 1 epoch + resume = 2 epochs straight', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rnnlm-loss-scale-'));
  try {
    const c: FitOptions = { optimizer: { type: 'adam', lr: 0.01 }, lossScale: { initial: 2, growthInterval: 5 } };
    const straight = await fitOnce(c);
    const path = join(dir, 'm.safetensors');
    await fitOnce({ ...c, epochs: 1, checkpoint: { path, keepTrainingState: true } });
    const resumed = await fitOnce({ ...c, checkpoint: { path }, resume: true });
    expect(resumed.w).toEqual(straight.w);
    expect(resumed.logs.map((l) => l.lossScale)).toEqual(straight.logs.map((l) => l.lossScale));
    expect(straight.logs.map((l) => l.lossScale)).toEqual([2 * 2 ** 8, 2 * 2 ** 16]); // 40 steps an epoch, growthInterval 5
    // A training state whose saved scale is not one fit could have made is refused, not trained on.
    await fitOnce({ ...c, epochs: 1, checkpoint: { path, keepTrainingState: true } });
    const side = sidecarPath(path);
    const file = await readSafetensorsFile(side);
    const state = JSON.parse(file.metadata.state);
    for (const [lossScale, problem] of [
      [{ scale: -8, good: 0, backoffs: 0 }, /scale must be a power of two in \[1, 2\^24\] \(got -8\)/],
      [{ scale: 3, good: 0, backoffs: 0 }, /scale must be a power of two .*\(got 3\)/],
      [{ scale: 4, good: -5, backoffs: 0 }, /good must be a non-negative integer \(got -5\)/],
      ['junk', /must be an object/],
    ] as const) {
      await writeSafetensorsFile(side, file.tensors, { ...file.metadata, state: JSON.stringify({ ...state, lossScale }) });
      await expect(fitOnce({ ...c, checkpoint: { path, keepTrainingState: true }, resume: true })).rejects.toMatchObject({
        code: 'ERR_CHECKPOINT',
        message: expect.stringMatching(new RegExp(`state\\.lossScale: ${problem.source}`)),
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the lossScale option: true, false, { initial, growthInterval }; off by default in fp32; refusals name what they got', async () => {
  const on = await fitOnce({ epochs: 1, lossScale: true } as FitOptions);
  expect(on.logs[0].lossScale).toBe(2 ** 16);
  const off = await fitOnce({ epochs: 1, lossScale: false } as FitOptions);
  expect(off.logs[0].lossScale).toBeUndefined();
  for (const [bad, message] of [
    [3, /lossScale must be true, false or \{ initial\?, growthInterval\? \} \(got 3\)/],
    [{ initial: 3 }, /lossScale: initial must be a power of two in \[1, 2\^24\] \(got 3\)/],
    [{ initial: 2 ** 25 }, /lossScale: initial must be a power of two in \[1, 2\^24\] \(got 33554432\)/],
    [{ initial: '1024' }, /lossScale: initial must be a power of two in \[1, 2\^24\] \(got "1024"\)/],
    [new Date(), /lossScale must be true, false or \{ initial\?, growthInterval\? \} \(got an object\)/],
    [{ growthInterval: 0 }, /lossScale: growthInterval must be/],
    [{ grow: 2 }, /lossScale: unknown option 'grow'/],
  ] as const) {
    await expect(fitOnce({ epochs: 1, lossScale: bad as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(message) });
  }
});
