// The adaptive softmax's decoder (lib/nn/decoder.ts) against a host reference written from
// nn.AdaptiveLogSoftmaxWithLoss's formulas in float64: the full log-probabilities, the loss of the
// gathered cluster rows, chunked passes equal to unchunked ones, and batch invariance. (The
// gradients are proven by finite differences and tfjs in gradcheck-network and tfjs-reference;
// PyTorch's own module in pytorch-fixtures.)
import { afterAll, describe, expect, test } from 'vitest';
import { tensor, type FloatArray, type Tensor } from '../../lib/backend/types';
import { clustersOf, createDecoder, type AdaptiveSoftmaxConfig } from '../../lib/nn/decoder';
import { Network } from '../../lib/nn/network';
import { Scratch } from '../../lib/nn/scratch';
import { Random } from '../../lib/util/random';
import { backend, randomArray, relError } from '../helpers';

const V = 23, H = 8, N = 40;
const softmax = (headBias: boolean): AdaptiveSoftmaxConfig => ({ type: 'adaptive', cutoffs: [5, 11, 17], divValue: 2, headBias });
const nets: Network[] = [];
afterAll(() => nets.forEach((n) => n.dispose()));

/** A network whose decoder has random weights, and random decoder inputs x [N, H]. */
function setup(dtype: 'f32' | 'f64', headBias: boolean) {
  const net = new Network(backend, { vocabSize: V, embeddingSize: 4, hiddenSize: H, layers: 1, cell: 'lstm', dropout: 0, tieWeights: false, dtype, paddingIdx: -1, softmax: softmax(headBias) });
  nets.push(net);
  const rng = new Random(5);
  const cast = (a: number[]) => (dtype === 'f64' ? Float64Array.from(a) : Float32Array.from(a));
  const weights: Record<string, number[]> = {};
  for (const e of net.layout) {
    weights[e.name] = randomArray(rng, e.shape.reduce((a, b) => a * b, 1), 0.7);
    net.writeParam(e.name, cast(weights[e.name]));
  }
  const xs = randomArray(rng, N * H, 1.5);
  const x = tensor(net.stream.alloc(dtype, N * H), 0, [N, H]);
  net.stream.write(x, cast(xs));
  return { net, weights, xs, x };
}

/** log p(w | x) for every w, from the formulas, in float64 on the host. */
function reference(weights: Record<string, number[]>, x: number[], headBias: boolean): number[] {
  const sm = softmax(headBias);
  const clusters = clustersOf(sm, V, H);
  const c0 = sm.cutoffs[0], K = clusters.length;
  const matvec = (W: number[], rows: number, v: number[]) => Array.from({ length: rows }, (_, r) => v.reduce((a, vi, j) => a + W[r * v.length + j] * vi, 0));
  const logSoftmax = (z: number[]) => {
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    return z.map((v) => v - lse);
  };
  const head = matvec(weights['decoder.head.weight'], c0 + K, x).map((v, i) => v + (headBias ? weights['decoder.head.bias'][i] : 0));
  const hl = logSoftmax(head);
  const out = hl.slice(0, c0);
  clusters.forEach((k, i) => {
    const p = matvec(weights[`decoder.tail.${i}.0.weight`], k.proj, x);
    const cl = logSoftmax(matvec(weights[`decoder.tail.${i}.1.weight`], k.hi - k.lo, p));
    out.push(...cl.map((v) => v + hl[c0 + i]));
  });
  return out;
}

const read = async (net: Network, t: Tensor) => (await net.stream.read(t)) as FloatArray;

describe('adaptive softmax decoder', () => {
  for (const headBias of [false, true]) {
    test(`logProbs equals the formulas (float64 to 1e-12), each row a distribution (headBias ${headBias})`, async () => {
      const { net, weights, xs, x } = setup('f64', headBias);
      const out = tensor(net.stream.alloc('f64', N * V), 0, [N, V]);
      net.decoder.logProbs(x, out);
      const lp = await read(net, out);
      let worst = 0;
      for (let n = 0; n < N; n++) {
        const ref = reference(weights, xs.slice(n * H, (n + 1) * H), headBias);
        worst = Math.max(worst, relError(lp.subarray(n * V, (n + 1) * V), ref));
        const total = Array.from(lp.subarray(n * V, (n + 1) * V)).reduce((a, v) => a + Math.exp(v), 0);
        expect(Math.abs(total - 1)).toBeLessThan(1e-12);
      }
      expect(worst).toBeLessThan(1e-12);
    });
  }

  test('loss of the gathered rows = mean of -log p(target) from the full distribution; chunks of one row give the same loss and gradients', async () => {
    const { net, x } = setup('f64', true);
    const rng = new Random(9);
    const ignore = 3;
    // Targets in the head, in every cluster, and ignored ones.
    const targets = Int32Array.from({ length: N }, (_, n) => (n % 7 === 0 ? ignore : Math.floor(rng.next() * V)));
    for (const [i, t] of [[1, 0], [2, 5], [4, 10], [5, 11], [6, 16], [8, 17], [9, 22]]) targets[i] = t;
    const out = tensor(net.stream.alloc('f64', N * V), 0, [N, V]);
    net.decoder.logProbs(x, out);
    const lp = await read(net, out);
    let nll = 0, count = 0;
    for (let n = 0; n < N; n++) if (targets[n] !== ignore) nll -= lp[n * V + targets[n]], count++;

    const run = async (decoder: typeof net.decoder) => {
      const loss = tensor(net.stream.alloc('f64', 2), 0, [2]);
      const dx = tensor(net.stream.alloc('f64', N * H), 0, [N, H]);
      net.zeroGrad();
      decoder.loss(x, targets, ignore, loss, dx);
      const grads: Record<string, FloatArray> = {};
      for (const e of net.layout) if (e.name.startsWith('decoder.')) grads[e.name] = await net.readGrad(e.name);
      return { loss: await read(net, loss), dx: await read(net, dx), grads };
    };
    const whole = await run(net.decoder);
    // 7 elements: one row per chunk for clusters of 6 ids.
    const chunked = await run(createDecoder(net.config.softmax!, net, new Scratch(net.stream, 'f64'), V, H, 7));
    expect(whole.loss[1]).toBe(count);
    expect(Math.abs(whole.loss[0] - nll / count)).toBeLessThan(1e-12);
    expect(Array.from(chunked.loss)).toEqual(Array.from(whole.loss).map((v, i) => (i === 0 ? expect.closeTo(v, 12) : v)));
    expect(relError(chunked.dx, whole.dx)).toBeLessThan(1e-13);
    for (const name of Object.keys(whole.grads)) expect(relError(chunked.grads[name], whole.grads[name]), name).toBeLessThan(1e-13);
    // Every decoder tensor got a gradient (each cluster had a target).
    for (const [name, g] of Object.entries(whole.grads)) expect(g.some((v) => v !== 0), name).toBe(true);
  });

  test('a row alone and in a batch: the same bits (batchInvariant, float32)', async () => {
    const { net, x } = setup('f32', true);
    const all = tensor(net.stream.alloc('f32', N * V), 0, [N, V]);
    const one = tensor(net.stream.alloc('f32', V), 0, [1, V]);
    net.decoder.logProbs(x, all, { batchInvariant: true });
    const batch = await read(net, all);
    for (const n of [0, 17, N - 1]) {
      net.decoder.logProbs(tensor(x.buffer, n * H, [1, H]), one, { batchInvariant: true });
      const alone = await read(net, one);
      expect(Buffer.from(alone.buffer, alone.byteOffset, alone.byteLength).equals(Buffer.from(batch.buffer, batch.byteOffset + n * V * 4, V * 4)), `row ${n}`).toBe(true);
    }
  });
});
