import { LanguageModel } from './lib/model';
import { sampleToken } from './lib/sampling';
import { Random } from './lib/util/random';
import { tensor } from './lib/backend/types';
(async () => {
  const V = 10000;
  const m = await LanguageModel.create({ vocabSize: V, embeddingSize: 200, hiddenSize: 200, layers: 2, device: 'cpu' });
  const net = m.network;
  net.resetState(1);
  const n = 2000;
  let t0 = performance.now();
  let row: Float32Array = new Float32Array(V);
  for (let i = 0; i < n; i++) { net.carryState(); const lp = net.logProbs(Int32Array.of(5 + (i % 100)), 1, 1); row = (await net.stream.read(tensor(lp.buffer, lp.offset, [V]))) as Float32Array; }
  console.log('forward+read per token us', ((performance.now() - t0) / n * 1000).toFixed(1));
  t0 = performance.now();
  for (let i = 0; i < n; i++) { net.carryState(); net.logProbs(Int32Array.of(5 + (i % 100)), 1, 1); await net.stream.sync(); }
  console.log('forward+sync per token us', ((performance.now() - t0) / n * 1000).toFixed(1));
  const rng = new Random(1); const ex = new Set([0, 1]);
  t0 = performance.now();
  for (let i = 0; i < n; i++) sampleToken(row, { temperature: 1, topK: 0, topP: 1 }, rng, ex);
  console.log('sample per token us', ((performance.now() - t0) / n * 1000).toFixed(1));
  t0 = performance.now();
  for (let i = 0; i < n; i++) await net.stream.sync();
  console.log('empty sync us', ((performance.now() - t0) / n * 1000).toFixed(1));
  m.dispose();
})();
