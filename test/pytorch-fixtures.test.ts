// PyTorch parity, checked in CI on the CPU backend: fixtures made on the GPU machine by
// bench/pytorch_fixtures.py (our checkpoint loaded into nn.Embedding + nn.LSTM / nn.GRU /
// nn.RNN + nn.Linear with cuDNN; loss and every gradient) under test/fixtures. The same
// weights and batch through our CPU backend must give the same loss and gradients (1e-4).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseConfig } from '../lib/checkpoint';
import { readSafetensorsFile } from '../lib/io/safetensors';
import { Network } from '../lib/nn/network';
import { backend, relError } from './helpers';

const dir = join(__dirname, 'fixtures');
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.fixture.safetensors')).sort() : [];

if (files.length === 0) {
  test.skip('SKIPPED: no PyTorch fixtures yet (they are made on the GPU machine by scripts/gpu-check.sh)', () => {});
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
          expect(Math.abs(loss - torchLoss) / Math.abs(torchLoss)).toBeLessThanOrEqual(1e-4);
          for (const e of net.layout) {
            expect.soft(relError(await net.readGrad(e.name), get(`grad.${e.name}`).data as Float32Array), `d ${e.name}`).toBeLessThanOrEqual(1e-4);
          }
          expect.soft(relError(await net.stream.read(st.dhx), get('grad.h0').data as Float32Array), 'd h0').toBeLessThanOrEqual(1e-4);
          if (cfg.cell === 'lstm') {
            expect.soft(relError(await net.stream.read(st.dcx), get('grad.c0').data as Float32Array), 'd c0').toBeLessThanOrEqual(1e-4);
          }
        } finally {
          net.dispose();
        }
      });
    }
  },
);
