// Finite-difference check of the AWD-LSTM regularizers (Merity et al. 2017) in the whole network:
// whole words dropped from the embedding, locked dropout on the embedding output, between the
// layers and on the output, DropConnect on every weight_hh (weight drop), and AR + TAR added to
// the loss. The masks are fixed by the seed, so the loss (cross-entropy + AR + TAR) is a smooth
// function of the raw parameters and the initial states, and every analytic gradient must match
// central differences: float64 to 1e-6, float32 (same weights) to 1e-4, as gradcheck-network.
import { describe, expect, test } from 'vitest';
import type { Cell, FloatArray } from '../../lib/backend/types';
import { Network } from '../../lib/nn/network';
import { Random } from '../../lib/util/random';
import { backend, numericGrad, randomArray, relError } from '../helpers';

const T = 5, B = 3, E = 5, H = 5, L = 2, V = 11;
const seed = 4321;
const AR = 2, TAR = 1;
const regularized = {
  dropout: 0, dropoutEmbedding: 0.3, dropoutInput: 0.4, dropoutHidden: 0.3, dropoutOutput: 0.35,
  lockedDropout: true, weightDrop: 0.5,
};

function streamBatch() {
  const rng = new Random(9);
  const ids = () => Int32Array.from({ length: T * B }, () => 1 + Math.floor(rng.next() * (V - 1)));
  const inputs = ids();
  inputs[3] = inputs[7] = inputs[12]; // one word three times: its word-dropout mask is shared
  return { seqLength: T, batchSize: B, inputs, targets: ids() };
}

async function setup(cell: Cell, dtype: 'f32' | 'f64', tieWeights: boolean) {
  const net = new Network(backend, {
    vocabSize: V, embeddingSize: E, hiddenSize: H, layers: L, cell, tieWeights, dtype, paddingIdx: 0, ...regularized,
  });
  const cast = (a: number[]) => (dtype === 'f64' ? Float64Array.from(a) : Float32Array.from(a));
  const rng = new Random(12);
  for (const e of net.layout) {
    if (e.name === 'decoder.weight' && tieWeights) continue;
    net.writeParam(e.name, cast(randomArray(rng, e.shape.reduce((a, b) => a * b), e.name.startsWith('rnn.') ? 0.6 : 0.4)));
  }
  const batch = streamBatch();
  net.forward(batch, { training: true, seed });
  const st = net.state(B);
  const h0 = randomArray(rng, L * B * H, 0.5), c0 = randomArray(rng, L * B * H, 0.5);
  net.stream.write(st.hx, cast(h0));
  net.stream.write(st.cx, cast(c0));
  // The objective: cross-entropy plus AR and TAR (whose value backward computes).
  const objective = async (stateGrads = false) => {
    net.zeroGrad();
    net.forward(batch, { training: true, seed });
    net.backward({ stateGrads, ar: AR, tar: TAR });
    return (await net.readLoss()).loss + (await net.readPenalty());
  };
  await objective(true);
  const analytic: Record<string, FloatArray> = {};
  for (const e of net.layout) analytic[e.name] = await net.readGrad(e.name);
  analytic.h0 = (await net.stream.read(st.dhx)) as FloatArray;
  if (cell === 'lstm') analytic.c0 = (await net.stream.read(st.dcx)) as FloatArray;
  const inputs: Record<string, { tensor: ReturnType<Network['param']>; base: ArrayLike<number> }> = {};
  for (const e of net.layout) if (!(tieWeights && e.name === 'decoder.weight')) inputs[e.name] = { tensor: net.param(e.name), base: await net.readParam(e.name) };
  inputs.h0 = { tensor: st.hx, base: h0 };
  if (cell === 'lstm') inputs.c0 = { tensor: st.cx, base: c0 };
  return { net, objective, analytic, inputs };
}

const cases: { cell: Cell; tie: boolean }[] = [
  { cell: 'lstm', tie: false }, { cell: 'lstm', tie: true }, { cell: 'gru', tie: false },
  { cell: 'rnn_tanh', tie: false }, { cell: 'rnn_relu', tie: false },
];

describe('AWD-LSTM regularizers: whole-network gradients by finite differences', () => {
  for (const { cell, tie } of cases) {
    test(`${cell}${tie ? ' (tied)' : ''}: word, locked and weight dropout, AR ${AR}, TAR ${TAR}: float64 <= 1e-6, float32 <= 1e-4`, async () => {
      const f64 = await setup(cell, 'f64', tie);
      const f32 = await setup(cell, 'f32', tie);
      try {
        // Every term is live: the penalty is not zero, and dropping changes the loss.
        const penalty = await f64.net.readPenalty();
        expect(penalty).toBeGreaterThan(0);
        let worst64 = 0, worst32 = 0;
        for (const [name, { tensor, base }] of Object.entries(f64.inputs)) {
          const numeric = await numericGrad(f64.net.stream, tensor, 'f64', base, () => f64.objective(), 1e-5);
          const e64 = relError(f64.analytic[name], numeric);
          const e32 = relError(f32.analytic[name], numeric);
          expect.soft(e64, `${cell} f64 d objective / d ${name}`).toBeLessThanOrEqual(1e-6);
          expect.soft(e32, `${cell} f32 d objective / d ${name}`).toBeLessThanOrEqual(1e-4);
          worst64 = Math.max(worst64, e64);
          worst32 = Math.max(worst32, e32);
        }
        console.log(`gradcheck regularized ${cell}${tie ? ' tied' : ''}: penalty ${penalty.toFixed(4)}, max relative error f64 ${worst64.toExponential(2)}, f32 ${worst32.toExponential(2)}`);
      } finally {
        f64.net.dispose();
        f32.net.dispose();
      }
    }, 120_000);
  }
});
