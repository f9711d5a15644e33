// The AWD-LSTM regularizers against their definitions (Merity et al. 2017; Gal & Ghahramani 2016):
// the dropout keys (locked: one mask per sequence; words: one mask per token id, whole rows), AR and
// TAR against a plain-JavaScript formula, and the network's masks as it draws them. The gradients
// are checked by finite differences in gradcheck-network.test.ts.
import { afterAll, describe, expect, test } from 'vitest';
import type { Cell, Tensor } from '../../lib/backend/types';
import { Network } from '../../lib/nn/network';
import { Random } from '../../lib/util/random';
import { backend, errorOf, make, randomArray, relError } from '../helpers';

const s = backend.createStream();
afterAll(() => s.dispose());
const read = async (t: Tensor) => Array.from(await s.read(t));
const rows = (a: number[], n: number) => Array.from({ length: a.length / n }, (_, i) => a.slice(i * n, i * n + n));

describe('dropout keys', () => {
  const T = 6, B = 4, C = 50, p = 0.4;
  test('plain: a number per element, kept with probability 1 - p, scaled by 1 / (1 - p)', async () => {
    const x = make(s, 'f64', [T, B, C], new Array(T * B * C).fill(1)), m = make(s, 'f64', [T, B, C]), y = make(s, 'f64', [T, B, C]);
    s.dropoutForward(x, m, y, p, 77);
    const mask = await read(m);
    expect(new Set(mask)).toEqual(new Set([0, 1 / (1 - p)]));
    const kept = mask.filter((v) => v > 0).length / mask.length;
    expect(Math.abs(kept - (1 - p))).toBeLessThan(0.05);
    expect(rows(mask, B * C)[0]).not.toEqual(rows(mask, B * C)[1]); // steps differ
  });
  test('locked (period B * C): every time step has the same mask, sequences and units differ', async () => {
    const x = make(s, 'f64', [T, B, C], randomArray(new Random(1), T * B * C)), m = make(s, 'f64', [T, B, C]), y = make(s, 'f64', [T, B, C]);
    s.dropoutForward(x, m, y, p, 78, { period: B * C });
    const steps = rows(await read(m), B * C);
    for (const step of steps) expect(step).toEqual(steps[0]);
    const seqs = rows(steps[0], C);
    expect(seqs[0]).not.toEqual(seqs[1]);
    expect(new Set(steps[0]).size).toBe(2);
    const [xs, ys, ms] = [await read(x), await read(y), steps.flat()];
    expect(ys).toEqual(xs.map((v, i) => v * ms[i]));
  });
  test('words (stride E, ids): one mask per token id, whole rows, shared by its every occurrence', async () => {
    const N = 40, E = 7, q = 0.5;
    const ids = Array.from({ length: N }, (_, n) => (n * 7) % 13);
    const x = make(s, 'f64', [N, E], new Array(N * E).fill(1)), m = make(s, 'f64', [N, E]);
    s.dropoutForward(x, m, x, q, 79, { stride: E, ids: make(s, 'i32', [N], ids) });
    const r = rows(await read(m), E);
    const byWord = new Map<number, number>();
    r.forEach((row, n) => {
      expect(new Set(row).size).toBe(1); // the whole row
      if (byWord.has(ids[n])) expect(row[0]).toBe(byWord.get(ids[n]));
      byWord.set(ids[n], row[0]);
    });
    expect(new Set(byWord.values())).toEqual(new Set([0, 1 / (1 - q)])); // some words dropped, some kept
    expect(await read(x)).toEqual(r.flat()); // y aliased x
  });
  test('bad keys are refused', () => {
    const x = make(s, 'f32', [4, 6]), m = make(s, 'f32', [4, 6]);
    expect(errorOf(() => s.dropoutForward(x, m, x, 0.5, 1, { stride: 5 }))).toMatch(/^ERR_INVALID_ARGUMENT: dropoutForward: stride 5 does not divide/);
    expect(errorOf(() => s.dropoutForward(x, m, x, 0.5, 1, { stride: 6, ids: make(s, 'i32', [3]) }))).toMatch(/ids must have one entry per 6 elements of x \(4\)/);
    expect(errorOf(() => s.dropoutForward(x, m, x, 0.5, 1, { period: 0 }))).toMatch(/period/);
  });
});

describe('locked dropout between layers (rnnForward)', () => {
  // No recurrence (weight_hh = 0): with the same input at every step, layer 0's output is the
  // same at every step, and so is layer 1's exactly when the mask between them is locked.
  for (const locked of [true, false]) {
    test(`lockedDropout ${locked}: the second layer's outputs ${locked ? 'agree' : 'differ'} across steps`, async () => {
      const T = 5, B = 3, I = 4, H = 8;
      const rnn = backend.createRnn({ cell: 'rnn_tanh', inputSize: I, hiddenSize: H, layers: 2, dropout: 0.5, lockedDropout: locked });
      const w = randomArray(new Random(4), rnn.weightSize);
      for (let l = 0; l < 2; l++) {
        const hh = rnn.weightParam(l, 1);
        w.fill(0, hh.offset, hh.offset + hh.shape[0] * hh.shape[1]);
      }
      const step = randomArray(new Random(5), B * I);
      const sp = rnn.spaces(T, B);
      const y = make(s, 'f64', [T, B, H]);
      s.rnnForward(rnn, {
        x: make(s, 'f64', [T, B, I], Array.from({ length: T }, () => step).flat()), y, weights: make(s, 'f64', [rnn.weightSize], w),
        reserve: make(s, 'f64', [sp.reserve]), workspace: make(s, 'f64', [sp.workspace]), training: true, seed: 9,
      });
      // (Up to rounding: the GEMM over all steps' inputs may round its rows differently.)
      const steps = rows(await read(y), B * H);
      const gaps = steps.slice(1).map((r) => Math.max(...r.map((v, i) => Math.abs(v - steps[0][i]))));
      for (const gap of gaps) expect(gap).toBeLessThan(locked ? 1e-12 : Infinity);
      if (!locked) for (const gap of gaps) expect(gap).toBeGreaterThan(1e-3);
    });
  }
});

describe('activation regularization (AR) and temporal activation regularization (TAR)', () => {
  test('value and gradient equal the formula, added to out and dx', async () => {
    const T = 7, R = 9, alpha = 2, beta = 1;
    const rng = new Random(3);
    const xs = randomArray(rng, T * R), d0 = randomArray(rng, T * R);
    const x = make(s, 'f64', [T, 3, 3], xs), dx = make(s, 'f64', [T, 3, 3], d0), out = make(s, 'f64', [1], [0.5]);
    s.activationRegularization(x, dx, alpha, 0, out);
    s.activationRegularization(x, dx, 0, beta, out);
    let ar = 0, tar = 0;
    const g = d0.slice();
    for (let i = 0; i < T * R; i++) {
      ar += xs[i] ** 2 / (T * R);
      g[i] += (2 * alpha * xs[i]) / (T * R);
    }
    for (let t = 1; t < T; t++)
      for (let r = 0; r < R; r++) {
        const d = xs[t * R + r] - xs[(t - 1) * R + r];
        tar += d ** 2 / ((T - 1) * R);
        g[t * R + r] += (2 * beta * d) / ((T - 1) * R);
        g[(t - 1) * R + r] -= (2 * beta * d) / ((T - 1) * R);
      }
    expect(Math.abs((await read(out))[0] - (0.5 + alpha * ar + beta * tar))).toBeLessThan(1e-12);
    expect(relError(await read(dx), g)).toBeLessThan(1e-12);
  });
  test('one time step: TAR is 0; shapes are checked', async () => {
    const x = make(s, 'f32', [1, 4], [1, 2, 3, 4]), dx = make(s, 'f32', [1, 4]), out = make(s, 'f32', [1]);
    s.activationRegularization(x, dx, 0, 3, out);
    expect(await read(out)).toEqual([0]);
    expect(errorOf(() => s.activationRegularization(x, make(s, 'f32', [4, 1]), 1, 1, out))).toMatch(/dx \[4, 1\] must have x's shape \[1, 4\]/);
    expect(errorOf(() => s.activationRegularization(x, dx, -1, 1, out))).toMatch(/^ERR_INVALID_ARGUMENT/);
  });
});

describe('the network draws its masks as AWD-LSTM does', () => {
  const T = 4, B = 3, E = 6, V = 9;
  const config = (extra: object) => ({
    vocabSize: V, embeddingSize: E, hiddenSize: E, layers: 2, cell: 'lstm' as const, dropout: 0, tieWeights: false,
    dtype: 'f64' as const, paddingIdx: 0, ...extra,
  });
  const ids = Int32Array.from({ length: T * B }, (_, i) => 1 + (i % 4)); // words repeat across the batch
  const batch = { seqLength: T, batchSize: B, inputs: ids, targets: ids };
  // The arena's views of the last step (internals, read for this check only).
  const views = (net: Network) => (net as unknown as { last: { views: Record<string, Tensor> } }).last.views;

  test('locked masks on the embedding and the output are the same at every step; word masks follow the ids', async () => {
    const net = new Network(backend, config({ dropoutEmbedding: 0.5, dropoutInput: 0.5, dropoutOutput: 0.5, lockedDropout: true }));
    try {
      net.initialize(1);
      net.forward(batch, { training: true, seed: 5 });
      const v = views(net);
      for (const name of ['embMask', 'yMask']) {
        const steps = rows(Array.from(await net.stream.read(v[name])), B * E);
        for (const step of steps) expect(step, name).toEqual(steps[0]);
        expect(new Set(steps[0]).size, name).toBe(2);
        expect(new Set(rows(steps[0], E).map((m) => m.join())).size, `${name}: sequences have their own masks`).toBeGreaterThan(1);
      }
      const words = rows(Array.from(await net.stream.read(v.wordMask)), E);
      words.forEach((row, n) => {
        expect(new Set(row).size).toBe(1);
        words.forEach((other, k) => ids[k] === ids[n] && expect(other).toEqual(row));
      });
    } finally {
      net.dispose();
    }
  });

  test('without training (evaluation) nothing is dropped: the log-probabilities equal the plain network\'s', async () => {
    const plain = new Network(backend, config({ dtype: 'f32' }));
    const awd = new Network(backend, config({ dtype: 'f32', dropoutEmbedding: 0.1, dropoutInput: 0.6, dropoutHidden: 0.3, dropoutOutput: 0.4, lockedDropout: true, weightDrop: 0.5 }));
    try {
      plain.initialize(3); // writeWeights takes float32 weights
      awd.writeWeights(await plain.readWeights());
      const a = Array.from(await plain.stream.read(plain.logProbs(ids, T, B)));
      const b = Array.from(await awd.stream.read(awd.logProbs(ids, T, B)));
      expect(b).toEqual(a);
      // ... while a training forward drops: the loss differs.
      plain.forward(batch, { training: true, seed: 1 });
      awd.forward(batch, { training: true, seed: 1 });
      expect((await awd.readLoss()).loss).not.toBe((await plain.readLoss()).loss);
    } finally {
      plain.dispose();
      awd.dispose();
    }
  });

  test('weight drop leaves the raw weights as they are and needs a fresh gradient per backward; AR and TAR refuse padding', async () => {
    const net = new Network(backend, config({ weightDrop: 0.5 }));
    try {
      net.initialize(2);
      const before = await net.readParam('rnn.weight_hh_l0');
      net.zeroGrad();
      net.forward(batch, { training: true, seed: 5 });
      net.backward();
      expect(await net.readParam('rnn.weight_hh_l0')).toEqual(before);
      net.forward(batch, { training: true, seed: 6 });
      expect(errorOf(() => net.backward())).toMatch(/^ERR_INVALID_ARGUMENT: with weight drop, each backward needs its own zeroGrad/);
      net.zeroGrad();
      net.forward({ ...batch, lengths: Int32Array.from([4, 2, 3]) }, { training: true, seed: 6 });
      expect(errorOf(() => net.backward({ ar: 2 }))).toMatch(/activation regularization \(ar, tar\) needs batches of whole time steps/);
    } finally {
      net.dispose();
    }
  });
});

describe('the stack trained one layer at a time (nn/layerwise.ts)', () => {
  const T = 4, B = 3, E = 5, V = 9, L = 3;
  const config = (cell: Cell, extra: object) => ({
    vocabSize: V, embeddingSize: E, hiddenSize: E, layers: L, cell, dropout: 0, tieWeights: false,
    dtype: 'f64' as const, paddingIdx: 0, lockedDropout: true, ...extra,
  });
  const rng = new Random(6);
  const tokens = () => Int32Array.from({ length: T * B }, () => 1 + Math.floor(rng.next() * (V - 1)));
  const batch = { seqLength: T, batchSize: B, inputs: tokens(), targets: tokens() };

  /** Loss, AR + TAR, every gradient, the initial states' gradients and the final states after two steps. */
  async function trainSteps(net: Network, weightDrop: boolean): Promise<number[]> {
    const out: number[] = [];
    net.initialize(4);
    net.zeroGrad();
    const st = net.state(B);
    for (const seed of [7, 8]) {
      if (weightDrop) net.zeroGrad(); // else the second step accumulates into the first one's gradients
      net.forward(batch, { training: true, seed });
      net.backward({ stateGrads: true, ar: 2, tar: 1 });
      out.push((await net.readLoss()).loss, await net.readPenalty());
      net.carryState();
    }
    out.push(...(await net.stream.read(net.allGrads)), ...(await net.stream.read(st.dhx)), ...(await net.stream.read(st.dcx)), ...(await net.stream.read(st.hx)));
    return out;
  }

  for (const cell of ['lstm', 'gru'] as Cell[]) {
    for (const weightDrop of [0, 0.5]) {
      test(`${cell}${weightDrop ? ', weight drop' : ''}: with masks of ones it equals the stacked RNN (loss, every gradient, states)`, async () => {
        // A rate of 1e-12 keeps every unit (and scales by 1 + 1e-12): the two paths must then agree.
        const extra = { dropoutHidden: 1e-12, weightDrop };
        const stacked = new Network(backend, config(cell, { ...extra, layerwise: false }));
        const split = new Network(backend, config(cell, { ...extra, layerwise: true }));
        try {
          const [a, b] = [await trainSteps(stacked, weightDrop > 0), await trainSteps(split, weightDrop > 0)];
          expect(a.length).toBe(b.length);
          expect(relError(b, a)).toBeLessThan(1e-12);
          expect(a.some((x) => x !== 0)).toBe(true);
        } finally {
          stacked.dispose();
          split.dispose();
        }
      });
    }
  }

  test('its masks between layers are locked: with no recurrence and one word per sequence, every step of the top layer agrees', async () => {
    const net = new Network(backend, config('rnn_tanh', { dropoutHidden: 0.5, layerwise: true }));
    try {
      net.initialize(2);
      for (let l = 0; l < L; l++) net.writeParam(`rnn.weight_hh_l${l}`, new Float64Array(E * E));
      const same = Int32Array.from({ length: T * B }, (_, i) => 1 + (i % B)); // position t * B + b: word 1 + b
      const b1 = { seqLength: T, batchSize: B, inputs: same, targets: same };
      net.resetState(B);
      net.forward(b1, { training: true, seed: 3 });
      const trained = rows(Array.from(await net.stream.read(net.lastOutput)), B * E);
      for (const step of trained.slice(1)) expect(Math.max(...step.map((v, i) => Math.abs(v - trained[0][i])))).toBeLessThan(1e-12);
      // ... and it dropped: evaluation (no dropout) gives other outputs.
      net.resetState(B);
      net.forward(b1, { training: false });
      const plain = rows(Array.from(await net.stream.read(net.lastOutput)), B * E);
      expect(Math.max(...plain[0].map((v, i) => Math.abs(v - trained[0][i])))).toBeGreaterThan(1e-3);
    } finally {
      net.dispose();
    }
  });
});
