// node --import tsx bench/gemm-invariant.ts [--quick] — GFLOP/s of the batch-invariant forward
// GEMM (linearForward with { batchInvariant: true }, native/cpu/gemm_nt_simd.inc) next to
// OpenBLAS, each with one thread and with OpenBLAS's thread count (the kernel then splits large
// products with one helper thread, blas.h), on the inference shapes: the decoder (M rows x
// K = 200 -> N = 10,000), the recurrence of a 200-unit LSTM (N = 4 x 200), its input projection
// over 32 steps of 64 rows, and char-lstm's H = 512. Best of several timings: the machine may be
// shared.
import { cpuAddon, cpuBackend } from '../lib/backend/cpu';
import { tensor } from '../lib/backend/types';
import { Random } from '../lib/util/random';

const quick = process.argv.includes('--quick');
const shapes: [string, number, number, number][] = [
  ['decoder', 1, 10000, 200],
  ['decoder', 8, 10000, 200],
  ['decoder', 64, 10000, 200],
  ['recurrence', 1, 800, 200],
  ['recurrence', 64, 800, 200],
  ['input projection', 32 * 64, 800, 200],
  ['char-lstm recurrence', 1, 2048, 512],
  ['char-lstm recurrence', 64, 2048, 512],
];

async function main() {
const s = cpuBackend.createStream();
const rng = new Random(1);
const threads = cpuAddon().blasInfo().threads;
const pad = (v: unknown, n: number) => String(v).padStart(n);
console.log(`GFLOP/s; t = ${threads} OpenBLAS threads (the kernel: 2 when t > 1)`);
console.log('shape                     M      N     K   invariant 1, t   OpenBLAS 1, t');
for (const [name, M, N, K] of shapes) {
  const buf = s.alloc('f32', M * K + N * K + N + M * N);
  const x = tensor(buf, 0, [M, K]), W = tensor(buf, M * K, [N, K]), b = tensor(buf, M * K + N * K, [N]);
  const y = tensor(buf, M * K + N * K + N, [M, N]);
  s.write(tensor(buf, 0, [M * K + N * K + N]), Float32Array.from({ length: M * K + N * K + N }, () => rng.uniform(-1, 1)));
  // Enough calls per timing that the queueing costs little next to the product.
  const reps = Math.max(1, Math.round(2e8 / (2 * M * N * K)));
  const time = async (batchInvariant: boolean, t: number) => {
    cpuAddon().setBlasThreads(t);
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) s.linearForward(x, W, b, y, { batchInvariant });
    await s.sync();
    return (reps * 2 * M * N * K) / ((performance.now() - t0) / 1000) / 1e9;
  };
  // The four runs take turns, so that a busy moment of the machine hits them alike.
  const runs: [boolean, number][] = [[true, 1], [true, threads], [false, 1], [false, threads]];
  const best = runs.map(() => 0);
  for (let trial = 0; trial < (quick ? 4 : 15); trial++)
    for (const [j, [inv, t]] of runs.entries()) best[j] = Math.max(best[j], await time(inv, t));
  const [i1, it, b1, bt] = best.map((v) => v.toFixed(1));
  console.log(`${name.padEnd(22)} ${pad(M, 4)} ${pad(N, 6)} ${pad(K, 5)}   ${pad(i1, 6)} ${pad(it, 6)}   ${pad(b1, 6)} ${pad(bt, 6)}`);
  buf.free();
}
cpuAddon().setBlasThreads(threads);
s.dispose();
}
void main();
