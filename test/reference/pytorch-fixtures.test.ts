// PyTorch parity, checked in CI on the CPU backend: fixtures made by bench/pytorch_fixtures.py
// (our checkpoint loaded into nn.Embedding + nn.LSTM / nn.GRU / nn.RNN + nn.Linear, or
// nn.AdaptiveLogSoftmaxWithLoss; loss and every gradient) under test/reference/fixtures, with
// cuDNN on the GPU machine (the adaptive one first with PyTorch's CPU kernels: the script's
// docstring). The same weights and batch through our CPU backend must give the same loss and
// gradients (1e-4) and, where the fixture has PyTorch's log_prob of every position (`logprob`),
// the same log-probabilities: each within 1e-5 absolute. An absolute error d on log p is a
// relative error of about d on p itself, so this bounds every probability, the rarest words'
// included, to 1e-5 relative; a norm-wise relative error would let the large |log p| of rare
// words hide the others' errors. Rounding alone leaves a few float32 ulps of |log p| < 10, ~1e-6.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseConfig } from '../../lib/checkpoint';
import { readSafetensorsFile } from '../../lib/io/safetensors';
import { Network } from '../../lib/nn/network';
import { adaptivePartsReached, backend, relError } from '../helpers';

const dir = join(__dirname, 'fixtures');
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.fixture.safetensors')).sort() : [];

if (files.length === 0) {
  test.skip('SKIPPED: no PyTorch fixtures yet (they are made on the GPU machine by gpu/gpu-check.sh)', () => {});
}

describe.runIf(files.length > 0)(
  'CPU backend == PyTorch on the same weights',
  () => {
    for (const file of files) {
      test(file, async () => {
        const { metadata, tensors } = await readSafetensorsFile(join(dir, file));
        const cfg = parseConfig(file, metadata.config);
        const get = (name: string) => {
          const t = tensors.get(name);
          if (!t) throw new Error(`${file}: missing ${name}`);
          return t;
        };
        const ids = get('batch.ids'), targets = get('batch.targets'), lengths = get('batch.lengths');
        const [T, B] = ids.shape;
        // The head's words and every cluster reached by some counted target.
        if (cfg.softmax.type === 'adaptive') expect(adaptivePartsReached(targets.data as Int32Array, cfg.softmax.cutoffs)).toBe(cfg.softmax.cutoffs.length + 1);
        const net = new Network(backend, { ...cfg, dtype: 'f32', paddingIdx: 0 });
        try {
          for (const e of net.layout) net.writeParam(e.name, get(`weight.${e.name}`).data as Float32Array);
          const st = net.state(B);
          net.stream.write(st.hx, get('batch.h0').data as Float32Array);
          net.stream.write(st.cx, get('batch.c0').data as Float32Array);
          net.zeroGrad();
          net.forward(
            { seqLength: T, batchSize: B, inputs: ids.data as Int32Array, targets: targets.data as Int32Array, lengths: lengths.data as Int32Array },
            { training: true, seed: 1 },
          );
          net.backward({ stateGrads: true });
          const loss = (await net.readLoss()).loss;
          const torchLoss = (get('loss').data as Float32Array)[0];
          let worst = Math.abs(loss - torchLoss) / Math.abs(torchLoss);
          expect(worst).toBeLessThanOrEqual(1e-4);
          const check = (ours: ArrayLike<number>, name: string, what: string) => {
            const err = relError(ours, get(name).data as Float32Array);
            worst = Math.max(worst, err);
            expect.soft(err, what).toBeLessThanOrEqual(1e-4);
          };
          for (const e of net.layout) check(await net.readGrad(e.name), `grad.${e.name}`, `d ${e.name}`);
          check(await net.stream.read(st.dhx), 'grad.h0', 'd h0');
          if (cfg.cell === 'lstm') check(await net.stream.read(st.dcx), 'grad.c0', 'd c0');
          let logProbs = '';
          const torchLogp = tensors.get('logprob');
          if (torchLogp) {
            // From the same initial states (the training pass leaves hx as it was).
            const ours = await net.stream.read(net.logProbs(ids.data as Int32Array, T, B, lengths.data as Int32Array));
            expect(ours.length).toBe(torchLogp.data.length);
            let diff = 0;
            for (let i = 0; i < ours.length; i++) diff = Math.max(diff, Math.abs(ours[i] - (torchLogp.data as Float32Array)[i]));
            expect.soft(diff, 'log-probabilities, largest absolute difference').toBeLessThanOrEqual(1e-5);
            logProbs = `; log-probabilities within ${diff.toExponential(2)}`;
          }
          console.log(`${file} (PyTorch on ${metadata.device}): loss ${loss.toFixed(6)} (PyTorch ${torchLoss.toFixed(6)}), max relative error ${worst.toExponential(2)}${logProbs}`);
        } finally {
          net.dispose();
        }
      });
    }
  },
);
