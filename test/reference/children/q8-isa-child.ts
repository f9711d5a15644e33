// One process's int8 products on a fixed set of shapes (quantized.test.ts runs it once per
// instruction set, with RNNLM_CPU_ISA): prints the kernels' instruction set, then every output's
// float32 bits, in hex, one line per case.
import { cpuBackend } from '../../../lib/backend/cpu';
import { tensor } from '../../../lib/backend/types';
import { quantizeRows } from '../../../lib/nn/quantize';
import { Random } from '../../../lib/util/random';

const s = cpuBackend.createStream();
const rng = new Random(7);
// [M, N, K]: rows shorter than a vector, a tail of K % 32, N % 4 of 0..3, lone rows and pairs, a
// product large enough for the helper thread, and lone rows on packed weights (N % 16, K % 4).
const cases = [[1, 5, 7], [2, 9, 32], [3, 14, 45], [1, 33, 200], [5, 64, 77], [4, 130, 96], [229, 262, 300], [1, 37, 203], [1, 16, 4], [1, 2, 1000], [1, 1200, 64]];
(async () => {
  console.log((cpuBackend.info() as { blas: { kernels: string } }).blas.kernels);
  for (const [M, N, K] of cases) {
    const x = Float32Array.from({ length: M * K }, () => rng.uniform(-2, 2));
    const w = quantizeRows(Float32Array.from({ length: N * K }, () => rng.uniform(-0.5, 0.5)), N, K);
    const b = Float32Array.from({ length: N }, () => rng.uniform(-1, 1));
    const X = s.alloc('f32', M * K), Q = s.alloc('i8', N * K), S = s.alloc('f32', N), Bb = s.alloc('f32', N), Y = s.alloc('f32', M * N);
    s.write(tensor(X, 0, [M * K]), x);
    s.write(tensor(Q, 0, [N * K]), w.q);
    s.write(tensor(S, 0, [N]), w.scale);
    s.write(tensor(Bb, 0, [N]), b);
    s.linearForward(tensor(X, 0, [M, K]), tensor(Q, 0, [N, K]), tensor(Bb, 0, [N]), tensor(Y, 0, [M, N]), { scale: tensor(S, 0, [N]) });
    const y = (await s.read(tensor(Y, 0, [M * N]))) as Float32Array;
    console.log(Buffer.from(y.buffer, y.byteOffset, y.byteLength).toString('hex'));
  }
  s.dispose();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
