// The backend's recurrent-stack and stream options, checked natively (the binding does not
// trust lib/): precision (native/common/precision.h) and cuDNN's algorithm
// (native/common/rnn_algorithm.h), which the CPU parses and ignores. The algorithms' parity and
// timings are the GPU check's (gpu/gpu-check.ts).
import { expect, test } from 'vitest';
import { Network, cpuBackend } from '../../lib/advanced';
import { RNN_ALGORITHMS } from '../../lib/backend/types';

test('a stream and an RNN descriptor refuse a precision the device lacks', () => {
  expect(() => cpuBackend.createStream({ precision: 'tf32' })).toThrow(/the cpu backend does not compute in precision 'tf32' \(it supports 'fp32' only\)/);
  expect(() => cpuBackend.createStream({ precision: 'nope' as never })).toThrow(/precision must be one of 'fp32', 'tf32', 'bf16', 'fp16' \(got 'nope'\)/);
  expect(() => cpuBackend.createStream({ precision: 3 as never })).toThrow(/precision must be a string/);
  expect(() => cpuBackend.createRnn({ cell: 'lstm', inputSize: 2, hiddenSize: 2, layers: 1, precision: 'bf16' })).toThrow(/does not compute in precision 'bf16'/);
  cpuBackend.createStream({ precision: 'fp32' }).dispose();
  cpuBackend.createStream({}).dispose();
  expect(cpuBackend.createRnn({ cell: 'gru', inputSize: 2, hiddenSize: 2, layers: 1, precision: 'fp32' }).weightSize).toBeGreaterThan(0);
  // The Network's own check, before anything is allocated.
  expect(() => new Network(cpuBackend, { vocabSize: 5, embeddingSize: 2, hiddenSize: 2, layers: 1, cell: 'lstm', dropout: 0, tieWeights: false, dtype: 'f32', paddingIdx: -1, precision: 'tf32' })).toThrow(
    /the cpu backend does not compute in precision 'tf32' \(it supports 'fp32'\)/,
  );
});

test("the algorithm option: the one list, checked natively; the CPU's one algorithm chooses nothing", () => {
  for (const algorithm of RNN_ALGORITHMS) {
    const rnn = cpuBackend.createRnn({ cell: 'lstm', inputSize: 3, hiddenSize: 4, layers: 2, algorithm });
    expect(rnn.weightSize).toBe(2 * (16 * 3 + 16 * 4 + 32) - 16 * 3 + 16 * 4);
    expect(rnn.algorithms()).toEqual([]);
  }
  expect(() => cpuBackend.createRnn({ cell: 'lstm', inputSize: 3, hiddenSize: 4, layers: 1, algorithm: 'fastest' as never })).toThrow(
    /algorithm must be one of 'standard', 'persist_static', 'persist_static_small_h', 'auto' \(got 'fastest'\)/,
  );
});
