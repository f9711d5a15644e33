// Steps captured as graphs and replayed (issue 26, item 1), on the CPU: its twin of CUDA graphs
// keeps a capture's ops and runs them again, with the arguments they were queued with — CUDA's
// rule, so a per-step value left in an op's arguments breaks the CPU the same way. Here: the
// stream's capture / replay and its refusals; the optimizers' live lr and step; a training loop
// and fit() with RNNLM_GRAPHS=1 against the same without, bit for bit; and the control that
// shows the comparison would catch a frozen argument. CUDA's capture is the GPU check's.
import { afterEach, expect, test } from 'vitest';
import { cpuBackend, Network } from '../../lib/advanced';
import { tensor } from '../../lib/backend/types';
import { MAX_GRAPHS, StepGraphs } from '../../lib/nn/graphs';
import { Optimizer, type OptimizerOptions } from '../../lib/nn/optimizer';
import type { Batch } from '../../lib/nn/network';
import { LanguageModel, networkOf } from '../../lib/model';
import { Random } from '../../lib/util/random';
import { errorOf, make } from '../helpers';

afterEach(() => {
  delete process.env.RNNLM_GRAPHS;
});

test('a replay runs the captured ops again on what the buffers hold then; between begin and end only compute ops', async () => {
  const s = cpuBackend.createStream();
  const rng = new Random(3);
  const x = make(s, 'f32', [3, 4], Array.from({ length: 12 }, () => rng.next() - 0.5));
  const W = make(s, 'f32', [5, 4], Array.from({ length: 20 }, () => rng.next() - 0.5));
  const y = make(s, 'f32', [3, 5]), z = make(s, 'f32', [3, 5]);
  const before = s.allocations;
  s.captureBegin();
  s.linearForward(x, W, null, y);
  s.copy(y, z);
  for (const [what, call] of [
    ['write', () => s.write(x, new Float32Array(12))],
    ['alloc', () => s.alloc('f32', 4)],
    ['read', () => s.read(z)],
    ['sync', () => s.sync()],
    ['replay', () => s.replay(1)],
    ['captureBegin', () => s.captureBegin()],
  ] as const) {
    expect(errorOf(call)).toMatch(new RegExp(`ERR_INVALID_ARGUMENT: ${what}: not while a graph is being captured`));
  }
  const id = s.captureEnd();
  expect(s.allocations).toBe(before);
  // Reference: the same ops queued one by one, on another pair of inputs.
  const expected = async (xs: Float32Array) => {
    const r = cpuBackend.createStream();
    const out = make(r, 'f32', [3, 5]);
    r.linearForward(make(r, 'f32', [3, 4], xs), make(r, 'f32', [5, 4], (await s.read(W)) as Float32Array), null, out);
    const v = await r.read(out);
    r.dispose();
    return v;
  };
  expect(await s.read(z)).toEqual(await expected((await s.read(x)) as Float32Array));
  const x2 = Float32Array.from({ length: 12 }, () => rng.next() * 2 - 1);
  s.write(x, x2);
  s.fill(z, 0);
  s.replay(id);
  expect(await s.read(z)).toEqual(await expected(x2));
  expect(s.allocations).toBe(before);
  expect(errorOf(() => s.captureEnd())).toMatch(/captureEnd: no capture in progress/);
  s.releaseGraph(id);
  expect(errorOf(() => s.replay(id))).toMatch(/replay: no graph \d+ on this stream/);
  s.alloc('f32', 1);
  expect(s.allocations).toBe(before + 1);
  s.dispose();
});

test("the optimizers' live lr and step: read when the update runs, so a replayed update takes each step's", async () => {
  for (const options of [{ type: 'adam', lr: 0.01 }, { type: 'adamw', lr: 0.02, weightDecay: 0.1 }, { type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true }] as OptimizerOptions[]) {
    const run = async (captured: boolean) => {
      const s = cpuBackend.createStream();
      const rng = new Random(9);
      const n = 50;
      const p = make(s, 'f32', [n], Array.from({ length: n }, () => rng.next() - 0.5));
      const g = make(s, 'f32', [n]);
      const opt = new Optimizer(s, options, n, 'f32');
      const graphs = new StepGraphs(s);
      for (let step = 0; step < 6; step++) {
        s.write(g, Float32Array.from({ length: n }, () => rng.next() - 0.5));
        if (step === 3) opt.lr /= 2; // a schedule's change
        opt.prepare();
        if (captured) graphs.run('step', () => opt.update(p, g));
        else opt.update(p, g);
      }
      const out = await s.read(p);
      if (captured) expect(graphs.counts).toEqual({ ran: 1, captured: 1, replayed: 4 });
      opt.dispose();
      s.dispose();
      return out;
    };
    expect(await run(true)).toEqual(await run(false));
  }
  const s = cpuBackend.createStream();
  const p = make(s, 'f32', [4]);
  expect(errorOf(() => s.adam(p, make(s, 'f32', [4]), make(s, 'f32', [4]), make(s, 'f32', [4]), { lr: 1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, decoupled: false, step: 1 }, null, make(s, 'f32', [4]))))
    .toMatch(/adam: live must be i32 \[4\] \(lr and step; got f32 \[4\]\)/);
  s.dispose();
});

const V = 30, T = 6, B = 4;
function batchOf(rng: Random): Batch {
  const ids = () => Int32Array.from({ length: T * B }, () => 1 + Math.floor(rng.next() * (V - 1)));
  return { seqLength: T, batchSize: B, inputs: ids(), targets: ids(), lengths: null };
}

/**
 * A training loop as fit's (train.ts) over a fresh network: with graphs, or not, or (frozen) with
 * the update's step fixed at capture. After step 4 an inference of another shape seen before (so
 * nothing is allocated and no graph dropped) moves the network's states and last views: the next
 * steps must find them as a run step would.
 */
async function train(how: 'plain' | 'graphs' | 'frozen', optimizer: OptimizerOptions) {
  const net = new Network(cpuBackend, { vocabSize: V, embeddingSize: 8, hiddenSize: 8, layers: 2, cell: 'lstm', dropout: 0, tieWeights: false, dtype: 'f32', paddingIdx: 0 });
  net.initialize(4);
  const opt = new Optimizer(net.stream, optimizer, net.parameterCount, 'f32');
  const graphs = new StepGraphs(net.stream);
  const rng = new Random(8);
  const other = Int32Array.from({ length: 3 * 2 }, (_, i) => 1 + (i % (V - 1)));
  await net.stream.read(net.logProbs(other, 3, 2)); // its shape's memory, before any graph
  net.resetState(B);
  const losses: number[] = [];
  for (let step = 0; step < 8; step++) {
    const b = batchOf(rng);
    if (step === 5) opt.lr *= 0.5;
    if (step === 4) await net.stream.read(net.logProbs(other, 3, 2));
    const body = (staged: boolean) => {
      net.zeroGrad();
      net.forward(b, { training: true, staged });
      net.backward({ ar: 0.5, tar: 0.25 });
      net.clipGradNorm(1);
    };
    if (how === 'plain') {
      body(false);
      opt.apply(net.allParams, net.allGrads, net.statsTensor);
      net.carryState();
    } else {
      net.stage(b);
      if (how === 'graphs') opt.prepare();
      graphs.run(`${T}x${B}`, () => {
        body(true);
        if (how === 'graphs') opt.update(net.allParams, net.allGrads, net.statsTensor);
        else opt.apply(net.allParams, net.allGrads, net.statsTensor); // its step and lr are queued as arguments
        net.carryState();
      });
    }
    losses.push((await net.readStepStats()).loss);
  }
  const weights = await net.stream.read(net.allParams);
  if (how !== 'plain') expect(graphs.counts).toEqual({ ran: 1, captured: 1, replayed: 6 });
  graphs.clear();
  opt.dispose();
  net.dispose();
  return { losses, weights };
}

test('a training loop with graphs equals the same loop without, bit for bit (Adam, SGD with momentum; AR / TAR, clipping, carried state, an lr change)', async () => {
  expect(new Network(cpuBackend, { vocabSize: V, embeddingSize: 8, hiddenSize: 8, layers: 2, cell: 'gru', dropout: 0.1, tieWeights: false, dtype: 'f32', paddingIdx: 0 }).graphable).toBe(false);
  for (const optimizer of [{ type: 'adam', lr: 0.01 }, { type: 'sgd', lr: 0.5, momentum: 0.9 }] as OptimizerOptions[]) {
    const plain = await train('plain', optimizer), graphs = await train('graphs', optimizer);
    expect(graphs.losses).toEqual(plain.losses);
    expect(graphs.weights).toEqual(plain.weights);
    // The control: an update whose step and lr were arguments at capture replays them, and the comparison sees it.
    const frozen = await train('frozen', optimizer);
    expect(frozen.losses.slice(0, 3)).toEqual(plain.losses.slice(0, 3));
    expect(frozen.weights).not.toEqual(plain.weights);
  }
});

test('fit with RNNLM_GRAPHS=1 replays its steps and trains the same weights as without; a model with dropout trains uncaptured', async () => {
  const rng = new Random(2);
  const ids = Array.from({ length: 2000 }, () => 1 + Math.floor(rng.next() * (V - 1)));
  const fit = async (graphs: boolean, options: object = {}) => {
    if (graphs) process.env.RNNLM_GRAPHS = '1';
    else delete process.env.RNNLM_GRAPHS;
    const m = await LanguageModel.create({ vocabSize: V, embeddingSize: 8, hiddenSize: 8, layers: 2, device: 'cpu', seed: 5, ...options });
    // Counted on the stream itself: the replays fit queued.
    const s = networkOf(m).stream, replay = s.replay.bind(s);
    let replays = 0;
    Object.defineProperty(s, 'replay', { value: (id: number) => void (replays++, replay(id)) });
    const logs = await m.fit(ids, { epochs: 2, batchSize: 4, seqLength: 10, progress: false, clipNorm: 1, optimizer: { type: 'adam', lr: 0.01 }, lrSchedule: { type: 'step', every: 1, factor: 0.5 } });
    const w = await networkOf(m).stream.read(networkOf(m).allParams);
    m.dispose();
    return { loss: logs.map((l) => l.loss), w, replays };
  };
  const plain = await fit(false), graphs = await fit(true);
  // 2 epochs of 49 windows of 10 x 4: the first window of each shape warms up, the second is captured, and an
  // epoch's end (its validation-free log, the schedule) allocates nothing, so the rest replay.
  expect([plain.replays, graphs.replays]).toEqual([0, 2 * 49 - 2]);
  expect(graphs.loss).toEqual(plain.loss);
  expect(graphs.w).toEqual(plain.w);
  const dropout = { dropout: 0.2 };
  const [d1, d0] = [await fit(true, dropout), await fit(false, dropout)];
  expect(d1.replays).toBe(0);
  expect(d1).toEqual(d0);
});

test('generation with RNNLM_GRAPHS=1 replays decoding chunks and draws the same tokens as without (one request, and three batched with their own options)', async () => {
  const generateAll = async (graphs: boolean) => {
    if (graphs) process.env.RNNLM_GRAPHS = '1';
    else delete process.env.RNNLM_GRAPHS;
    const m = await LanguageModel.create({ vocabSize: V, embeddingSize: 8, hiddenSize: 8, layers: 2, device: 'cpu', seed: 6 });
    const s = networkOf(m).stream, replay = s.replay.bind(s);
    let replays = 0;
    Object.defineProperty(s, 'replay', { value: (id: number) => void (replays++, replay(id)) });
    const one = await m.generate({ prompt: [1, 2, 3], maxTokens: 2000, temperature: 1, seed: 11, stopAtEos: false, details: true });
    const three = await Promise.all([
      m.generate({ prompt: [4], maxTokens: 600, temperature: 0.7, seed: 1, stopAtEos: false, details: true }),
      m.generate({ prompt: [5, 6], maxTokens: 600, temperature: 1.3, seed: 2, stopAtEos: false, details: true, ban: [7, 8] }),
      m.generate({ prompt: [9], maxTokens: 600, temperature: 0, stopAtEos: false, details: true }),
    ]);
    m.dispose();
    return { outputs: [one, ...three].map((g) => ({ ids: g.ids, logProbs: g.logProbs })), replays };
  };
  const plain = await generateAll(false), graphs = await generateAll(true);
  expect(plain.replays).toBe(0);
  // Chunks of up to 64 steps of the same key (their count follows the measured step time) replay.
  expect(graphs.replays).toBeGreaterThan(0);
  expect(graphs.outputs).toEqual(plain.outputs);
});

test('generation with RNNLM_GRAPHS=1 keeps the decoding rows in batch-size buckets: as requests end (7 rows, then 6, 5, ...), the bucket\'s graphs replay, with the same tokens as without', async () => {
  const generateAll = async (graphs: boolean) => {
    if (graphs) process.env.RNNLM_GRAPHS = '1';
    else delete process.env.RNNLM_GRAPHS;
    const m = await LanguageModel.create({ vocabSize: V, embeddingSize: 8, hiddenSize: 8, layers: 2, device: 'cpu', seed: 6 });
    const s = networkOf(m).stream, replay = s.replay.bind(s), captureEnd = s.captureEnd.bind(s), sample = s.sample.bind(s);
    let replays = 0, captures = 0;
    const rowsSampled = new Set<number>();
    Object.defineProperty(s, 'replay', { value: (id: number) => void (replays++, replay(id)) });
    Object.defineProperty(s, 'captureEnd', { value: () => (captures++, captureEnd()) });
    Object.defineProperty(s, 'sample', { value: (...a: Parameters<typeof sample>) => void (rowsSampled.add(a[0].shape[0]), sample(...a)) });
    // Seven requests alike but for their seed and length: they end one after another.
    const gens = await Promise.all(Array.from({ length: 7 }, (_, i) =>
      m.generate({ prompt: [1 + i], maxTokens: 150 + 150 * i, temperature: 1, seed: 40 + i, stopAtEos: false, details: true })));
    m.dispose();
    return { outputs: gens.map((g) => ({ ids: g.ids, logProbs: g.logProbs })), replays, captures, rowsSampled: [...rowsSampled].sort((a, b) => a - b) };
  };
  const plain = await generateAll(false), graphs = await generateAll(true);
  expect(graphs.outputs).toEqual(plain.outputs);
  // Without graphs each step samples the requests' rows (7, 6, ..., 1); with them, the buckets' (8, 4, 2, 1).
  expect(plain.rowsSampled).toEqual([1, 2, 3, 4, 5, 6, 7]);
  expect(graphs.rowsSampled).toEqual([1, 2, 4, 8]);
  // The bucket of 8 served 7, 6 and 5 requests: its chunks replayed.
  expect(graphs.replays).toBeGreaterThan(0);
});

test("a capture during which an op failed is no graph (as on CUDA): the error reaches the next read, and each replay fails", async () => {
  const s = cpuBackend.createStream();
  const table = make(s, 'f32', [5, 3]), ids = make(s, 'i32', [4], [0, 1, 99, 3]), out = make(s, 'f32', [4, 3]);
  s.captureBegin();
  s.embeddingForward(table, ids, out);
  s.fill(out, 7);
  const g = s.captureEnd();
  await expect(s.sync()).rejects.toThrow(/token id 99 .*outside the vocabulary/);
  s.write(ids, Int32Array.of(0, 1, 2, 3));
  s.replay(g);
  await expect(s.sync()).rejects.toThrow(/replay: this graph's capture failed/);
  // The stream itself is fine afterwards.
  s.fill(out, 2);
  expect(Array.from(await s.read(out))).toEqual(new Array(12).fill(2));
  s.dispose();
});

test("the optimizers' live values are checked when the update runs: an lr outside [0, 1e6] or a step < 1 fails it, weights untouched", async () => {
  const s = cpuBackend.createStream();
  const p = make(s, 'f32', [4], [1, 2, 3, 4]), g = make(s, 'f32', [4], [1, 1, 1, 1]), live = make(s, 'i32', [4]);
  const args = { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, decoupled: false, step: 1 };
  const bits = (lr: number, step: number) => {
    const v = new Int32Array(4);
    new Float64Array(v.buffer, 0, 1)[0] = lr;
    v[2] = step;
    v[3] = step < 0 ? -1 : 0; // the int64's high half
    return v;
  };
  for (const [lr, step] of [[NaN, 1], [Infinity, 1], [-0.1, 1], [0.1, 0], [0.1, -5]]) {
    s.write(live, bits(lr, step));
    s.adam(p, g, make(s, 'f32', [4]), make(s, 'f32', [4]), args, null, live);
    await expect(s.sync()).rejects.toThrow(/adam: an optimizer's live values \(lr, step\) are out of range/);
    s.write(live, bits(lr, step));
    s.sgd(p, g, null, { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, step: 1 }, null, live);
    await expect(s.sync()).rejects.toThrow(/sgd: an optimizer's live values/);
  }
  expect(Array.from(await s.read(p))).toEqual([1, 2, 3, 4]);
  s.dispose();
});

test(`StepGraphs keeps the ${MAX_GRAPHS} keys run last: a key past them evicts the least recently run, whose graph is released`, async () => {
  const s = cpuBackend.createStream();
  const x = make(s, 'f32', [1], [0]), one = make(s, 'f32', [1], [1]);
  const graphs = new StepGraphs(s);
  let released = 0;
  const release = s.releaseGraph.bind(s);
  Object.defineProperty(s, 'releaseGraph', { value: (id: number) => void (released++, release(id)) });
  const step = (key: string) => graphs.run(key, () => s.average(x, one, 1)); // x = one: any op
  const keys = Array.from({ length: MAX_GRAPHS }, (_, i) => `k${i}`);
  for (const k of keys) step(k);
  for (const k of keys) expect(step(k)).toBe('captured');
  expect(step('k0')).toBe('replayed'); // k0 is now the most recent; k1 the oldest
  expect(step('new')).toBe('ran');
  expect(released).toBe(1);
  expect(step('k1')).toBe('ran'); // evicted: warms up again (evicting k2)
  expect(step('k0')).toBe('replayed');
  expect(step('new')).toBe('captured');
  expect(released).toBe(2);
  graphs.clear();
  s.dispose();
});
