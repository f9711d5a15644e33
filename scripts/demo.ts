// npm run demo — the main job on the embedded default: a word-level LSTM language model
// on the Brown corpus (Bengio et al. 2003 split: 800k words train, 200k validation, rest
// test; words seen <= 3 times -> <unk>), trained on the CPU for a few minutes, then test
// perplexity. Built directly on the Network layer until the LanguageModel API lands.
import { cpuBackend } from '../lib/backend/cpu';
import { Network } from '../lib/nn/network';
import { Optimizer } from '../lib/nn/optimizer';
import { brownWords } from './corpora';

const minutes = Number(process.env.DEMO_MINUTES ?? 3);
const B = 20, T = 35, H = 200;

function main() {
  const words = brownWords();
  const train = words.slice(0, 800_000), valid = words.slice(800_000, 1_000_000), test = words.slice(1_000_000);
  const freq = new Map<string, number>();
  for (const w of train) freq.set(w, (freq.get(w) ?? 0) + 1);
  const vocab = ['<pad>', '<unk>', ...[...freq].filter(([, c]) => c > 3).map(([w]) => w)];
  const index = new Map(vocab.map((w, i) => [w, i]));
  const encode = (ws: string[]) => Int32Array.from(ws, (w) => index.get(w) ?? 1);
  console.log(`Brown corpus: ${words.length} words; train ${train.length}, valid ${valid.length}, test ${test.length}; vocabulary ${vocab.length}`);
  return { vocab, trainIds: encode(train), validIds: encode(valid), testIds: encode(test) };
}

/** Stream batching: B columns, full windows of T; targets are the next tokens. */
function* windows(ids: Int32Array) {
  const cols = Math.floor((ids.length - 1) / B);
  for (let start = 0; start + T < cols; start += T) {
    const len = T;
    const inputs = new Int32Array(len * B), targets = new Int32Array(len * B);
    for (let t = 0; t < len; t++)
      for (let b = 0; b < B; b++) {
        inputs[t * B + b] = ids[b * cols + start + t];
        targets[t * B + b] = ids[b * cols + start + t + 1];
      }
    yield { seqLength: len, batchSize: B, inputs, targets };
  }
}

async function perplexity(net: Network, ids: Int32Array): Promise<number> {
  let nll = 0, n = 0;
  net.resetState(B);
  for (const batch of windows(ids)) {
    net.forward(batch, { training: false });
    net.carryState();
    const { loss, count } = await net.readLoss();
    nll += loss * count;
    n += count;
  }
  return Math.exp(nll / n);
}

async function run() {
  const { vocab, trainIds, validIds, testIds } = main();
  const net = new Network(cpuBackend, {
    vocabSize: vocab.length, embeddingSize: H, hiddenSize: H, layers: 2, cell: 'lstm',
    dropout: 0.2, tieWeights: true, dtype: 'f32', paddingIdx: 0,
  });
  const opt = new Optimizer(net.stream, { type: 'adam', lr: 2e-3 }, net.parameterCount, 'f32');
  net.initialize(1);
  console.log(`LSTM 2 x ${H}, tied embeddings, ${net.parameterCount.toLocaleString('en-US')} parameters; training for ${minutes} min`);
  const deadline = Date.now() + minutes * 60_000;
  let step = 0, seen = 0, epoch = 0;
  const t0 = Date.now();
  while (Date.now() < deadline) {
    epoch++;
    net.resetState(B);
    for (const batch of windows(trainIds)) {
      if (Date.now() >= deadline) break;
      net.zeroGrad();
      net.forward(batch, { training: true, seed: step });
      net.backward();
      net.carryState(); // after backward: the CUDA backward-weights pass reads hx
      net.clipGradNorm(0.25);
      opt.apply(net.allParams, net.allGrads);
      step++;
      seen += batch.seqLength * B;
      if (step % 100 === 0) {
        const { loss } = await net.readLoss();
        const secs = (Date.now() - t0) / 1000;
        console.log(`epoch ${epoch} step ${step}: train loss ${loss.toFixed(3)} (ppl ${Math.exp(loss).toFixed(0)}), ${(seen / secs).toFixed(0)} tokens/s`);
      }
    }
    console.log(`epoch ${epoch}: validation perplexity ${(await perplexity(net, validIds)).toFixed(1)}`);
  }
  console.log(`test perplexity ${(await perplexity(net, testIds)).toFixed(1)} after ${step} steps (${((Date.now() - t0) / 60000).toFixed(1)} min)`);
  opt.dispose();
  net.dispose();
}

void run();
