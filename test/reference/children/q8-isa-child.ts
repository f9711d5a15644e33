// One process's int8 products on a fixed set of shapes, then the float elementwise kernels
// (exp in log-softmax, sigmoid and tanh in the cells), as quantized.test.ts runs it once per
// instruction set (RNNLM_CPU_ISA): prints the kernels' instruction set, then every output's
// float32 bits, in hex, one line per case (the int8 cases first).
import { cpuBackend } from '../../../lib/backend/cpu';
import { tensor, type Cell } from '../../../lib/backend/types';
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
  const hex = (y: Float32Array) => Buffer.from(y.buffer, y.byteOffset, y.byteLength).toString('hex');
  // Log-softmax of rows of 1003 (a tail past every vector width), logits up to +-30.
  {
    const R = 3, V = 1003;
    const z = s.alloc('f32', R * V), out = s.alloc('f32', R * V);
    s.write(tensor(z, 0, [R * V]), Float32Array.from({ length: R * V }, () => rng.uniform(-30, 30)));
    s.logSoftmax(tensor(z, 0, [R, V]), tensor(out, 0, [R, V]));
    console.log(hex((await s.read(tensor(out, 0, [R * V]))) as Float32Array));
  }
  // Every cell, two layers, a few steps: sigmoid and tanh over gates of 3 x 21 (tails again).
  for (const cell of ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'] as Cell[]) {
    const T = 4, B = 3, I = 9, H = 21, L = 2;
    const rnn = cpuBackend.createRnn({ cell, inputSize: I, hiddenSize: H, layers: L });
    const f = (n: number, a: number) => {
      const t = s.alloc('f32', n);
      s.write(tensor(t, 0, [n]), Float32Array.from({ length: n }, () => rng.uniform(-a, a)));
      return t;
    };
    const sp = rnn.spaces(T, B);
    const y = s.alloc('f32', T * B * H), hy = s.alloc('f32', L * B * H), cy = s.alloc('f32', L * B * H);
    s.rnnForward(rnn, {
      x: tensor(f(T * B * I, 3), 0, [T, B, I]), y: tensor(y, 0, [T, B, H]),
      hx: tensor(f(L * B * H, 1), 0, [L, B, H]), cx: cell === 'lstm' ? tensor(f(L * B * H, 1), 0, [L, B, H]) : null,
      hy: tensor(hy, 0, [L, B, H]), cy: cell === 'lstm' ? tensor(cy, 0, [L, B, H]) : null,
      weights: tensor(f(rnn.weightSize, 0.8), 0, [rnn.weightSize]), reserve: tensor(s.alloc('f32', sp.reserve), 0, [sp.reserve]),
      workspace: tensor(s.alloc('f32', sp.workspace), 0, [sp.workspace]), training: false, batchInvariant: true,
    });
    console.log(hex((await s.read(tensor(y, 0, [T * B * H]))) as Float32Array));
  }
  s.dispose();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
