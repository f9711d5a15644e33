// npm run reproduce:brown — word-level LSTM on the Brown corpus with the split of Bengio et al.
// (2003): the first 800,000 words train, the next 200,000 validation, the rest test; words seen
// 3 times or fewer in training become <unk>. Stream mode, dropout, Adam with a plateau schedule,
// early stopping on validation (the best epoch's weights are kept), a time budget (MINUTES,
// default 60). Prints a learning-curve table, test perplexity and a sample; writes JSON to
// bench/results/reproduce-brown-<device>.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LanguageModel, type EpochLog } from '../lib/index';
import { brownSplit } from './corpora';

const minutes = Number(process.env.MINUTES ?? 60);
const device = (process.env.DEVICE ?? 'cpu') as 'cpu' | 'cuda' | 'auto';
const patience = 2;

async function main() {
  const { words, train, valid, test, tokenizer } = brownSplit();
  const config = { cell: 'lstm' as const, embeddingSize: 256, hiddenSize: 256, layers: 2, dropout: 0.3, tieWeights: true, seed: 1 };
  const fit = { epochs: 1000, batchSize: 20, seqLength: 35, optimizer: { type: 'adam' as const, lr: 2e-3 }, clipNorm: 0.25, lrSchedule: { type: 'plateau' as const, factor: 0.25 } };
  const model = await LanguageModel.create({ tokenizer, device, ...config });
  console.log(`Brown corpus: ${words.toLocaleString('en-US')} words (train 800,000 / valid 200,000 / test ${(words - 1_000_000).toLocaleString('en-US')}); vocabulary ${tokenizer.vocabSize.toLocaleString('en-US')}`);
  console.log(`LSTM ${config.layers} x ${config.hiddenSize}, tied, ${model.parameterCount.toLocaleString('en-US')} parameters, on ${model.device}; up to ${minutes} minutes\n`);
  console.log('epoch  train ppl  valid ppl      lr  tokens/s  minutes');
  const dir = mkdtempSync(join(tmpdir(), 'rnnlm-brown-'));
  const best = join(dir, 'best.safetensors');
  // One controller for both ends: early stopping and the time budget (a plain timer; a composite
  // AbortSignal.any of a timeout signal can lose the timeout to garbage collection on Node 20).
  const stop = new AbortController();
  const budget = setTimeout(() => stop.abort(new DOMException('time budget reached', 'TimeoutError')), minutes * 60_000);
  const history: EpochLog[] = [];
  let bestVal = Infinity, bad = 0;
  const t0 = Date.now();
  try {
    await model.fit(train, {
      ...fit,
      validation: valid,
      signal: stop.signal,
      onEpochEnd: async (log, m) => {
        history.push(log);
        console.log(`${String(log.epoch).padStart(5)}  ${log.perplexity.toFixed(1).padStart(9)}  ${log.valPerplexity!.toFixed(1).padStart(9)}  ${log.lr.toExponential(1).padStart(6)}  ${Math.round(log.tokensPerSecond).toString().padStart(8)}  ${((Date.now() - t0) / 60000).toFixed(1).padStart(7)}`);
        if (log.valLoss! < bestVal) {
          bestVal = log.valLoss!;
          bad = 0;
          await m.save(best); // early stopping keeps the best epoch
        } else if (++bad >= patience) {
          stop.abort();
        }
      },
    });
  } catch (e) {
    const name = (e as Error).name;
    if (name !== 'TimeoutError' && name !== 'AbortError') throw e;
  }
  clearTimeout(budget);
  const wall = (Date.now() - t0) / 1000;
  const final = history.length ? await LanguageModel.load(best, { device }) : model;
  const r = await final.evaluate(test);
  const sample = await final.generate({ prompt: 'The', maxTokens: 60, temperature: 0.8, seed: 1 });
  console.log(`\ntest perplexity ${r.perplexity.toFixed(1)} (best validation perplexity ${Math.exp(bestVal).toFixed(1)}) after ${(wall / 60).toFixed(1)} minutes`);
  console.log(`Bengio et al. (2003): 252 (neural), ~312 (best n-gram)\n\nsample: The ${sample}`);
  const out = {
    task: 'brown-word', device: model.device, cpu: cpus()[0]?.model, cores: cpus().length, node: process.version,
    date: new Date().toISOString(), minutes, wallSeconds: wall, config, fit: { ...fit, patience }, vocabSize: tokenizer.vocabSize,
    parameters: model.parameterCount,
    epochs: history.map((h) => ({ epoch: h.epoch, trainPerplexity: h.perplexity, validPerplexity: h.valPerplexity, lr: h.lr, tokensPerSecond: h.tokensPerSecond, seconds: h.seconds })),
    bestValidPerplexity: Math.exp(bestVal), testPerplexity: r.perplexity, testTokens: r.tokens, sample: 'The ' + sample,
  };
  const resultsDir = join(__dirname, '..', 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `reproduce-brown-${model.device}.json`), JSON.stringify(out, null, 2) + '\n');
  if (final !== model) final.dispose();
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
