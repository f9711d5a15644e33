// npm run bench:ops — achieved GFLOP/s of one full CPU training step (forward, backward,
// clipping, Adam) at the zaremba-small and zaremba-medium shapes, next to OpenBLAS sgemm on
// a 1024 x 1024 x 1024 product measured in the same run. JSON on stdout (and --json FILE).
// FLOPs counted are the GEMM FLOPs of the model (what cuDNN/PyTorch "model FLOPs" count):
// per RNN layer 3 x 2 N G H (in + H), decoder 3 x 2 N H V, with N = batch x seqLength.
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { cpuBackend } from '../lib/backend/cpu';
import { tensor } from '../lib/backend/types';
import { Network } from '../lib/nn/network';
import { Optimizer } from '../lib/nn/optimizer';
import { Random } from '../lib/util/random';

interface Shape {
  name: string;
  E: number;
  H: number;
  L: number;
  V: number;
  B: number;
  T: number;
}
const shapes: Shape[] = [
  { name: 'zaremba-small', E: 200, H: 200, L: 2, V: 10000, B: 20, T: 20 },
  { name: 'zaremba-medium', E: 650, H: 650, L: 2, V: 10000, B: 20, T: 35 },
];

const args = process.argv.slice(2);
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const quick = args.includes('--quick');
const minSeconds = quick ? 0.5 : 3;

async function timeIt(fn: () => Promise<unknown>, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minSeconds * 1000 || n < 3) {
    await fn();
    n++;
  }
  return (performance.now() - t0) / 1000 / n;
}

async function sgemm(): Promise<number> {
  const s = cpuBackend.createStream();
  const n = 1024;
  const rng = new Random(1);
  const buf = s.alloc('f32', 3 * n * n);
  const x = tensor(buf, 0, [n, n]), W = tensor(buf, n * n, [n, n]), y = tensor(buf, 2 * n * n, [n, n]);
  s.write(tensor(buf, 0, [2 * n * n]), Float32Array.from({ length: 2 * n * n }, () => rng.uniform(-1, 1)));
  const sec = await timeIt(async () => {
    for (let i = 0; i < 5; i++) s.linearForward(x, W, null, y);
    await s.sync();
  });
  s.dispose();
  return (5 * 2 * n ** 3) / sec / 1e9;
}

async function trainingStep(sh: Shape) {
  const net = new Network(cpuBackend, {
    vocabSize: sh.V, embeddingSize: sh.E, hiddenSize: sh.H, layers: sh.L, cell: 'lstm',
    dropout: 0, tieWeights: false, dtype: 'f32', paddingIdx: 0,
  });
  const opt = new Optimizer(net.stream, { type: 'adam', lr: 1e-3 }, net.parameterCount, 'f32');
  net.initialize(1);
  const rng = new Random(2);
  const ids = () => Int32Array.from({ length: sh.T * sh.B }, () => 1 + Math.floor(rng.next() * (sh.V - 1)));
  const batch = { seqLength: sh.T, batchSize: sh.B, inputs: ids(), targets: ids() };
  const sec = await timeIt(async () => {
    net.zeroGrad();
    net.forward(batch, { training: true, seed: 1 });
    net.backward();
    net.clipGradNorm(0.25);
    opt.apply(net.allParams, net.allGrads);
    net.carryState();
    await net.readLoss();
  });
  opt.dispose();
  net.dispose();
  const N = sh.B * sh.T, G = 4;
  let flops = 3 * 2 * N * sh.H * sh.V;
  for (let l = 0; l < sh.L; l++) flops += 3 * 2 * N * G * sh.H * ((l === 0 ? sh.E : sh.H) + sh.H);
  return { stepMs: sec * 1000, gflop: flops / 1e9, gflops: flops / sec / 1e9, tokensPerSecond: N / sec };
}

async function main() {
  const sgemmGflops = await sgemm();
  const results = [];
  for (const sh of shapes) {
    const r = await trainingStep(sh);
    results.push({ config: sh.name, ...r, fractionOfSgemm: r.gflops / sgemmGflops });
  }
  const out = {
    benchmark: 'ops',
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
    blas: cpuBackend.info().blas,
    sgemm1024: { gflops: sgemmGflops },
    trainingStep: results,
  };
  const text = JSON.stringify(out, null, 2);
  console.log(text);
  if (jsonOut) writeFileSync(jsonOut, text + '\n');
}

void main();
