// The benchmark's peers must train the model they are timed on: a peer that computes something
// else (a backend bug, a wrong formulation) would make every ratio against it meaningless.
import { describe, expect, it } from 'vitest';
import { QUICK } from '../../bench/harness/configs';
import { implausibleFirstLoss } from '../../bench/harness/peer';
import { tfjsPeer } from '../../bench/harness/tfjs-peer';

describe('benchmark peers', () => {
  it('tfjs on the cpu and wasm backends gives the same first loss from the same seed, near ln(V - 4)', async () => {
    const config = { ...QUICK, vocabSize: 300 };
    const first: Record<string, number> = {};
    for (const backend of ['cpu', 'wasm'] as const) {
      const peer = await tfjsPeer(backend)(config, 7);
      first[backend] = (await peer.train(1)).loss;
      peer.dispose();
    }
    // wasm used to read 1.26e-44 here: its oneHot wrote int32 bits under a float32 dtype.
    expect(Math.abs(first.wasm - first.cpu) / first.cpu).toBeLessThan(1e-4);
    expect(implausibleFirstLoss(first.cpu, config.vocabSize)).toBeUndefined();
    expect(Math.abs(first.cpu - Math.log(config.vocabSize - 4))).toBeLessThan(0.5);
  });

  it('a first loss that no fresh model gives is flagged with the expected value', () => {
    const V = 10_000;
    for (const wrong of [NaN, Infinity, 1.26e-44, 0, 20 * 9.21, -9.21]) {
      expect(implausibleFirstLoss(wrong, V)).toMatch(/ln\(9996\) = 9\.21.*not reported/);
    }
    expect(implausibleFirstLoss(9.3, V)).toBeUndefined();
    expect(implausibleFirstLoss(Math.log(61), 65)).toBeUndefined();
  });
});
