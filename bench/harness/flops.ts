/**
 * The physical limit beside each GPU figure (issue 26): achieved TFLOP/s of a run (tokens/s x
 * configs.ts's FLOPs per token, matrix products only: a slight underestimate) against the GPU's
 * dense peak for the precision it computed in.
 */
import type { Precision } from '../../lib/backend/types';
import { forwardFlopsPerToken, trainingFlopsPerToken, type BenchConfig } from './configs';

/**
 * Dense peak TFLOP/s by GPU (NVIDIA's datasheets; tensor-core figures without sparsity), matched
 * on the device name the report records. H200 has H100 SXM's compute. Unknown GPUs: none.
 */
const PEAKS: { name: RegExp; tflops: Record<Precision, number> }[] = [
  { name: /H100.*PCIe/i, tflops: { fp32: 51, tf32: 378, bf16: 756, fp16: 756 } },
  { name: /H100|H200|GH200/i, tflops: { fp32: 67, tf32: 494.7, bf16: 989.4, fp16: 989.4 } },
  { name: /A100/i, tflops: { fp32: 19.5, tf32: 156, bf16: 312, fp16: 312 } },
];

export function peakTflops(gpu: string | undefined, precision: Precision): number | undefined {
  return gpu ? PEAKS.find((p) => p.name.test(gpu))?.tflops[precision] : undefined;
}

/** The precision a bench peer computes its products in (TF32 is off in PyTorch's peers). */
export function peerPrecision(peer: string): Precision {
  const m = /(tf32|bf16|fp16)/.exec(peer);
  return (m?.[1] as Precision | undefined) ?? 'fp32';
}

/** "12.3 TFLOP/s, 18 % of the fp32 peak (67)": a run's training (or generation) tokens/s on a config, on that GPU. */
export function flopsFigure(c: BenchConfig, tokensPerSecond: number, gpu: string | undefined, precision: Precision, what: 'train' | 'generate' = 'train'): string {
  const tflops = (tokensPerSecond * (what === 'train' ? trainingFlopsPerToken(c) : forwardFlopsPerToken(c))) / 1e12;
  const peak = peakTflops(gpu, precision);
  const digits = tflops < 10 ? 2 : 1;
  return `${tflops.toFixed(digits)} TFLOP/s${peak ? `, ${((100 * tflops) / peak).toFixed(tflops / peak < 0.1 ? 1 : 0)} % of the ${precision} peak (${peak})` : ''}`;
}
