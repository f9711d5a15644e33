// The physical limit beside each GPU figure (bench/harness/flops.ts): FLOPs per token against an
// independent count — every weight matrix (not the embedding table, not a bias) multiplies each
// token once in the forward pass, 2 FLOPs per element — and each GPU name's peak row.
import { expect, test } from 'vitest';
import { CONFIGS, forwardFlopsPerToken, trainingFlopsPerToken } from '../../bench/harness/configs';
import { flopsFigure, peakTflops, peerPrecision } from '../../bench/harness/flops';
import { parameterSpecs } from '../../lib/nn/layout';

test('FLOPs per token: 2 x the weight matrices\' elements forward (the state_dict\'s, embedding and biases left out), 3 x that in training', () => {
  for (const c of CONFIGS) {
    const specs = parameterSpecs({ ...c, tieWeights: false });
    const matrices = specs.filter((s) => s.shape.length === 2 && s.name !== 'encoder.weight').reduce((a, s) => a + s.shape[0] * s.shape[1], 0);
    expect(forwardFlopsPerToken(c)).toBe(2 * matrices);
    expect(trainingFlopsPerToken(c)).toBe(6 * matrices);
  }
});

test("each GPU's dense peak by its name and precision, the peer's precision by its name, and the figure", () => {
  expect([peakTflops('NVIDIA H100 80GB HBM3', 'fp32'), peakTflops('NVIDIA H100 PCIe', 'fp32'), peakTflops('NVIDIA H200', 'bf16'), peakTflops('NVIDIA A100-SXM4-80GB', 'tf32')])
    .toEqual([67, 51, 989.4, 156]);
  expect(peakTflops('NVIDIA GeForce RTX 4090', 'fp32')).toBeUndefined();
  expect(peakTflops(undefined, 'fp32')).toBeUndefined();
  expect(['rnnlm-cuda', 'rnnlm-cuda-tf32', 'rnnlm-cuda-bf16', 'pytorch-amp-fp16-cudagraph', 'pytorch-cudagraph'].map(peerPrecision)).toEqual(['fp32', 'tf32', 'bf16', 'fp16', 'fp32']);
  const small = CONFIGS.find((c) => c.name === 'zaremba-small')!;
  // 173,236 tokens/s (the H100 report's) x 6 x 2,640,000 matrix elements = 2.744 TFLOP/s.
  const tflops = (173_236 * trainingFlopsPerToken(small)) / 1e12;
  expect(flopsFigure(small, 173_236, 'NVIDIA H100 80GB HBM3', 'fp32')).toBe(`${tflops.toFixed(2)} TFLOP/s, ${((100 * tflops) / 67).toFixed(1)} % of the fp32 peak (67)`);
  expect(flopsFigure(small, 173_236, 'some GPU', 'fp32')).toBe(`${tflops.toFixed(2)} TFLOP/s`);
});
