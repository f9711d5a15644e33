// PyTorch parity, checked in CI on the CPU backend: fixtures made on the GPU machine by
// bench/pytorch_fixtures.py (our checkpoint loaded into nn.Embedding + nn.LSTM / nn.GRU /
// nn.RNN + nn.Linear with cuDNN; loss and every gradient) under test/reference/fixtures. The same
// weights and batch through our CPU backend must give the same loss and gradients (1e-4).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseConfig } from '../../lib/checkpoint';
import { readSafetensorsFile } from '../../lib/io/safetensors';
import { Network } from '../../lib/nn/network';
import { backend, relError } from '../helpers';

const dir = join(__dirname, 'fixtures');
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.fixture.safetensors')).sort() : [];

if (files.length === 0) {
  test.skip('SKIPPED: no PyTorch fixtures yet (they are made on the GPU machine by gpu/gpu-check.sh)', () => {});
}

describe.runIf(files.length > 0)(
  'CPU backend == PyTorch (cuDNN) on the same weights',
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
          console.log(`${file}: loss ${loss.toFixed(6)} (PyTorch ${torchLoss.toFixed(6)}), max relative error ${worst.toExponential(2)}`);
        } finally {
          net.dispose();
        }
      });
    }
  },
);
