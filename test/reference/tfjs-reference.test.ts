// An independent reference: the same model written with @tensorflow/tfjs ops (its pure-JS
// CPU backend) and differentiated by tfjs's autodiff, on the same random weights and initial
// states, with ragged lengths and ignored targets. Loss, final states, every gradient
// (parameters and initial states) and the full log-probabilities (Network.logProbs) must agree
// with the native backend to 1e-4 in float32. The output layer is the full softmax or the
// adaptive one, written here from its formulas: every row through the head and every cluster
// (the decoder under test routes each row to its target's cluster only).
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import type { Cell } from '../../lib/backend/types';
import type { SoftmaxConfig } from '../../lib/nn/decoder';
import { Network } from '../../lib/nn/network';
import { Random } from '../../lib/util/random';
import { adaptivePartsReached, backend, randomArray, relError } from '../helpers';
import { randomIds } from '../random-batch';

const T = 6, B = 3, V = 13, E = 6, H = 5, L = 2;
const lengths = [6, 4, 2];

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/**
 * log p(. | y) [N, V]. Adaptive (nn.AdaptiveLogSoftmaxWithLoss): the head's log-softmax gives the
 * first cutoffs[0] words and, in column cutoffs[0] + i, log p(cluster i); a word of cluster i adds
 * its log-softmax within the cluster, over logits (y P_i^T) O_i^T.
 */
function referenceLogProbs(softmax: SoftmaxConfig, p: Record<string, tf.Tensor>, y: tf.Tensor) {
  if (softmax.type === 'full') return tf.logSoftmax(tf.add(tf.matMul(y, p['decoder.weight'], false, true), p['decoder.bias']));
  const c0 = softmax.cutoffs[0];
  let head = tf.matMul(y, p['decoder.head.weight'], false, true);
  if (softmax.headBias) head = tf.add(head, p['decoder.head.bias']);
  const headLogp = tf.logSoftmax(head);
  const parts = [tf.slice(headLogp, [0, 0], [-1, c0])];
  softmax.cutoffs.forEach((_, i) => {
    const projected = tf.matMul(y, p[`decoder.tail.${i}.0.weight`], false, true);
    const within = tf.logSoftmax(tf.matMul(projected, p[`decoder.tail.${i}.1.weight`], false, true));
    parts.push(tf.add(within, tf.slice(headLogp, [0, c0 + i], [-1, 1])));
  });
  return tf.concat(parts, 1);
}

/** The model in tfjs ops: time-major, state frozen and output zero after each sequence's length. */
function referenceLoss(cell: Cell, softmax: SoftmaxConfig, p: Record<string, tf.Tensor>, h0: tf.Tensor, c0: tf.Tensor, inputs: Int32Array, targets: Int32Array) {
  const gates = { lstm: 4, gru: 3, rnn_tanh: 1, rnn_relu: 1 }[cell];
  let layerInput: tf.Tensor[] = [];
  for (let t = 0; t < T; t++) layerInput.push(tf.gather(p['encoder.weight'], tf.tensor1d(inputs.slice(t * B, (t + 1) * B), 'int32')));
  const hy: tf.Tensor[] = [], cy: tf.Tensor[] = [];
  for (let l = 0; l < L; l++) {
    const Wih = p[`rnn.weight_ih_l${l}`], Whh = p[`rnn.weight_hh_l${l}`], bih = p[`rnn.bias_ih_l${l}`], bhh = p[`rnn.bias_hh_l${l}`];
    let h = tf.squeeze(tf.slice(h0, [l, 0, 0], [1, B, H]), [0]);
    let c = tf.squeeze(tf.slice(c0, [l, 0, 0], [1, B, H]), [0]);
    const outputs: tf.Tensor[] = [];
    for (let t = 0; t < T; t++) {
      const gx = tf.add(tf.matMul(layerInput[t], Wih, false, true), bih);
      const gh = tf.add(tf.matMul(h, Whh, false, true), bhh);
      let hNew: tf.Tensor, cNew = c;
      if (cell === 'lstm') {
        const [i, f, g, o] = tf.split(tf.add(gx, gh), gates, 1);
        cNew = tf.add(tf.mul(tf.sigmoid(f), c), tf.mul(tf.sigmoid(i), tf.tanh(g)));
        hNew = tf.mul(tf.sigmoid(o), tf.tanh(cNew));
      } else if (cell === 'gru') {
        const [xr, xz, xn] = tf.split(gx, 3, 1);
        const [hr, hz, hn] = tf.split(gh, 3, 1);
        const r = tf.sigmoid(tf.add(xr, hr)), z = tf.sigmoid(tf.add(xz, hz));
        const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
        hNew = tf.add(tf.mul(tf.sub(1, z), n), tf.mul(z, h));
      } else {
        const pre = tf.add(gx, gh);
        hNew = cell === 'rnn_tanh' ? tf.tanh(pre) : tf.relu(pre);
      }
      const mask = tf.tensor2d(lengths.map((len) => (t < len ? 1 : 0)), [B, 1]);
      const keep = tf.cast(mask, 'bool');
      h = tf.where(tf.broadcastTo(keep, [B, H]), hNew, h);
      c = tf.where(tf.broadcastTo(keep, [B, H]), cNew, c);
      outputs.push(tf.mul(hNew, mask));
    }
    hy.push(h);
    cy.push(c);
    layerInput = outputs;
  }
  const y = tf.concat(layerInput, 0); // [T * B, H], row t * B + b
  const logp = referenceLogProbs(softmax, p, y);
  const counted: number[] = Array.from(targets, (v) => (v === 0 ? 0 : 1));
  const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(targets, 'int32'), V)), 1);
  const loss = tf.div(tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(counted)))), counted.reduce((a: number, b: number) => a + b, 0));
  return { loss, hy: tf.stack(hy), cy: tf.stack(cy), logp };
}

const full: SoftmaxConfig = { type: 'full' };
/** Head ids 0-3, clusters 4-7 and 8-12 behind projections of floor(5 / 2) = 2 and floor(5 / 4) = 1. */
const adaptive = (headBias: boolean): SoftmaxConfig => ({ type: 'adaptive', cutoffs: [4, 8], divValue: 2, headBias });
const cases: { cell: Cell; softmax: SoftmaxConfig; what: string }[] = [
  ...(['lstm', 'gru', 'rnn_tanh', 'rnn_relu'] as Cell[]).map((cell) => ({ cell, softmax: full, what: '' })),
  ...(['lstm', 'gru'] as Cell[]).flatMap((cell) => [true, false].map((headBias) => ({ cell, softmax: adaptive(headBias), what: ` adaptive softmax, headBias ${headBias}` }))),
];

describe('native backend == tfjs autodiff on the same weights', () => {
  for (const { cell, softmax, what } of cases) {
    test(`${cell}${what}: loss, final states, every gradient and log-probabilities to 1e-4`, async () => {
      const rng = new Random(21);
      const { inputs, targets } = randomIds(rng, T, B, V, lengths);
      targets[1 * B + 0] = 0; // ignored targets inside sequences
      targets[0 * B + 2] = 0;
      // The head's words and every cluster reached by some counted target.
      if (softmax.type === 'adaptive') expect(adaptivePartsReached(targets, softmax.cutoffs)).toBe(softmax.cutoffs.length + 1);

      const net = new Network(backend, { vocabSize: V, embeddingSize: E, hiddenSize: H, layers: L, cell, dropout: 0, tieWeights: false, dtype: 'f32', paddingIdx: 0, softmax });
      try {
        if (softmax.type === 'adaptive') {
          // PyTorch's shapes (its hsz = in_features // div_value ** (i + 1)), which the reference takes from the layout.
          const c0 = softmax.cutoffs[0], ends = [...softmax.cutoffs, V];
          const expected: [string, number[]][] = [['decoder.head.weight', [c0 + softmax.cutoffs.length, H]]];
          if (softmax.headBias) expected.push(['decoder.head.bias', [c0 + softmax.cutoffs.length]]);
          softmax.cutoffs.forEach((lo, i) => {
            const d = Math.floor(H / softmax.divValue ** (i + 1));
            expected.push([`decoder.tail.${i}.0.weight`, [d, H]], [`decoder.tail.${i}.1.weight`, [ends[i + 1] - lo, d]]);
          });
          expect(net.layout.filter((e) => e.name.startsWith('decoder.')).map((e) => [e.name, e.shape])).toEqual(expected);
        }
        const values: Record<string, Float32Array> = {};
        for (const e of net.layout) {
          values[e.name] = Float32Array.from(randomArray(rng, e.shape.reduce((a, b) => a * b, 1), e.name.startsWith('rnn.') ? 0.5 : 0.3));
          net.writeParam(e.name, values[e.name]);
        }
        const h0v = Float32Array.from(randomArray(rng, L * B * H, 0.5)), c0v = Float32Array.from(randomArray(rng, L * B * H, 0.5));
        const batch = { seqLength: T, batchSize: B, inputs, targets, lengths: Int32Array.from(lengths) };
        const st = net.state(B);
        net.stream.write(st.hx, h0v);
        net.stream.write(st.cx, c0v);
        net.zeroGrad();
        net.forward(batch, { training: true, seed: 1 });
        net.backward({ stateGrads: true });
        const ours = { loss: (await net.readLoss()).loss, hy: await net.stream.read(st.hy), cy: await net.stream.read(st.cy), dh0: await net.stream.read(st.dhx), dc0: await net.stream.read(st.dcx) };
        // Inference from the same initial states (hx is untouched by the training pass).
        const logp = await net.stream.read(net.logProbs(inputs, T, B, batch.lengths));

        const names = net.layout.map((e) => e.name);
        const shapes = Object.fromEntries(net.layout.map((e) => [e.name, e.shape]));
        const h0 = tf.tensor3d(h0v, [L, B, H]), c0 = tf.tensor3d(c0v, [L, B, H]);
        const paramTensors = names.map((n) => tf.tensor(values[n], shapes[n]));
        const lstm = cell === 'lstm';
        const f = (...xs: tf.Tensor[]) => {
          const p = Object.fromEntries(names.map((n, i) => [n, xs[i]]));
          return referenceLoss(cell, softmax, p, xs[names.length], lstm ? xs[names.length + 1] : c0, inputs, targets).loss as tf.Scalar;
        };
        // Other cells never read c0, and tfjs refuses to differentiate with respect to an unused input.
        const grads = tf.grads(f)(lstm ? [...paramTensors, h0, c0] : [...paramTensors, h0]);
        const ref = referenceLoss(cell, softmax, Object.fromEntries(names.map((n, i) => [n, paramTensors[i]])), h0, c0, inputs, targets);

        const errors: Record<string, number> = {
          loss: Math.abs(ours.loss - ref.loss.dataSync()[0]) / Math.abs(ref.loss.dataSync()[0]),
          hy: relError(ours.hy, ref.hy.dataSync()),
          dh0: relError(ours.dh0, grads[names.length].dataSync()),
          logProbs: relError(logp, ref.logp.dataSync()),
        };
        if (lstm) {
          errors.cy = relError(ours.cy, ref.cy.dataSync());
          errors.dc0 = relError(ours.dc0, grads[names.length + 1].dataSync());
        }
        for (let i = 0; i < names.length; i++) errors[`d ${names[i]}`] = relError(await net.readGrad(names[i]), grads[i].dataSync());
        for (const [quantity, err] of Object.entries(errors)) expect.soft(err, `${cell}${what}: ${quantity}`).toBeLessThanOrEqual(1e-4);
        console.log(`tfjs reference ${cell}${what}: max relative error ${Math.max(...Object.values(errors)).toExponential(2)} over ${Object.keys(errors).length} quantities`);
        tf.disposeVariables();
      } finally {
        net.dispose();
      }
    });
  }
});
