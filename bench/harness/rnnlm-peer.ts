/**
 * rnnlm itself as a benchmark peer, through the public API a user calls: LanguageModel.fit in
 * stream mode (Adam, clipNorm, carried state) and LanguageModel.generate, token by token.
 * Variants on CUDA: a precision (rnnlm-cuda-tf32, -bf16, -fp16: fit's default loss scale in
 * fp16), cuDNN's algorithm timed per shape
 * (rnnlm-cuda-auto, through RNNLM_CUDNN_RNN_ALGO: each run is its own process; it notes what it
 * chose) and training steps captured as CUDA graphs (rnnlm-cuda-graphs, RNNLM_GRAPHS=1).
 */
import { selectBackend } from '../../lib/backend';
import type { Backend, Precision, RnnAlgorithm } from '../../lib/backend/types';
import { networkOf } from '../../lib/advanced';
import { LanguageModel } from '../../lib/model';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../lib/util/package-root';
import type { BenchConfig } from './configs';
import { PeerUnavailable, syntheticTokens, type Peer } from './peer';

export function rnnlmPeer(device: 'cpu' | 'cuda', variant: { precision?: Precision; algorithm?: RnnAlgorithm; graphs?: boolean } = {}) {
  return async (c: BenchConfig, seed: number): Promise<Peer> => {
    if (variant.algorithm) process.env.RNNLM_CUDNN_RNN_ALGO = variant.algorithm;
    if (variant.graphs) process.env.RNNLM_GRAPHS = '1';
    let backend: Backend;
    try {
      backend = selectBackend(device).backend;
    } catch (e) {
      throw new PeerUnavailable((e as Error).message.split('\n')[0]);
    }
    const model = await LanguageModel.create({
      vocabSize: c.vocabSize, cell: c.cell, layers: c.layers, hiddenSize: c.hiddenSize, embeddingSize: c.embeddingSize,
      device, seed, precision: variant.precision,
    });
    const { blas, device: name, cudnn } = backend.info() as { blas?: { library: string; threads: number }; device?: string; cudnn?: number };
    const info: Record<string, string | number | boolean> = {
      version: (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version,
      device: String(name ?? device),
    };
    if (blas) Object.assign(info, { blas: blas.library, threads: blas.threads });
    if (cudnn) Object.assign(info, { cudnn, asyncUploads: process.env.RNNLM_CUDA_ASYNC_UPLOADS === '1' });
    if (variant.precision) info.precision = model.precision;
    let call = 0;
    const notes: string[] = [];
    // The algorithm choices so far, as one note (replaced as they grow).
    const noteAlgorithms = () => {
      const chosen = networkOf(model).rnn.algorithms();
      if (!chosen.length) return;
      const ms = (v: number | null | undefined) => (v === null || v === undefined ? '—' : v.toFixed(3));
      notes.length = 0;
      notes.push(`cuDNN algorithms timed: ${chosen.map((a) => `${a.training ? 'training' : 'inference'} B${a.batchSize} T≤${a.seqLength}: ${a.algorithm} (${Object.entries(a.ms).map(([k, v]) => `${k} ${ms(v)}`).join(', ')} ms)`).join('; ')}`);
    };
    return {
      info,
      notes,
      async train(steps) {
        // Exactly `steps` windows of seqLength: B columns of steps * T + 1 tokens. Two epochs when
        // possible, so allocations can be counted over the second one (after the first step).
        const epochs = steps >= 2 ? 2 : 1;
        const per = Math.ceil(steps / epochs);
        const data = syntheticTokens(c.batchSize * (per * c.seqLength + 1), c.vocabSize, seed + ++call);
        const counts: number[] = [];
        const logs = await model.fit(data, {
          mode: 'stream', epochs, batchSize: c.batchSize, seqLength: c.seqLength, progress: false,
          optimizer: { type: 'adam', lr: 1e-3 }, clipNorm: 5, seed,
          onEpochEnd: () => void counts.push(backend.memoryStats().allocations),
        });
        const steady = epochs === 2 ? { allocations: counts[1] - counts[0], steps: per } : undefined;
        noteAlgorithms();
        return { loss: logs[logs.length - 1].loss, steady };
      },
      async generate(tokens) {
        // Through sentence ends, as the other peers (an untrained model samples <eos> often).
        const text = await model.generate({ prompt: [5], maxTokens: tokens, temperature: 1, seed: seed + ++call, stopAtEos: false });
        noteAlgorithms();
        return text.split(' ').length;
      },
      peakDeviceBytes: () => backend.memoryStats().peakBytes,
      dispose: () => model.dispose(),
    };
  };
}
