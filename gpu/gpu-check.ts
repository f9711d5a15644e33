// The GPU check (bundled into .gpu/gpu-check.cjs by gpu/gpu-pack.sh; run on the GPU
// machine by gpu/gpu-check.sh). With no GPU it says why and exits 0 (dry mode).
//  1. parity: the same weights and batch through the CPU (float32) and CUDA backends, all
//     four cells, 1-3 layers, padded batches: loss, final states and every gradient; the same
//     under each cuDNN algorithm (persist_static, persist_static_small_h, auto) and in each precision
//     (tf32, bf16, fp16 with and without a loss scale; gpu/parity.ts); the
//     sampler; through the inference runtime (LanguageModel), greedy generation on CUDA against
//     the CPU, and concurrent (batched) generate calls on CUDA against the same calls alone;
//  2. training: a 200-step run on each device, losses side by side (CUDA also in tf32, bf16, fp16
//     with a loss scale, with cuDNN's algorithm timed per shape, and captured as a CUDA graph: that
//     one's losses must equal CUDA's); training:half, 500 steps of fit on Tiny Shakespeare in fp32,
//     bf16 and fp16, their validation losses within 1 % (gpu/half.ts);
//  3. throughput: aggregate generation tokens/s of 64 concurrent calls against 1, batching on and off;
//  4. serve: the server benchmark (bench/harness/serve.ts) short, with --device cuda: 64 connections,
//     5-second runs on /v1/next and /v1/completions, batching on and off (its report in gpu-check.json);
//  5. inputs for bench/pytorch_fixtures.py (the benchmarks are `rnnlm bench`, run by gpu-check.sh).
// GPU_CHECK_ONLY picks the phases (default parity,training,throughput,serve).
// Writes gpu-check.json into $OUT (or the current folder).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuBackend } from '../lib/backend/cpu';
import { loadCuda, cudaBackend } from '../lib/backend/cuda';
import { tensor, type Backend, type Cell } from '../lib/backend/types';
import { writeCheckpoint } from '../lib/checkpoint';
import { RnnlmError } from '../lib/errors';
import { writeSafetensorsFile } from '../lib/io/safetensors';
import { LanguageModel, type Generation } from '../lib/model';
import { runServeBench } from '../bench/harness/serve-run';
import type { SoftmaxConfig } from '../lib/nn/decoder';
import { DEFAULTS } from '../lib/defaults';
import { LossScaler } from '../lib/nn/loss-scale';
import { Network } from '../lib/nn/network';
import { StepGraphs } from '../lib/nn/graphs';
import { Optimizer } from '../lib/nn/optimizer';
import { Random } from '../lib/util/random';
import { halfTraining } from './half';
import { algorithmParity, batch, copyWeights, net, parity, precisionParity } from './parity';

const out = process.env.OUT ?? '.';
const report: Record<string, unknown> = {
  date: new Date().toISOString(), node: process.version, asyncUploads: process.env.RNNLM_CUDA_ASYNC_UPLOADS === '1', layerwise: process.env.RNNLM_CUDA_LAYERWISE === '1',
};


/** kernels::sample against cpu::sample: same logits, same seed; ids may differ only where a
 *  float rounding moves u W across a boundary (expected: a handful per 100,000 rows). On each
 *  device, values[n] must be logits[n, ids[n]] exactly. */
async function sampleParity(cuda: Backend) {
  const N = 20_000, V = 1_000;
  const logits = Float32Array.from({ length: N * V }, (_, i) => Math.sin(i * 12.9898) * 4);
  const out: Record<string, number> = {};
  for (const [temperature, name] of [[1, 't1'], [0.7, 't0.7'], [0, 'argmax']] as const) {
    const ids: Int32Array[] = [];
    let wrongValues = 0; // rows, on either device, whose values[n] is not logits[n, ids[n]]
    for (const b of [cpuBackend, cuda]) {
      const s = b.createStream();
      const z = tensor(s.alloc('f32', N * V), 0, [N, V]), id = tensor(s.alloc('i32', N), 0, [N]);
      const values = tensor(s.alloc('f32', N), 0, [N]);
      s.write(z, logits);
      s.sample(z, id, temperature, 0, 1, 99, Int32Array.of(0, 1), values);
      const got = (await s.read(id)) as Int32Array;
      ids.push(got);
      wrongValues += ((await s.read(values)) as Float32Array).filter((v, n) => v !== logits[n * V + got[n]]).length;
      s.dispose();
    }
    out[name] = ids[0].filter((v, i) => v !== ids[1][i]).length / N;
    out[`${name} values`] = wrongValues / N;
    console.log(`sample parity ${name}: ${(out[name] * 100).toFixed(3)} % of rows differ ${out[name] <= 1e-3 ? 'ok' : 'FAIL'}; values ${wrongValues ? `wrong in ${wrongValues} rows FAIL` : 'ok'}`);
  }
  return out;
}

/** One model's weights on CPU and CUDA (a checkpoint: the devices' weight spaces differ), the CUDA
 *  copy loaded twice, with batching on and off. */
async function modelsOf(cell: Cell, folder: string) {
  const path = join(folder, `${cell}.safetensors`);
  const cpu = await LanguageModel.create({ vocabSize: 2000, cell, embeddingSize: 128, hiddenSize: 256, layers: 2, seed: 9, device: 'cpu' });
  await cpu.save(path);
  const cuda = await LanguageModel.load(path, { device: 'cuda' });
  const alone = await LanguageModel.load(path, { device: 'cuda', batching: false });
  const graphs = await LanguageModel.load(path, { device: 'cuda' });
  return { cpu, cuda, alone, graphs, dispose: () => [cpu, cuda, alone, graphs].forEach((m) => m.dispose()) };
}
type Models = Awaited<ReturnType<typeof modelsOf>>;

const ids = (n: number, seed: number, V: number) => {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => Math.floor(rng.next() * V));
};

/** Greedy generation through the runtime (LanguageModel.generate), CUDA against the CPU. */
async function generateParity(m: Models, cell: Cell) {
  const n = 200, options = { prompt: ids(7, 3, 2000), maxTokens: n, temperature: 0, details: true } as const;
  const [a, b] = [(await m.cpu.generate(options)).ids, (await m.cuda.generate(options)).ids];
  // A greedy sequence diverges for good after the first differing token (a float rounding
  // between near-equal logits); the agreeing prefix is what the check reports.
  const prefix = a.findIndex((v, i) => v !== b[i]);
  const agree = prefix < 0 ? n : prefix;
  const ok = agree === n; // the greedy rule of the op-level check this replaces: 200 tokens equal
  console.log(`generate parity ${cell} t=0: first ${agree} of ${n} tokens equal ${ok ? 'ok' : 'FAIL'}`);
  return { cell, temperature: 0, agree, n, pass: ok };
}

/** 32 concurrent generate calls on CUDA (batched rows) against the same calls one at a time
 *  (batching: false): the same ids, and log-probabilities within 1e-4. */
async function batchedParity(m: Models, cell: Cell) {
  const calls = Array.from({ length: 32 }, (_, i) => ({
    prompt: ids(1 + ((i * 7) % 61), 100 + i, 2000), // 1 to 61 tokens: some over a 32-token prompt chunk
    maxTokens: 20 + ((i * 13) % 80),
    temperature: i % 4 === 3 ? 0 : 1,
    seed: 1000 + i,
    details: true,
  } as const));
  const together = await Promise.all(calls.map((c) => m.cuda.generate(c)));
  const alone: Generation[] = [];
  for (const c of calls) alone.push(await m.alone.generate(c));
  let maxLogProbDiff = 0;
  // Where a request's ids first differ: late, between neighbouring ids, it is a draw at a bucket
  // edge moved by the matrix products' rounding; early or far apart, rows are mixed up.
  const diverged: { request: number; at: number; batched: number; alone: number }[] = [];
  together.forEach((g, i) => {
    const a = alone[i];
    let k = 0;
    // Log-probabilities compared while the ids agree (after a differing draw they are of other tokens).
    for (; k < Math.min(g.ids.length, a.ids.length) && g.ids[k] === a.ids[k]; k++) {
      maxLogProbDiff = Math.max(maxLogProbDiff, Math.abs(g.logProbs[k] - a.logProbs[k]));
    }
    if (k < Math.max(g.ids.length, a.ids.length)) diverged.push({ request: i, at: k, batched: g.ids[k] ?? -1, alone: a.ids[k] ?? -1 });
  });
  const identical = (calls.length - diverged.length) / calls.length;
  const pass = diverged.length === 0 && maxLogProbDiff <= 1e-4;
  console.log(`batched parity ${cell}: ${calls.length - diverged.length} of ${calls.length} requests identical batched and alone, largest log-probability difference ${maxLogProbDiff.toExponential(2)} ${pass ? 'ok' : 'FAIL'}`);
  if (diverged.length) console.log('  ', JSON.stringify(diverged));
  return { cell, requests: calls.length, identical, maxLogProbDiff, pass, diverged };
}

/**
 * Generation with the decoding chunks captured as CUDA graphs (RNNLM_GRAPHS=1, read when a model's
 * runtime starts) against the same calls without: one long sampled generation and four batched
 * ones with their own options. The same kernels run, so the ids and log-probabilities must be identical.
 */
async function graphGenerateParity(m: Models, cell: Cell) {
  const calls = [
    { prompt: ids(5, 1, 2000), maxTokens: 1000, temperature: 1, seed: 7, stopAtEos: false, details: true },
    ...[0, 0.8, 1, 1.2].map((temperature, i) => ({ prompt: ids(3 + i, 20 + i, 2000), maxTokens: 300, temperature, seed: 30 + i, stopAtEos: false, details: true, ...(i === 2 ? { ban: [1, 2, 3] } : {}) })),
  ] as const;
  const one = (model: LanguageModel, c: (typeof calls)[number]) => model.generate({ ...c, details: true });
  const run = async (model: LanguageModel): Promise<Generation[]> => [await one(model, calls[0]), ...(await Promise.all(calls.slice(1).map((c) => one(model, c))))];
  const plain = await run(m.cuda);
  process.env.RNNLM_GRAPHS = '1';
  let graphed: Generation[];
  try {
    graphed = await run(m.graphs);
  } finally {
    delete process.env.RNNLM_GRAPHS;
  }
  const identical = plain.filter((g, i) => JSON.stringify([g.ids, g.logProbs]) === JSON.stringify([graphed[i].ids, graphed[i].logProbs])).length;
  const pass = identical === calls.length;
  console.log(`graphs generate parity ${cell}: ${identical} of ${calls.length} generations identical with and without CUDA graphs ${pass ? 'ok' : 'FAIL'}`);
  return { cell, requests: calls.length, identical, pass };
}

/** check(models, cell) for lstm and gru, each on its own models (one failing cell does not hide the other). */
async function perCell<R>(check: (m: Models, cell: Cell) => Promise<R>) {
  const folder = mkdtempSync(join(tmpdir(), 'rnnlm-gpu-check-'));
  const rows = [];
  try {
    for (const cell of ['lstm', 'gru'] as Cell[]) {
      const m = await modelsOf(cell, folder);
      try {
        rows.push(await check(m, cell));
      } catch (e) {
        console.error(`${check.name} ${cell}: ERROR`, e);
        rows.push({ cell, pass: false, error: String((e as Error)?.stack ?? e) });
      } finally {
        m.dispose();
      }
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  return rows;
}

/** Aggregate tokens/s of N concurrent generate calls of 64 tokens, N = 1 and 64, on CUDA with
 *  batching on and off (zaremba-medium's shape). Figures only; the target is N=64 >= 20x N=1. */
async function batchingThroughput() {
  const shape = { vocabSize: 10_000, cell: 'lstm', embeddingSize: 650, hiddenSize: 650, layers: 2, device: 'cuda', seed: 1 } as const;
  const tokens = 64;
  const rate = async (model: LanguageModel, n: number) => {
    const t0 = performance.now();
    const gs = await Promise.all(Array.from({ length: n }, (_, i) =>
      model.generate({ prompt: ids(8, 200 + i, shape.vocabSize), maxTokens: tokens, seed: i, details: true })));
    return gs.reduce((a, g) => a + g.ids.length, 0) / ((performance.now() - t0) / 1000);
  };
  const out: Record<string, { n1: number; n64: number; ratio: number }> = {};
  for (const batching of [true, false]) {
    const model = await LanguageModel.create({ ...shape, batching });
    try {
      await rate(model, 64); // warm-up: buffers for 64 rows, cuDNN plans
      await rate(model, 1);
      let n1 = 0;
      for (let r = 0; r < 3; r++) n1 = Math.max(n1, await rate(model, 1));
      const n64 = await rate(model, 64);
      out[batching ? 'on' : 'off'] = { n1, n64, ratio: n64 / n1 };
      console.log(`batching ${batching ? 'on' : 'off'}: ${Math.round(n1)} tokens/s for 1 request, ${Math.round(n64)} for 64 at once (${(n64 / n1).toFixed(1)}x)`);
    } finally {
      model.dispose();
    }
  }
  console.log(`batching: 64 requests at once ${(out.on.n64 / out.on.n1).toFixed(1)}x one alone (target 20x: ${out.on.n64 >= 20 * out.on.n1 ? 'met' : 'MISSED'})`);
  return { config: shape, tokens, ...out };
}

/** `rnnlm serve --device cuda` under load, short (its servers are child processes: cli.cjs beside the bundle). */
async function serveBench(gpu: string) {
  const { report } = await runServeBench({ device: 'cuda', duration: 5, warmup: 1, connections: [64] });
  report.machine.gpu = gpu;
  return report;
}

async function trainingRun(cuda: Backend) {
  const V = 200, T = 20, B = 16, steps = 200;
  const losses: Record<string, number[]> = {};
  const ref = net(cpuBackend, 'lstm', V, 64, 64, 2);
  ref.initialize(5);
  // The same run in tf32 and with cuDNN's algorithm timed per shape: their losses beside fp32's.
  const auto: Backend = { ...cuda, createRnn: (o) => cuda.createRnn({ ...o, algorithm: 'auto' }) };
  // And with the step captured as a CUDA graph and replayed (nn/graphs.ts, as fit with RNNLM_GRAPHS=1):
  // the same kernels, so the same losses to the last bit as 'cuda'.
  const runs = [
    ['cpu', cpuBackend, {}], ['cuda', cuda, {}], ['cuda-graphs', cuda, {}], ['cuda-tf32', cuda, { precision: 'tf32' }], ['cuda-auto', auto, {}],
    ['cuda-bf16', cuda, { precision: 'bf16' }], ['cuda-fp16', cuda, { precision: 'fp16' }],
  ] as const;
  const graphCounts: Record<string, number> = {};
  for (const [name, backend, extra] of runs) {
    const n = net(backend, 'lstm', V, 64, 64, 2, 0, undefined, extra);
    await copyWeights(ref, n);
    const opt = new Optimizer(n.stream, { type: 'adam', lr: 3e-3 }, n.parameterCount, 'f32');
    const graphs = name === 'cuda-graphs' ? new StepGraphs(n.stream) : undefined;
    // fp16 trains as fit does: with the dynamic loss scale (nn/loss-scale.ts).
    const scaler = name === 'cuda-fp16' ? new LossScaler(n.stream, 'f32', DEFAULTS.fit.lossScale) : null;
    n.lossScaler = scaler;
    losses[name] = [];
    n.resetState(B);
    for (let s = 0; s < steps; s++) {
      const b = batch(T, B, V, s % 25, false);
      const body = (staged: boolean) => {
        n.zeroGrad();
        n.forward(b, { training: true, seed: s, staged });
        n.backward();
        scaler?.unscale(n.allGrads);
        n.clipGradNorm(1);
      };
      if (graphs) {
        n.stage(b);
        opt.prepare();
        graphs.run(`${T}x${B}`, () => {
          body(true);
          opt.update(n.allParams, n.allGrads);
          n.carryState();
        });
      } else {
        body(false);
        opt.apply(n.allParams, n.allGrads, n.statsTensor);
        scaler?.update(n.statsTensor);
        n.carryState();
      }
      losses[name].push((await n.readLoss()).loss);
    }
    if (graphs) Object.assign(graphCounts, graphs.counts);
    graphs?.clear();
    if (scaler) report.fp16LossScale = await scaler.read();
    scaler?.free();
    opt.dispose();
    n.dispose();
  }
  const graphsExact = losses['cuda-graphs'].every((l, i) => l === losses.cuda[i]);
  console.log(`  graphs: ${JSON.stringify(graphCounts)}; losses ${graphsExact ? 'identical to' : 'DIFFER from'} the uncaptured run's`);
  ref.dispose();
  const diff = (other: number[]) => Math.max(...losses.cpu.map((l, i) => Math.abs(l - other[i]) / l));
  const last = (k: string) => losses[k][steps - 1].toFixed(5);
  console.log(`200-step run: final loss cpu ${last('cpu')} cuda ${last('cuda')} tf32 ${last('cuda-tf32')} auto ${last('cuda-auto')} bf16 ${last('cuda-bf16')} fp16 ${last('cuda-fp16')}; max relative difference from the CPU: cuda ${diff(losses.cuda).toExponential(2)}, tf32 ${diff(losses['cuda-tf32']).toExponential(2)}, auto ${diff(losses['cuda-auto']).toExponential(2)}, bf16 ${diff(losses['cuda-bf16']).toExponential(2)}, fp16 ${diff(losses['cuda-fp16']).toExponential(2)}`);
  return {
    steps, cpu: losses.cpu, cuda: losses.cuda, tf32: losses['cuda-tf32'], auto: losses['cuda-auto'], bf16: losses['cuda-bf16'], fp16: losses['cuda-fp16'],
    graphs: { counts: graphCounts, exact: graphsExact },
    maxRelDiff: diff(losses.cuda), maxRelDiffTf32: diff(losses['cuda-tf32']), maxRelDiffAuto: diff(losses['cuda-auto']),
    maxRelDiffBf16: diff(losses['cuda-bf16']), maxRelDiffFp16: diff(losses['cuda-fp16']),
  };
}

/** Checkpoints and batches for bench/pytorch_fixtures.py (our checkpoint loaded into PyTorch):
 *  one per cell with the full softmax, named after the cell, and an adaptive-softmax LSTM. */
async function fixtureInputs(folder: string) {
  mkdirSync(folder, { recursive: true });
  const fixtures: { name: string; cell: Cell; softmax: SoftmaxConfig }[] = [
    ...(['lstm', 'gru', 'rnn_tanh', 'rnn_relu'] as Cell[]).map((cell) => ({ name: cell, cell, softmax: { type: 'full' } as const })),
    { name: 'adaptive', cell: 'lstm', softmax: { type: 'adaptive', cutoffs: [8, 20], divValue: 2, headBias: true } },
  ];
  for (const { name, cell, softmax } of fixtures) {
    const V = 40, E = 12, H = 16, L = 2, T = 9, B = 4;
    const n = new Network(cpuBackend, { vocabSize: V, embeddingSize: E, hiddenSize: H, layers: L, cell, dropout: 0, tieWeights: false, dtype: 'f32', paddingIdx: 0, softmax });
    n.initialize(11);
    const config = { cell, vocabSize: V, embeddingSize: E, hiddenSize: H, layers: L, dropout: 0, tieWeights: false, softmax, seed: 11 };
    await writeCheckpoint(join(folder, `${name}.safetensors`), n.layout, await n.readWeights(), config, undefined, undefined);
    n.dispose();
    const bt = batch(T, B, V, 17, true);
    const rng = new Random(23);
    const state = () => Float32Array.from({ length: L * B * H }, () => rng.uniform(-0.5, 0.5));
    await writeSafetensorsFile(join(folder, `${name}.batch.safetensors`), {
      ids: { dtype: 'I32', shape: [T, B], data: bt.inputs },
      targets: { dtype: 'I32', shape: [T, B], data: bt.targets },
      lengths: { dtype: 'I32', shape: [B], data: bt.lengths! },
      h0: { dtype: 'F32', shape: [L, B, H], data: state() },
      c0: { dtype: 'F32', shape: [L, B, H], data: state() },
    });
  }
}

async function main() {
  await fixtureInputs(join(out, 'fixtures'));
  let cuda: Backend;
  try {
    cuda = cudaBackend();
  } catch (e) {
    if (!(e instanceof RnnlmError) || e.code !== 'ERR_CUDA_UNAVAILABLE') throw e;
    console.log(`gpu-check: dry mode, CUDA unavailable: ${e.message.split('\n')[0]}`);
    report.dryRun = true;
    report.reason = e.message;
    writeFileSync(join(out, 'gpu-check.json'), JSON.stringify(report, null, 2) + '\n');
    return;
  }
  const { info } = loadCuda();
  report.cuda = info;
  console.log(`gpu-check: ${info.device} (sm ${info.computeCapability}), driver ${info.driver}, runtime ${info.runtime}, cuDNN ${info.cudnn} from ${info.cudnnPath}`);
  const only = process.env.GPU_CHECK_ONLY ?? 'parity,training,throughput,serve';
  // Each phase on its own: one failing phase must not hide what the others would show (time
  // on the GPU machine is scarce).
  const phase = async (name: string, run: () => Promise<unknown>) => {
    if (!only.includes(name.split(':')[0])) return;
    try {
      report[name] = await run();
    } catch (e) {
      console.error(`gpu-check: ${name} failed:`, e);
      report[name] = { error: String((e as Error)?.stack ?? e) };
      process.exitCode = 1;
    }
    writeFileSync(join(out, 'gpu-check.json'), JSON.stringify(report, null, 2) + '\n');
  };
  await phase('parity', () => parity(cuda));
  await phase('parity:algorithms', () => algorithmParity(cuda));
  await phase('parity:precision', () => precisionParity(cuda));
  await phase('parity:sample', () => sampleParity(cuda));
  await phase('parity:generate', () => perCell(generateParity));
  await phase('parity:batched', () => perCell(batchedParity));
  await phase('parity:graphs', () => perCell(graphGenerateParity));
  await phase('training', () => trainingRun(cuda));
  await phase('training:half', halfTraining);
  await phase('throughput:batching', batchingThroughput);
  await phase('serve', () => serveBench(info.device));
  // The verdicts together (the figures are in the log above and in gpu-check.json).
  const checks = [
    ['parity', 'ops, CUDA vs CPU'], ['parity:algorithms', "each cuDNN algorithm vs CPU (a refusal counts as a failure here; the rows say which)"],
    ['parity:precision', 'tf32, bf16, fp16 (and fp16 loss-scaled) vs CPU fp32, within their limits'], ['parity:generate', 'greedy generation, CUDA vs CPU'], ['parity:batched', 'generation batched vs alone on CUDA'],
    ['parity:graphs', 'generation with CUDA graphs vs without (identical)'],
  ];
  for (const [name, what] of checks) {
    const rows = report[name];
    if (rows !== undefined) console.log(`gpu-check: ${what}: ${Array.isArray(rows) && rows.every((r) => r.pass) ? 'PASS' : 'FAIL'}`);
  }
}

main().catch((e) => {
  console.error(e);
  report.error = String(e?.stack ?? e);
  try {
    writeFileSync(join(out, 'gpu-check.json'), JSON.stringify(report, null, 2) + '\n');
  } catch {}
  process.exitCode = 1;
});
