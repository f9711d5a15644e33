// Compute runs on the model's native stream thread: while two full training steps of the
// zaremba-medium shape (LSTM 2 x 650, vocabulary 10,000, batch 20 x 35) run, the JavaScript
// thread only enqueues, and a 10 ms interval timer keeps firing. The bounds are fractions of
// the steps' own duration, not milliseconds: work on the JavaScript thread would take a step's
// time (about half of the whole), while a loaded 2-core CI machine under ASan may delay a timer
// by a few hundred milliseconds without anything blocking it.
import { expect, test } from 'vitest';
import { Network } from '../../lib/nn/network';
import { Optimizer } from '../../lib/nn/optimizer';
import { Random } from '../../lib/util/random';
import { backend } from '../helpers';

test('the event loop stays responsive during a zaremba-medium training step', async () => {
  const V = 10000, T = 35, B = 20;
  const net = new Network(backend, {
    vocabSize: V, embeddingSize: 650, hiddenSize: 650, layers: 2, cell: 'lstm',
    dropout: 0.5, tieWeights: false, dtype: 'f32', paddingIdx: 0,
  });
  const opt = new Optimizer(net.stream, { type: 'adam', lr: 1e-3 }, net.parameterCount, 'f32');
  try {
    net.initialize(1);
    const rng = new Random(2);
    const ids = () => Int32Array.from({ length: T * B }, () => 1 + Math.floor(rng.next() * (V - 1)));
    const batch = { seqLength: T, batchSize: B, inputs: ids(), targets: ids() };
    let syncMs = 0; // time the JavaScript thread spends inside the step's calls
    const step = async () => {
      const s0 = performance.now();
      net.zeroGrad();
      net.forward(batch, { training: true, seed: 3 });
      net.backward();
      net.clipGradNorm(0.25);
      opt.apply(net.allParams, net.allGrads);
      const loss = net.readLoss();
      syncMs += performance.now() - s0;
      return loss;
    };
    await step(); // warm-up: arena allocation, page faults
    syncMs = 0;

    let last = performance.now();
    let worst = 0, ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last - 10);
      last = now;
      ticks++;
    }, 10);
    const t0 = performance.now();
    const { loss } = await step();
    await step();
    const elapsed = performance.now() - t0;
    clearInterval(timer);
    console.log(`two zaremba-medium steps took ${elapsed.toFixed(0)} ms (${syncMs.toFixed(1)} ms of it in the calls); ` +
      `${ticks} timer ticks, worst lateness ${worst.toFixed(1)} ms`);
    expect(Number.isFinite(loss)).toBe(true);
    expect(syncMs).toBeLessThan(elapsed / 10); // the calls enqueue; the stream computes
    expect(ticks).toBeGreaterThan(elapsed / 10 / 3); // the timer really ran during the steps
    expect(worst).toBeLessThan(elapsed / 4); // no stall near a step's length
  } finally {
    opt.dispose();
    net.dispose();
  }
}, 120_000);
