// Every CPU op on its own: finite-difference gradients in float64 for the differentiable
// ops, and plain-JavaScript references (PyTorch's formulas) for the rest.
import { afterAll, describe, expect, test } from 'vitest';
import { tensor, type Cell, type Tensor } from '../../lib/backend/types';
import { Random } from '../../lib/util/random';
import { backend, make, numericGrad, randomArray, relError } from '../helpers';

const s = backend.createStream();
afterAll(() => s.dispose());
const rng = new Random(99);
const f64 = (shape: number[], scale = 1) => {
  const data = randomArray(rng, shape.reduce((a, b) => a * b, 1), scale);
  return { t: make(s, 'f64', shape, data), data };
};
const read = async (t: Tensor) => Array.from(await s.read(t));
const dot = async (a: Tensor, w: number[]) => (await read(a)).reduce((acc, v, i) => acc + v * w[i], 0);

describe('embedding', () => {
  test('forward gathers rows; backward scatter-adds, skipping the padding id', async () => {
    const V = 6, E = 3;
    const table = f64([V, E]);
    const ids = make(s, 'i32', [5], [2, 0, 5, 2, 1]);
    const out = make(s, 'f64', [5, E]);
    s.embeddingForward(table.t, ids, out);
    const got = await read(out);
    [2, 0, 5, 2, 1].forEach((id, n) => expect(got.slice(n * E, n * E + E)).toEqual(table.data.slice(id * E, id * E + E)));
    const R = randomArray(rng, 5 * E);
    const dout = make(s, 'f64', [5, E], R);
    const dtable = make(s, 'f64', [V, E]);
    s.embeddingBackward(ids, dout, dtable, 0);
    const analytic = await read(dtable);
    const numeric = await numericGrad(s, table.t, 'f64', table.data, async () => {
      s.embeddingForward(table.t, ids, out);
      return dot(out, R);
    }, 1e-5);
    numeric.fill(0, 0, E); // padding row: no gradient by design
    expect(relError(analytic, numeric)).toBeLessThan(1e-9);
    expect(analytic.slice(0, E)).toEqual([0, 0, 0]);
  });
});

describe('linear', () => {
  // Single rows and single outputs take the GEMV path of native/cpu/blas.h.
  test.each([[4, 5, 3], [1, 5, 3], [4, 5, 1], [1, 5, 1]])('N=%i, I=%i, O=%i: forward equals x W^T + b and backward matches finite differences', async (N, I, O) => {
    const x = f64([N, I]), W = f64([O, I]), b = f64([O]);
    const y = make(s, 'f64', [N, O]);
    s.linearForward(x.t, W.t, b.t, y);
    const got = await read(y);
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++) {
        let ref = b.data[o];
        for (let i = 0; i < I; i++) ref += x.data[n * I + i] * W.data[o * I + i];
        expect(got[n * O + o]).toBeCloseTo(ref, 12);
      }
    const R = randomArray(rng, N * O);
    const dy = make(s, 'f64', [N, O], R);
    const dx = make(s, 'f64', [N, I]), dW = make(s, 'f64', [O, I]), db = make(s, 'f64', [O]);
    s.linearBackward(x.t, W.t, dy, dx, dW, db);
    const f = async () => {
      s.linearForward(x.t, W.t, b.t, y);
      return dot(y, R);
    };
    for (const [p, d] of [[x, dx], [W, dW], [b, db]] as const) {
      expect(relError(await read(d), await numericGrad(s, p.t, 'f64', p.data, f, 1e-5))).toBeLessThan(1e-8);
    }
    // Gradients accumulate into dW and db; dx is overwritten unless asked to accumulate.
    const dW1 = await read(dW);
    s.linearBackward(x.t, W.t, dy, dx, dW, db);
    expect(relError(await read(dW), dW1.map((v) => 2 * v))).toBeLessThan(1e-14);
  });
});

describe('cross-entropy', () => {
  test('loss and gradient with an ignore index', async () => {
    const N = 6, V = 7;
    const z = f64([N, V], 3);
    const targets = [3, 0, 6, 1, 0, 2];
    const tg = make(s, 'i32', [N], targets);
    const out = make(s, 'f64', [2]);
    const dz = make(s, 'f64', [N, V]);
    s.crossEntropy(z.t, tg, 0, out, dz);
    const [loss, count] = await read(out);
    let ref = 0;
    let c = 0;
    for (let n = 0; n < N; n++) {
      if (targets[n] === 0) continue;
      const row = z.data.slice(n * V, n * V + V);
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
      ref += lse - row[targets[n]];
      c++;
    }
    expect(count).toBe(4);
    expect(loss).toBeCloseTo(ref / c, 12);
    const scratch = make(s, 'f64', [2]);
    const numeric = await numericGrad(s, z.t, 'f64', z.data, async () => {
      s.crossEntropy(z.t, tg, 0, scratch, null);
      return (await read(scratch))[0];
    }, 1e-5);
    expect(relError(await read(dz), numeric)).toBeLessThan(1e-8);
  });

  test('in place (dlogits = logits) and an all-ignored batch', async () => {
    const z = f64([2, 3]);
    const out = make(s, 'f64', [2]);
    s.crossEntropy(z.t, make(s, 'i32', [2], [0, 0]), 0, out, z.t);
    expect(await read(out)).toEqual([0, 0]);
    expect(await read(z.t)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  test('a divisor and accumulate: parts of one mean over rows split in two calls', async () => {
    const N = 6, V = 5;
    const z = f64([N, V], 2);
    const targets = [3, 0, 4, 1, 2, 0];
    const whole = make(s, 'f64', [2]), dWhole = make(s, 'f64', [N, V]);
    s.crossEntropy(z.t, make(s, 'i32', [N], targets), 0, whole, dWhole);
    // Rows 0-2 and 3-5 separately: the first sets (loss, count) with the whole count as divisor, the second adds.
    const parts = make(s, 'f64', [2]), dParts = make(s, 'f64', [N, V]);
    const rows = (k: number) => tensor(z.t.buffer, k * 3 * V, [3, V]);
    s.crossEntropy(rows(0), make(s, 'i32', [3], targets.slice(0, 3)), 0, parts, tensor(dParts.buffer, 0, [3, V]), { divisor: 4 });
    s.fill(tensor(parts.buffer, 1, [1]), 99); // accumulate leaves out[1] alone
    s.crossEntropy(rows(1), make(s, 'i32', [3], targets.slice(3)), 0, parts, tensor(dParts.buffer, 3 * V, [3, V]), { divisor: 4, accumulate: true });
    const [w, p] = [await read(whole), await read(parts)];
    expect(p[0]).toBeCloseTo(w[0], 13);
    expect(p[1]).toBe(99);
    expect(relError(await read(dParts), await read(dWhole))).toBeLessThan(1e-14);
  });

  test('logSoftmaxInto: a block of columns of a wider matrix, shifted by a column of another', async () => {
    const N = 3, K = 4, W = 9, S = 3;
    const x = f64([N, K], 3), shift = f64([N, S], 1);
    const out = make(s, 'f64', [N, W], new Array(N * W).fill(7));
    s.logSoftmaxInto(x.t, out, 5, 3, shift.t, 2);
    s.logSoftmaxInto(x.t, out, 0, 2, null, 0);
    const got = await read(out);
    for (let n = 0; n < N; n++) {
      const row = x.data.slice(n * K, n * K + K);
      const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
      for (let c = 0; c < W; c++) {
        const want = c < 2 ? row[c] - lse : c >= 5 && c < 8 ? row[c - 5] - lse + shift.data[n * S + 2] : 7;
        expect(got[n * W + c]).toBeCloseTo(want, 12);
      }
    }
  });

  test('logSoftmax', async () => {
    const z = f64([3, 5], 4);
    const out = make(s, 'f64', [3, 5]);
    s.logSoftmax(z.t, out);
    const got = await read(out);
    for (let n = 0; n < 3; n++) {
      const row = z.data.slice(n * 5, n * 5 + 5);
      const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
      row.forEach((v, k) => expect(got[n * 5 + k]).toBeCloseTo(v - lse, 12));
    }
  });
});

describe('dropout', () => {
  test('keeps 1 - p of the elements scaled by 1 / (1 - p), reproducibly from the seed', async () => {
    const n = 20000, p = 0.3;
    const x = make(s, 'f64', [n], new Array(n).fill(1));
    const mask = make(s, 'f64', [n]), y = make(s, 'f64', [n]);
    s.dropoutForward(x, mask, y, p, 42);
    const m1 = await read(mask);
    const kept = m1.filter((v) => v !== 0);
    expect(kept.every((v) => Math.abs(v - 1 / (1 - p)) < 1e-12)).toBe(true);
    expect(Math.abs(kept.length / n - (1 - p))).toBeLessThan(0.015);
    s.dropoutForward(x, mask, y, p, 42);
    expect(await read(mask)).toEqual(m1);
    s.dropoutForward(x, mask, y, p, 43);
    expect(await read(mask)).not.toEqual(m1);
    // backward: dx = dy * mask
    const dy = f64([n]);
    const dx = make(s, 'f64', [n]);
    s.multiply(dy.t, mask, dx);
    const m2 = await read(mask);
    expect(await read(dx)).toEqual(dy.data.map((v, i) => v * m2[i]));
  });
});

describe('recurrent stack alone', () => {
  const T = 4, I = 3, H = 4;
  for (const cell of ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'] as Cell[]) {
    for (const [layers, B] of [[1, 3], [3, 3], [2, 1]]) {
      test(`${cell}, ${layers} layer(s), batch ${B}: d(y, hy, cy) -> dx, dhx, dcx, dW by finite differences`, async () => {
        const rnn = backend.createRnn({ cell, inputSize: I, hiddenSize: H, layers, dropout: 0.25 });
        const sp = rnn.spaces(T, B);
        const x = f64([T, B, I]), W = f64([rnn.weightSize], 0.7);
        const hx = f64([layers, B, H], 0.5), cx = f64([layers, B, H], 0.5);
        const y = make(s, 'f64', [T, B, H]), hy = make(s, 'f64', [layers, B, H]), cy = make(s, 'f64', [layers, B, H]);
        const reserve = make(s, 'f64', [sp.reserve]), workspace = make(s, 'f64', [sp.workspace]);
        const lengths = Int32Array.from([4, 1, 3].slice(0, B));
        const Ry = randomArray(rng, T * B * H), Rh = randomArray(rng, layers * B * H), Rc = randomArray(rng, layers * B * H);
        const lstm = cell === 'lstm';
        const forward = () =>
          s.rnnForward(rnn, { x: x.t, y, hx: hx.t, cx: cx.t, hy, cy, weights: W.t, reserve, workspace, lengths, training: true, seed: 5 });
        const f = async () => {
          forward();
          return (await dot(y, Ry)) + (await dot(hy, Rh)) + (lstm ? await dot(cy, Rc) : 0);
        };
        forward();
        // Padded steps: output zero, final state from each sequence's last step.
        const yv = await read(y);
        if (B > 1) expect(yv.slice((1 * B + 1) * H, (1 * B + 1) * H + H)).toEqual([0, 0, 0, 0]);
        const dx = make(s, 'f64', [T, B, I]), dhx = make(s, 'f64', [layers, B, H]), dcx = make(s, 'f64', [layers, B, H]);
        const dW = make(s, 'f64', [rnn.weightSize]);
        s.rnnBackwardData(rnn, {
          dy: make(s, 'f64', [T, B, H], Ry), dhy: make(s, 'f64', [layers, B, H], Rh), dcy: make(s, 'f64', [layers, B, H], Rc),
          dx, dhx, dcx, weights: W.t, reserve, workspace, lengths,
        });
        s.rnnBackwardWeights(rnn, { x: x.t, hx: hx.t, y, weights: W.t, dweights: dW, reserve, workspace, lengths });
        const checks: [string, { t: Tensor; data: number[] }, Tensor][] = [['x', x, dx], ['hx', hx, dhx], ['weights', W, dW]];
        if (lstm) checks.push(['cx', cx, dcx]);
        for (const [name, p, d] of checks) {
          const err = relError(await read(d), await numericGrad(s, p.t, 'f64', p.data, f, 1e-5));
          expect.soft(err, `${cell} L=${layers} d/d${name}`).toBeLessThan(1e-6);
        }
      });
    }
  }

  test('weightParam follows PyTorch names and shapes', () => {
    const rnn = backend.createRnn({ cell: 'gru', inputSize: 7, hiddenSize: 5, layers: 2 });
    expect(rnn.weightParam(0, 0)).toEqual({ offset: 0, shape: [15, 7] });
    expect(rnn.weightParam(0, 1)).toEqual({ offset: 105, shape: [15, 5] });
    expect(rnn.weightParam(0, 2)).toEqual({ offset: 180, shape: [15] });
    expect(rnn.weightParam(1, 0)).toEqual({ offset: 210, shape: [15, 5] });
    expect(rnn.weightSize).toBe(210 + 75 + 75 + 30);
  });
});

describe('clipping and optimizers (PyTorch formulas in plain JavaScript)', () => {
  test('clipGradNorm scales by maxNorm / (norm + 1e-6) only when the norm exceeds it', async () => {
    const g = f64([50], 2);
    const norm = Math.sqrt(g.data.reduce((a, v) => a + v * v, 0));
    const out = make(s, 'f64', [1]);
    s.clipGradNorm(g.t, norm * 2, out);
    expect((await read(out))[0]).toBeCloseTo(norm, 12);
    expect(await read(g.t)).toEqual(g.data);
    s.clipGradNorm(g.t, 1, out);
    const clipped = await read(g.t);
    clipped.forEach((v, i) => expect(v).toBeCloseTo((g.data[i] * 1) / (norm + 1e-6), 12));
  });

  test('clipValue clamps', async () => {
    const g = make(s, 'f64', [4], [-3, -0.5, 0.5, 3]);
    s.clipValue(g, 1);
    expect(await read(g)).toEqual([-1, -0.5, 0.5, 1]);
  });

  test('SGD with momentum, dampening, Nesterov and weight decay over three steps', async () => {
    for (const nesterov of [false, true]) {
      const n = 16;
      const p = f64([n]), buf = make(s, 'f64', [n]);
      const args = { lr: 0.1, momentum: 0.9, dampening: nesterov ? 0 : 0.1, weightDecay: 0.01, nesterov };
      const ref = [...p.data], refBuf = new Array(n).fill(0);
      for (let step = 1; step <= 3; step++) {
        const g = randomArray(rng, n);
        s.sgd(p.t, make(s, 'f64', [n], g), buf, { ...args, step });
        for (let i = 0; i < n; i++) {
          let d = g[i] + args.weightDecay * ref[i];
          refBuf[i] = step === 1 ? d : args.momentum * refBuf[i] + (1 - args.dampening) * d;
          d = nesterov ? d + args.momentum * refBuf[i] : refBuf[i];
          ref[i] -= args.lr * d;
        }
      }
      expect(relError(await read(p.t), ref)).toBeLessThan(1e-14);
    }
  });

  test('Adam (L2) and AdamW (decoupled) over three steps', async () => {
    for (const decoupled of [false, true]) {
      const n = 16;
      const p = f64([n]), m = make(s, 'f64', [n]), v = make(s, 'f64', [n]);
      const a = { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, decoupled };
      const ref = [...p.data], rm = new Array(n).fill(0), rv = new Array(n).fill(0);
      for (let step = 1; step <= 3; step++) {
        const g = randomArray(rng, n);
        s.adam(p.t, make(s, 'f64', [n], g), m, v, { ...a, step });
        for (let i = 0; i < n; i++) {
          let gi = g[i];
          if (decoupled) ref[i] *= 1 - a.lr * a.weightDecay;
          else gi += a.weightDecay * ref[i];
          rm[i] = a.beta1 * rm[i] + (1 - a.beta1) * gi;
          rv[i] = a.beta2 * rv[i] + (1 - a.beta2) * gi * gi;
          const mh = rm[i] / (1 - a.beta1 ** step), vh = rv[i] / (1 - a.beta2 ** step);
          ref[i] -= (a.lr * mh) / (Math.sqrt(vh) + a.eps);
        }
      }
      expect(relError(await read(p.t), ref)).toBeLessThan(1e-12);
    }
  });
});

