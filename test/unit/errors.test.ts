// Bad inputs, one by one: each gives an RnnlmError with the right code, synchronously
// where it can be known up front and from the next read where it depends on device data,
// and the process (this test worker) lives on and keeps computing correctly.
import { afterAll, describe, expect, test } from 'vitest';
import { RnnlmError } from '../../lib/errors';
import { tensor } from '../../lib/backend/types';
import { backend, errorOf, make } from '../helpers';

const s = backend.createStream();
afterAll(() => s.dispose());


describe('shapes and arguments', () => {
  test('linear with mismatched shapes', () => {
    const x = make(s, 'f32', [4, 5]), W = make(s, 'f32', [3, 6]), y = make(s, 'f32', [4, 3]);
    expect(errorOf(() => s.linearForward(x, W, null, y))).toMatch(/^ERR_INVALID_ARGUMENT: linearForward: W must have shape \[3, 5\] \(got \[3, 6\]\)/);
    const W2 = make(s, 'f32', [3, 5]);
    expect(errorOf(() => s.linearForward(x, W2, null, make(s, 'f32', [4, 4])))).toMatch(/y must have shape \[4, 3\]/);
    expect(errorOf(() => s.linearForward(x, W2, make(s, 'f32', [2]), y))).toMatch(/b must have shape \[3\]/);
  });

  test('linear options that are not an object, or a batchInvariant that is not a boolean', () => {
    const x = make(s, 'f32', [4, 5]), W = make(s, 'f32', [3, 5]), y = make(s, 'f32', [4, 3]);
    expect(errorOf(() => s.linearForward(x, W, null, y, true as never))).toMatch(/^ERR_INVALID_ARGUMENT: linearForward options must be an object/);
    expect(errorOf(() => s.linearForward(x, W, null, y, { batchInvariant: 1 as never }))).toMatch(/^ERR_INVALID_ARGUMENT: batchInvariant must be a boolean/);
    s.linearForward(x, W, null, y, {});
  });

  test("crossEntropy's options and logSoftmaxInto's columns, rows and overlaps", () => {
    const z = make(s, 'f32', [4, 5]), tg = make(s, 'i32', [4]), out = make(s, 'f32', [2]);
    expect(errorOf(() => s.crossEntropy(z, tg, -1, out, null, { divisor: 0 }))).toMatch(/^ERR_INVALID_ARGUMENT: divisor must be/);
    expect(errorOf(() => s.crossEntropy(z, tg, -1, out, null, { divisor: NaN }))).toMatch(/^ERR_INVALID_ARGUMENT: divisor/);
    expect(errorOf(() => s.crossEntropy(z, tg, -1, out, null, { accumulate: 1 as never }))).toMatch(/^ERR_INVALID_ARGUMENT: accumulate must be a boolean/);
    expect(errorOf(() => s.crossEntropy(z, tg, -1, out, null, 3 as never))).toMatch(/^ERR_INVALID_ARGUMENT: options must be an object/);
    const wide = make(s, 'f32', [4, 9]), shift = make(s, 'f32', [4, 3]);
    expect(errorOf(() => s.logSoftmaxInto(z, wide, 5, 5, null, 0))).toMatch(/^ERR_INVALID_ARGUMENT: logSoftmaxInto: columns \[5, 10\) are outside out's 9/);
    expect(errorOf(() => s.logSoftmaxInto(z, wide, 9, 1, null, 0))).toMatch(/column must be an integer in \[0, 8\]/);
    expect(errorOf(() => s.logSoftmaxInto(z, wide, 0, 6, null, 0))).toMatch(/count must be an integer in \[1, 5\]/);
    expect(errorOf(() => s.logSoftmaxInto(z, make(s, 'f32', [3, 9]), 0, 5, null, 0))).toMatch(/out has 3 rows, x has 4/);
    expect(errorOf(() => s.logSoftmaxInto(z, wide, 0, 5, make(s, 'f32', [2, 3]), 0))).toMatch(/shift has 2 rows, x has 4/);
    expect(errorOf(() => s.logSoftmaxInto(z, wide, 0, 5, shift, 3))).toMatch(/shiftColumn must be an integer in \[0, 2\]/);
    expect(errorOf(() => s.logSoftmaxInto(z, tensor(z.buffer, 0, [4, 5]), 0, 5, null, 0))).toMatch(/x and out overlap in memory/);
    expect(errorOf(() => s.logSoftmaxInto(z, wide, 0, 5, make(s, 'f64', [4, 3]), 0))).toMatch(/shift is f64 but x is f32/);
    s.logSoftmaxInto(z, wide, 4, 5, shift, 2);
  });

  test('a tensor past the end of its buffer, a bad offset, a non-tensor', () => {
    const buf = s.alloc('f32', 10);
    const out = make(s, 'f32', [1]);
    expect(errorOf(() => s.clipGradNorm(tensor(buf, 5, [6]), 1, out))).toMatch(/^ERR_INVALID_ARGUMENT: .*runs past the end of its buffer/);
    expect(errorOf(() => s.clipGradNorm(tensor(buf, -1, [2]), 1, out))).toMatch(/^ERR_INVALID_ARGUMENT: tensor offset/);
    expect(errorOf(() => s.clipGradNorm(tensor(buf, 0.5, [2]), 1, out))).toMatch(/^ERR_INVALID_ARGUMENT/);
    expect(errorOf(() => s.clipGradNorm(tensor(buf, 0, [0]), 1, out))).toMatch(/^ERR_INVALID_ARGUMENT: tensor dimension/);
    // Shapes are held inline, eight sizes at most (common/tensor.h's Dims): nine are refused, eight work.
    expect(errorOf(() => s.clipGradNorm(tensor(buf, 0, [1, 1, 1, 1, 1, 1, 1, 1, 2]), 1, out))).toMatch(/^ERR_INVALID_ARGUMENT: clipGradNorm: .* has more than 8 dimensions/);
    s.clipGradNorm(tensor(buf, 0, [1, 1, 1, 1, 1, 1, 1, 2]), 1, out);
    expect(errorOf(() => s.clipGradNorm({} as never, 1, out))).toMatch(/^ERR_INVALID_ARGUMENT/);
    expect(errorOf(() => s.clipGradNorm(null as never, 1, out))).toMatch(/^ERR_INVALID_ARGUMENT/);
  });

  test('dtype mismatches and buffers of another stream', () => {
    const a = make(s, 'f32', [4]), b = make(s, 'f64', [4]);
    expect(errorOf(() => s.multiply(a, b, a))).toMatch(/^ERR_INVALID_ARGUMENT: multiply: b is f64 but a is f32/);
    expect(errorOf(() => s.write(a, new Float64Array(4)))).toMatch(/^ERR_INVALID_ARGUMENT: write: a f32 tensor takes a Float32Array/);
    expect(errorOf(() => s.write(a, new Float32Array(3)))).toMatch(/has 3 elements but the tensor \[4\] has 4/);
    const other = backend.createStream();
    try {
      const c = make(other, 'f32', [4]);
      expect(errorOf(() => s.multiply(a, c, a))).toMatch(/belongs to another stream/);
    } finally {
      other.dispose();
    }
  });

  test('options: NaN, negative or out-of-range hyperparameters', () => {
    const p = make(s, 'f32', [4]), g = make(s, 'f32', [4]), m = make(s, 'f32', [4]), v = make(s, 'f32', [4]);
    const ok = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, step: 1 };
    expect(errorOf(() => s.adam(p, g, m, v, { ...ok, lr: NaN }))).toMatch(/^ERR_INVALID_ARGUMENT: lr must be finite/);
    expect(errorOf(() => s.adam(p, g, m, v, { ...ok, beta1: 1 }))).toMatch(/beta1 must be in/);
    expect(errorOf(() => s.adam(p, g, m, v, { ...ok, step: 0 }))).toMatch(/step must be an integer/);
    expect(errorOf(() => s.adam(p, g, m, v, { ...ok, decoupled: 'yes' as never }))).toMatch(/decoupled must be a boolean/);
    expect(errorOf(() => s.dropoutForward(p, m, v, 1, 1))).toMatch(/dropout probability must be in/);
    expect(errorOf(() => s.alloc('f16' as never, 4))).toMatch(/dtype must be 'f32', 'f64', 'i32' or 'i8'/);
    expect(errorOf(() => s.alloc('f32', 0))).toMatch(/alloc length/);
    expect(errorOf(() => s.alloc('f32', 2 ** 40))).toMatch(/^ERR_OUT_OF_MEMORY: cannot allocate .* more than this machine's memory/);
    expect(errorOf(() => backend.createRnn({ cell: 'lstm2' as never, inputSize: 2, hiddenSize: 2, layers: 1 }))).toMatch(/cell must be one of/);
    expect(errorOf(() => backend.createRnn({ cell: 'lstm', inputSize: 2, hiddenSize: 0, layers: 1 }))).toMatch(/hiddenSize must be an integer/);
  });
});

describe('the recurrent stack', () => {
  const T = 3, B = 2, I = 2, H = 3;
  const rnn = backend.createRnn({ cell: 'lstm', inputSize: I, hiddenSize: H, layers: 2 });
  const sp = rnn.spaces(T, B);
  const args = () => ({
    x: make(s, 'f32', [T, B, I]), y: make(s, 'f32', [T, B, H]), weights: make(s, 'f32', [rnn.weightSize]),
    reserve: make(s, 'f32', [sp.reserve]), workspace: make(s, 'f32', [sp.workspace]), training: true,
  });

  test('lengths longer than T, zero, or of the wrong count', () => {
    const a = args();
    expect(errorOf(() => s.rnnForward(rnn, { ...a, lengths: Int32Array.from([4, 1]) }))).toMatch(/^ERR_INVALID_ARGUMENT: rnnForward: lengths\[0\] = 4 must be in \[1, 3\]/);
    expect(errorOf(() => s.rnnForward(rnn, { ...a, lengths: Int32Array.from([2, 0]) }))).toMatch(/lengths\[1\] = 0 must be in \[1, 3\]/);
    expect(errorOf(() => s.rnnForward(rnn, { ...a, lengths: Int32Array.from([2]) }))).toMatch(/lengths has 1 entries but the batch has 2/);
    expect(errorOf(() => s.rnnForward(rnn, { ...a, lengths: [2, 2] as never }))).toMatch(/lengths must be an Int32Array/);
  });

  test('wrong input width, state shape, or a reserve that is too small', () => {
    const a = args();
    expect(errorOf(() => s.rnnForward(rnn, { ...a, x: make(s, 'f32', [T, B, I + 1]) }))).toMatch(/x must have shape \[3, 2, 2\]/);
    expect(errorOf(() => s.rnnForward(rnn, { ...a, hx: make(s, 'f32', [1, B, H]) }))).toMatch(/hx must have shape \[2, 2, 3\]/);
    expect(errorOf(() => s.rnnForward(rnn, { ...a, reserve: make(s, 'f32', [sp.reserve - 1]) }))).toMatch(/reserve has .* needs/);
    expect(errorOf(() => s.rnnForward(rnn, { ...a, weights: make(s, 'f32', [rnn.weightSize + 1]) }))).toMatch(/weights must have shape/);
  });

  test('a batchInvariant that is not a boolean', () => {
    const a = { ...args(), training: false };
    expect(errorOf(() => s.rnnForward(rnn, { ...a, batchInvariant: 'yes' as never }))).toMatch(/^ERR_INVALID_ARGUMENT: batchInvariant must be a boolean/);
    s.rnnForward(rnn, { ...a, batchInvariant: true });
  });
});

describe('data-dependent errors surface at the next read, and the stream recovers', () => {
  test('token ids >= vocabulary size or negative', async () => {
    const table = make(s, 'f32', [5, 2]), out = make(s, 'f32', [3, 2]);
    for (const bad of [5, -1]) {
      s.embeddingForward(table, make(s, 'i32', [3], [1, bad, 2]), out);
      await expect(s.sync()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(new RegExp(`token id ${bad} at position 1 is outside the vocabulary \\[0, 5\\)`)) });
    }
    const tg = make(s, 'i32', [3], [1, 7, 0]);
    s.crossEntropy(make(s, 'f32', [3, 5]), tg, 0, make(s, 'f32', [2]), null);
    await expect(s.sync()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/target id 7/) });
    // The stream still works afterwards.
    const x = make(s, 'f32', [2], [3, 4]);
    s.multiply(x, x, x);
    expect(Array.from(await s.read(x))).toEqual([9, 16]);
  });

  test('NaN or Infinity in input data', () => {
    const x = make(s, 'f32', [3]);
    expect(errorOf(() => s.write(x, Float32Array.from([1, NaN, 2])))).toMatch(/^ERR_NON_FINITE: write: element 1 of the data is nan/);
    expect(errorOf(() => s.write(x, Float32Array.from([Infinity, 0, 2])))).toMatch(/^ERR_NON_FINITE: write: element 0/);
  });

  test('a fill value an i32 tensor cannot hold', async () => {
    const ids = make(s, 'i32', [2]);
    for (const bad of [2 ** 31, -(2 ** 31) - 1, 1.5, NaN])
      expect(errorOf(() => s.fill(ids, bad))).toMatch(/^ERR_INVALID_ARGUMENT: fill value must be/);
    s.fill(ids, -(2 ** 31));
    expect(Array.from(await s.read(ids))).toEqual([-(2 ** 31), -(2 ** 31)]);
  });
});

describe('released memory and disposed streams', () => {
  test('a released buffer', async () => {
    const t = make(s, 'f32', [4], [1, 2, 3, 4]);
    const before = s.read(t); // queued before the release: still completes
    t.buffer.free();
    expect(Array.from(await before)).toEqual([1, 2, 3, 4]);
    expect(t.buffer.released).toBe(true);
    expect(errorOf(() => s.fill(t, 0))).toMatch(/^ERR_DISPOSED: fill: destination refers to a buffer that was released/);
    expect(errorOf(() => s.read(t))).toMatch(/^ERR_DISPOSED/);
  });

  test('a disposed stream', async () => {
    const d = backend.createStream();
    const t = make(d, 'f32', [2]);
    d.dispose();
    expect(d.disposed).toBe(true);
    expect(errorOf(() => d.fill(t, 1))).toMatch(/^ERR_DISPOSED: this stream \(model\) was disposed/);
    expect(errorOf(() => d.alloc('f32', 1))).toMatch(/^ERR_DISPOSED/);
    d.dispose(); // idempotent
  });
});
