// Finite-difference check of the whole loss (embedding -> 2-layer recurrent stack -> decoder
// -> masked cross-entropy) with respect to every parameter tensor and the initial states,
// for each cell, with ragged lengths, padding and dropout under a fixed mask; then the same
// with the adaptive softmax (head and every cluster reached by some target, with and without
// the head's bias); then with AWD-LSTM's regularizers (whole words dropped from the embedding,
// locked dropout on the embedding output, between the layers and on the output, weight drop on
// every weight_hh, AR + TAR added to the objective), tied and untied, on a stream batch (AR and TAR
// need whole time steps): with the masks fixed by the seed the objective is a smooth function of
// the raw parameters, so every analytic gradient must match central differences the same way.
// float64 runs the same C++ templates as float32 and must match central differences to
// 1e-6; the float32 run's gradients, on the same weights, must match those differences to a
// looser 1e-4 (finite differences taken in float32 itself would measure rounding, not the code).
import { describe, expect, test } from 'vitest';
import type { Cell, FloatArray } from '../../lib/backend/types';
import type { SoftmaxConfig } from '../../lib/nn/decoder';
import { Network } from '../../lib/nn/network';
import { Random } from '../../lib/util/random';
import { adaptivePartsReached, backend, numericGrad, randomArray, relError } from '../helpers';

const cells: Cell[] = ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'];
const T = 5, B = 3, E = 5, H = 4, L = 2;
const seed = 1234; // fixed dropout masks

/** A model's output layer and vocabulary size. */
interface Output {
  V: number;
  softmax: SoftmaxConfig;
}
const full: Output = { V: 11, softmax: { type: 'full' } };
/** Head ids 0-3 (and two cluster entries), clusters 4-7 and 8-12 behind projections of 2 and 1. */
const adaptive = (headBias: boolean): Output => ({ V: 13, softmax: { type: 'adaptive', cutoffs: [4, 8], divValue: 2, headBias } });

function raggedBatch(V: number) {
  const lengths = Int32Array.from([5, 3, 2]);
  const rng = new Random(7);
  const inputs = new Int32Array(T * B), targets = new Int32Array(T * B);
  for (let t = 0; t < T; t++)
    for (let b = 0; b < B; b++) {
      const valid = t < lengths[b];
      inputs[t * B + b] = valid ? 1 + Math.floor(rng.next() * (V - 1)) : 0; // 0 = <pad>
      targets[t * B + b] = valid ? 1 + Math.floor(rng.next() * (V - 1)) : 0;
    }
  inputs[1 * B + 0] = 0; // a pad token inside a sequence: its embedding row gets no gradient
  targets[2 * B + 0] = 0; // an ignored target inside a sequence
  return { seqLength: T, batchSize: B, inputs, targets, lengths };
}

/** AWD-LSTM's regularizers and the weights of AR and TAR, for the regularized cases. */
const AWD = { dropoutEmbedding: 0.3, dropoutInput: 0.4, dropoutHidden: 0.3, dropoutOutput: 0.35, lockedDropout: true, weightDrop: 0.5 };
const AR = 2, TAR = 1;

/** A stream batch (no padding), with one word three times: its word-dropout mask is shared. */
function streamBatch(V: number) {
  const rng = new Random(9);
  const ids = () => Int32Array.from({ length: T * B }, () => 1 + Math.floor(rng.next() * (V - 1)));
  const inputs = ids();
  inputs[3] = inputs[7] = inputs[12];
  return { seqLength: T, batchSize: B, inputs, targets: ids() };
}

/** A network with reproducible weights and initial states, and its analytic gradients. */
async function setup(cell: Cell, dtype: 'f32' | 'f64', { V, softmax }: Output, awd = false, tieWeights = false, layerwise = false) {
  const net = new Network(backend, {
    vocabSize: V, embeddingSize: E, hiddenSize: awd ? E : H, layers: L, cell,
    dropout: 0.3, tieWeights, dtype, paddingIdx: 0, softmax, ...(awd ? AWD : {}), layerwise,
  });
  const Hn = net.config.hiddenSize;
  const cast = (a: number[]) => (dtype === 'f64' ? Float64Array.from(a) : Float32Array.from(a));
  const rng = new Random(11);
  for (const e of net.layout) {
    if (tieWeights && e.name === 'decoder.weight') continue;
    net.writeParam(e.name, cast(randomArray(rng, e.shape.reduce((a, b) => a * b), e.name.startsWith('rnn.') ? 0.6 : 0.3)));
  }
  const batch = awd ? streamBatch(V) : raggedBatch(V);
  net.forward(batch, { training: true, seed }); // makes the arena and its state tensors
  const st = net.state(B);
  const h0 = randomArray(rng, L * B * Hn, 0.5), c0 = randomArray(rng, L * B * Hn, 0.5);
  net.stream.write(st.hx, cast(h0));
  net.stream.write(st.cx, cast(c0));
  // The objective: the cross-entropy, plus AR and TAR (whose value backward computes) when regularized.
  const loss = async () => {
    if (!awd) {
      net.forward(batch, { training: true, seed });
      return (await net.readLoss()).loss;
    }
    net.zeroGrad();
    net.forward(batch, { training: true, seed });
    net.backward({ ar: AR, tar: TAR });
    return (await net.readLoss()).loss + (await net.readPenalty());
  };
  net.zeroGrad();
  net.forward(batch, { training: true, seed });
  net.backward({ stateGrads: true, ...(awd ? { ar: AR, tar: TAR } : {}) });
  const penalty = await net.readPenalty();
  const analytic: Record<string, FloatArray> = {};
  for (const e of net.layout) analytic[e.name] = await net.readGrad(e.name);
  analytic.h0 = (await net.stream.read(st.dhx)) as FloatArray;
  if (cell === 'lstm') analytic.c0 = (await net.stream.read(st.dcx)) as FloatArray;
  const inputs: Record<string, { tensor: ReturnType<Network['param']>; base: ArrayLike<number> }> = {};
  for (const e of net.layout) if (!(tieWeights && e.name === 'decoder.weight')) inputs[e.name] = { tensor: net.param(e.name), base: await net.readParam(e.name) };
  inputs.h0 = { tensor: st.hx, base: h0 };
  if (cell === 'lstm') inputs.c0 = { tensor: st.cx, base: c0 };
  return { net, loss, analytic, inputs, batch, penalty };
}

const cases: { cell: Cell; output: Output; what: string; awd?: boolean; tie?: boolean; layerwise?: boolean }[] = [
  ...cells.map((cell) => ({ cell, output: full, what: '' })),
  ...(['lstm', 'gru'] as Cell[]).flatMap((cell) => [true, false].map((headBias) => ({
    cell, output: adaptive(headBias), what: ` adaptive softmax, headBias ${headBias}`,
  }))),
  ...cells.map((cell) => ({ cell, output: full, what: `, AWD-LSTM regularizers, AR ${AR}, TAR ${TAR}`, awd: true })),
  { cell: 'lstm', output: full, what: `, AWD-LSTM regularizers, AR ${AR}, TAR ${TAR}, tied`, awd: true, tie: true },
  // The stack trained one layer at a time (nn/layerwise.ts: CUDA's path for locked dropout between layers).
  ...(['lstm', 'gru'] as Cell[]).map((cell) => ({ cell, output: full, what: `, AWD-LSTM regularizers, AR ${AR}, TAR ${TAR}, layer by layer`, awd: true, layerwise: true })),
];

describe('whole-network gradients by finite differences', () => {
  for (const { cell, output, what, awd = false, tie = false, layerwise = false } of cases) {
    test(`${cell}${what}: float64 <= 1e-6, float32 <= 1e-4`, async () => {
      const f64 = await setup(cell, 'f64', output, awd, tie, layerwise);
      const f32 = await setup(cell, 'f32', output, awd, tie, layerwise);
      try {
        // The regularized objective has every term live: AR + TAR is not zero.
        if (awd) expect(f64.penalty).toBeGreaterThan(0);
        if (output.softmax.type === 'adaptive') {
          // Every part of the decoder must be on the gradient's path for the check to cover it.
          expect(adaptivePartsReached(f64.batch.targets, output.softmax.cutoffs)).toBe(output.softmax.cutoffs.length + 1);
          expect(f64.net.layout.some((e) => e.name === 'decoder.head.bias')).toBe(output.softmax.headBias);
        }
        let worst64 = 0, worst32 = 0;
        for (const [name, { tensor, base }] of Object.entries(f64.inputs)) {
          const numeric = await numericGrad(f64.net.stream, tensor, 'f64', base, f64.loss, 1e-5);
          if (name === 'encoder.weight' && !tie) {
            // The <pad> row (id 0) is used in the forward pass but, by design, gets no gradient.
            expect(Array.from(f64.analytic[name].subarray(0, E))).toEqual(new Array(E).fill(0));
            expect(Array.from(f32.analytic[name].subarray(0, E))).toEqual(new Array(E).fill(0));
            numeric.fill(0, 0, E);
          }
          const e64 = relError(f64.analytic[name], numeric);
          const e32 = relError(f32.analytic[name], numeric);
          expect.soft(e64, `${cell} f64 d loss / d ${name}`).toBeLessThanOrEqual(1e-6);
          expect.soft(e32, `${cell} f32 d loss / d ${name}`).toBeLessThanOrEqual(1e-4);
          worst64 = Math.max(worst64, e64);
          worst32 = Math.max(worst32, e32);
        }
        console.log(`gradcheck ${cell}${what}: max relative error f64 ${worst64.toExponential(2)}, f32 ${worst32.toExponential(2)}`);
      } finally {
        f64.net.dispose();
        f32.net.dispose();
      }
    });
  }
});
