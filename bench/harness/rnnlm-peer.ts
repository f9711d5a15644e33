/**
 * rnnlm itself as a benchmark peer, through the public API a user calls: LanguageModel.fit in
 * stream mode (Adam, clipNorm, carried state) and LanguageModel.generate, token by token.
 */
import { selectBackend } from '../../lib/backend';
import type { Backend } from '../../lib/backend/types';
import { LanguageModel } from '../../lib/model';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../lib/util/package-root';
import type { BenchConfig } from './configs';
import { PeerUnavailable, syntheticTokens, type Peer } from './peer';

export function rnnlmPeer(device: 'cpu' | 'cuda') {
  return async (c: BenchConfig, seed: number): Promise<Peer> => {
    let backend: Backend;
    try {
      backend = selectBackend(device).backend;
    } catch (e) {
      throw new PeerUnavailable((e as Error).message.split('\n')[0]);
    }
    const model = await LanguageModel.create({
      vocabSize: c.vocabSize, cell: c.cell, layers: c.layers, hiddenSize: c.hiddenSize, embeddingSize: c.embeddingSize,
      device, seed,
    });
    const { blas, device: name, cudnn } = backend.info() as { blas?: { library: string; threads: number }; device?: string; cudnn?: number };
    const info: Record<string, string | number | boolean> = {
      version: (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version,
      device: String(name ?? device),
    };
    if (blas) Object.assign(info, { blas: blas.library, threads: blas.threads });
    if (cudnn) Object.assign(info, { cudnn, asyncUploads: process.env.RNNLM_CUDA_ASYNC_UPLOADS === '1' });
    let call = 0;
    return {
      info,
      notes: [],
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
        return { loss: logs[logs.length - 1].loss, steady };
      },
      async generate(tokens) {
        // Through sentence ends, as the other peers (an untrained model samples <eos> often).
        const text = await model.generate({ prompt: [5], maxTokens: tokens, temperature: 1, seed: seed + ++call, stopAtEos: false });
        return text.split(' ').length;
      },
      peakDeviceBytes: () => backend.memoryStats().peakBytes,
      dispose: () => model.dispose(),
    };
  };
}
