// Finite-difference check of the whole loss (embedding -> 2-layer recurrent stack -> decoder
// -> masked cross-entropy) with respect to every parameter tensor and the initial states,
// for each cell, with ragged lengths, padding and dropout under a fixed mask.
// float64 runs the same C++ templates as float32 and must match central differences to
// 1e-6; the float32 run's gradients, on the same weights, must match those differences to a
// looser 1e-4 (finite differences taken in float32 itself would measure rounding, not the code).
import { describe, expect, test } from 'vitest';
import type { Cell, FloatArray } from '../../lib/backend/types';
import { Network } from '../../lib/nn/network';
import { Random } from '../../lib/util/random';
import { backend, numericGrad, randomArray, relError } from '../helpers';

const cells: Cell[] = ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'];
const T = 5, B = 3, V = 11, E = 5, H = 4, L = 2;
const seed = 1234; // fixed dropout masks

function raggedBatch() {
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

/** A network with reproducible weights and initial states, and its analytic gradients. */
async function setup(cell: Cell, dtype: 'f32' | 'f64') {
  const net = new Network(backend, {
    vocabSize: V, embeddingSize: E, hiddenSize: H, layers: L, cell,
    dropout: 0.3, tieWeights: false, dtype, paddingIdx: 0,
  });
  const cast = (a: number[]) => (dtype === 'f64' ? Float64Array.from(a) : Float32Array.from(a));
  const rng = new Random(11);
  for (const e of net.layout) {
    net.writeParam(e.name, cast(randomArray(rng, e.shape.reduce((a, b) => a * b), e.name.startsWith('rnn.') ? 0.6 : 0.3)));
  }
  const batch = raggedBatch();
  net.forward(batch, { training: true, seed }); // makes the arena and its state tensors
  const st = net.state(B);
  const h0 = randomArray(rng, L * B * H, 0.5), c0 = randomArray(rng, L * B * H, 0.5);
  net.stream.write(st.hx, cast(h0));
  net.stream.write(st.cx, cast(c0));
  const loss = async () => {
    net.forward(batch, { training: true, seed });
    return (await net.readLoss()).loss;
  };
  net.zeroGrad();
  await loss();
  net.backward({ stateGrads: true });
  const analytic: Record<string, FloatArray> = {};
  for (const e of net.layout) analytic[e.name] = await net.readGrad(e.name);
  analytic.h0 = (await net.stream.read(st.dhx)) as FloatArray;
  if (cell === 'lstm') analytic.c0 = (await net.stream.read(st.dcx)) as FloatArray;
  const inputs: Record<string, { tensor: ReturnType<Network['param']>; base: ArrayLike<number> }> = {};
  for (const e of net.layout) inputs[e.name] = { tensor: net.param(e.name), base: await net.readParam(e.name) };
  inputs.h0 = { tensor: st.hx, base: h0 };
  if (cell === 'lstm') inputs.c0 = { tensor: st.cx, base: c0 };
  return { net, loss, analytic, inputs };
}

describe('whole-network gradients by finite differences', () => {
  for (const cell of cells) {
    test(`${cell}: float64 <= 1e-6, float32 <= 1e-4`, async () => {
      const f64 = await setup(cell, 'f64');
      const f32 = await setup(cell, 'f32');
      try {
        let worst64 = 0, worst32 = 0;
        for (const [name, { tensor, base }] of Object.entries(f64.inputs)) {
          const numeric = await numericGrad(f64.net.stream, tensor, 'f64', base, f64.loss, 1e-5);
          if (name === 'encoder.weight') {
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
        console.log(`gradcheck ${cell}: max relative error f64 ${worst64.toExponential(2)}, f32 ${worst32.toExponential(2)}`);
      } finally {
        f64.net.dispose();
        f32.net.dispose();
      }
    });
  }
});
