// AWD-LSTM's training in fit. Iterate averaging (NT-ASGD with sgd): the model it returns is the
// mean of the weights after each step since the trigger (checked against the iterates of runs
// without averaging), the non-monotone trigger is AWD-LSTM's rule, and a run aborted while
// averaging resumes exactly. Variable-length BPTT: the windows' lengths and learning rates, and
// exact resume.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { networkOf } from '../../lib/advanced';
import { LanguageModel, type FitOptions } from '../../lib/model';
import { Averager } from '../../lib/train-average';
import { StreamBatches } from '../../lib/data';
import { Random } from '../../lib/util/random';
import { abortAtCheck, backend, relError } from '../helpers';
import { tensor } from '../../lib/backend/types';

const dir = mkdtempSync(join(tmpdir(), 'rnnlm-average-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const V = 30, B = 4, T = 6;
const make = () => LanguageModel.create({ vocabSize: V, embeddingSize: 8, hiddenSize: 8, layers: 1, dropout: 0.2, device: 'cpu', seed: 4 });
const weights = async (m: LanguageModel) => Array.from(await networkOf(m).stream.read(networkOf(m).allParams));
/** B * (T + 1) tokens: exactly one training step per epoch. */
const oneStep = Int32Array.from({ length: B * (T + 1) }, (_, i) => (i * 11 + 3) % V);
const base: FitOptions = { batchSize: B, seqLength: T, optimizer: { type: 'sgd', lr: 0.5 }, progress: false, seed: 2 };
/** A longer text: many steps per epoch. */
const text = Int32Array.from({ length: 1200 }, (_, i) => (i * 7 + (i % 3)) % V);

/**
 * An uninterrupted run of `opts` on `text`, and one aborted at fit's check `stopAt` with a
 * checkpoint every `every` steps, then resumed by a fresh model: their logs and final weights.
 */
async function straightAndResumed(opts: FitOptions, name: string, stopAt: number, every: number) {
  const straight = await make();
  const full = await straight.fit(text, opts);
  const want = await weights(straight);
  straight.dispose();
  const path = join(dir, `${name}.safetensors`);
  const first = await make();
  await expect(first.fit(text, { ...opts, checkpoint: { path, every }, signal: abortAtCheck(stopAt) })).rejects.toMatchObject({ name: 'AbortError' });
  first.dispose();
  expect(existsSync(path)).toBe(true);
  const second = await make(); // fresh weights: everything must come from the checkpoint
  const resumed = await second.fit(text, { ...opts, checkpoint: { path }, resume: true });
  const got = await weights(second);
  second.dispose();
  return { full, want, resumed, got };
}

describe('the averaged model', () => {
  test('is the mean of the iterates since the trigger (one step per epoch, so epoch k ends at iterate k)', async () => {
    const iterates: number[][] = [];
    for (let k = 1; k <= 4; k++) {
      const m = await make();
      await m.fit(oneStep, { ...base, epochs: k });
      iterates.push(await weights(m));
      m.dispose();
    }
    const mean = (from: number) => iterates[0].map((_, i) => iterates.slice(from - 1).reduce((s, w) => s + w[i], 0) / (iterates.length - from + 1));
    for (const start of [1, 3]) {
      const m = await make();
      await m.fit(oneStep, { ...base, epochs: 4, average: { trigger: 'epoch', start } });
      const got = await weights(m);
      m.dispose();
      expect(relError(got, mean(start))).toBeLessThan(1e-6);
      expect(relError(got, iterates[3])).toBeGreaterThan(1e-3); // not the last iterate
    }
  }, 60_000);

  test("the non-monotone trigger is AWD-LSTM's: a loss worse than the best before the last `window` epochs", () => {
    const s = backend.createStream();
    const params = s.alloc('f32', 3);
    // Whether averaging starts after epochs with these validation losses (window 2).
    const starts = (losses: number[]) => {
      const a = new Averager(s, tensor(params, 0, [3]), { trigger: 'nonmonotone', window: 2 }, { averaged: 0 });
      a.maybeStart(losses.length + 1, losses);
      a.afterStep();
      const on = a.active;
      a.free();
      return on;
    };
    try {
      expect(starts([3, 2, 2.5])).toBe(false); // too few epochs before the last one's window
      expect(starts([3, 2, 1.5, 2.5])).toBe(false); // 2.5 is not worse than the best before the window (3)
      expect(starts([3, 2, 1.5, 3.5])).toBe(true); // 3.5 is
      expect(starts([5, 4, 3, 2, 1, 0.9])).toBe(false); // still improving
      expect(starts([5, 4, 3, 2, 1, 3.5])).toBe(true);
    } finally {
      s.dispose();
    }
  });

  test('aborted while averaging and resumed, it ends at the same weights and losses as an uninterrupted run', async () => {
    const opts: FitOptions = { ...base, epochs: 3, validation: text.subarray(0, 300), average: { trigger: 'epoch', start: 2 } };
    const r = await straightAndResumed(opts, 'avg', 2 * 50 + 20, 7); // aborted in epoch 3 (50 steps per epoch)
    expect(r.got).toEqual(r.want);
    expect(r.resumed.map((h) => [h.loss, h.valLoss])).toEqual(r.full.map((h) => [h.loss, h.valLoss]));
  }, 60_000);
});

describe('options', () => {
  test.each([
    [{ average: 'nonmonotone' }, /average 'nonmonotone' is triggered by the validation loss: give validation data/],
    [{ average: { trigger: 'epoch' } }, /average \{ trigger: 'epoch' \} needs start/],
    [{ average: 'always' }, /average must be 'nonmonotone', \{ trigger: 'nonmonotone', window \} or \{ trigger: 'epoch', start \}/],
    [{ average: { trigger: 'nonmonotone', window: 0 }, validation: oneStep }, /window must be/],
  ])('%j is refused', async (bad, message) => {
    const m = await make();
    try {
      const e = await m.fit(oneStep, { ...base, ...bad } as never).catch((x) => x);
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.message).toMatch(message);
    } finally {
      m.dispose();
    }
  });
});

describe('variable-length BPTT (fit variableLength)', () => {
  test('the windows tile the columns: around seqLength, at least 5 and at most seqLength + 20 steps, different every epoch', async () => {
    const ids = Int32Array.from({ length: 20 * 5001 }, (_, i) => i % V);
    const data = new StreamBatches(ids, 20, 35);
    const lengths: number[] = [];
    for (const seed of [1, 2]) {
      const w = data.variableWindows(new Random(seed));
      w.forEach((x, i) => expect(x.start).toBe(i === 0 ? 0 : w[i - 1].start + w[i - 1].length));
      expect(w.at(-1)!.start + w.at(-1)!.length).toBe(data.cols - 1);
      for (const x of w.slice(0, -1)) expect(x.length >= 5 && x.length <= 55).toBe(true);
      lengths.push(...w.slice(0, -1).map((x) => x.length));
      if (seed === 2) expect(w.map((x) => x.length)).not.toEqual(data.variableWindows(new Random(1)).map((x) => x.length));
    }
    const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
    expect(Math.abs(mean - (0.95 * 35 + 0.05 * 17.5))).toBeLessThan(0.6);
    const halved = lengths.filter((l) => l < 25).length / lengths.length; // N(17.5, 5) below 25: 93 %; N(35, 5) below 25: 2 %
    expect(halved).toBeGreaterThan(0.03);
    expect(halved).toBeLessThan(0.09);
  });

  test("a window's learning rate is scaled by its length / seqLength", async () => {
    // Windows fixed to two of 5 steps over columns of 10 targets: with seqLength 10 and lr 1 they
    // must train as fixed windows of seqLength 5 with lr 0.5 (the same batches, each at half the rate).
    const short = Int32Array.from({ length: 4 * 11 }, (_, i) => (i * 7 + 1) % V);
    const run = async (seqLength: number, lr: number, variableLength: boolean) => {
      const m = await make();
      await m.fit(short, { ...base, batchSize: 4, seqLength, epochs: 2, variableLength, optimizer: { type: 'sgd', lr } });
      const w = await weights(m);
      m.dispose();
      return w;
    };
    const spy = vi.spyOn(StreamBatches.prototype, 'variableWindows').mockReturnValue([{ start: 0, length: 5 }, { start: 5, length: 5 }]);
    try {
      const variable = await run(10, 1, true);
      expect(spy).toHaveBeenCalledTimes(2); // once per epoch
      expect(variable).toEqual(await run(5, 0.5, false));
      expect(variable).not.toEqual(await run(5, 1, false));
    } finally {
      spy.mockRestore();
    }
  });

  test('aborted mid-epoch and resumed, it cuts the same windows and ends at the same weights', async () => {
    const r = await straightAndResumed({ ...base, epochs: 2, seqLength: 8, variableLength: true }, 'variable', 50, 3);
    expect(r.got).toEqual(r.want);
    expect(r.resumed.map((h) => h.loss)).toEqual(r.full.map((h) => h.loss));
  }, 60_000);
});
