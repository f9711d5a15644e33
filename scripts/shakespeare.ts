// npm run reproduce:shakespeare — character-level LSTM on Tiny Shakespeare
// (../shared/data/tinyshakespeare.txt, first 90 % train, last 10 % validation) for a fixed
// time budget (MINUTES, default 15), printing a learning-curve table and a sample, and
// writing JSON (config, seed, wall time, device, per-epoch validation) to bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { CharTokenizer, LanguageModel, type EpochLog } from '../lib/index';
import { tinyShakespeare } from './corpora';

const minutes = Number(process.env.MINUTES ?? 15);
const device = (process.env.DEVICE ?? 'cpu') as 'cpu' | 'cuda' | 'auto';

async function main() {
  const text = tinyShakespeare();
  const cut = Math.floor(text.length * 0.9);
  const train = text.slice(0, cut), valid = text.slice(cut);
  const tokenizer = CharTokenizer.fit(text);
  const config = { cell: 'lstm' as const, embeddingSize: 64, hiddenSize: 256, layers: 2, dropout: 0.1, seed: 1 };
  const fit = { epochs: 1000, batchSize: 32, seqLength: 128, optimizer: { type: 'adam' as const, lr: 2e-3 }, clipNorm: 5, lrSchedule: { type: 'plateau' as const, factor: 0.5 } };
  const model = await LanguageModel.create({ tokenizer, device, ...config });
  console.log(`Tiny Shakespeare: ${train.length.toLocaleString('en-US')} training and ${valid.length.toLocaleString('en-US')} validation characters, vocabulary ${tokenizer.vocabSize}`);
  console.log(`LSTM ${config.layers} x ${config.hiddenSize}, ${model.parameterCount.toLocaleString('en-US')} parameters, on ${model.device}; ${minutes} minutes\n`);
  console.log('epoch  train loss  val loss  val ppl  tokens/s  minutes');
  const t0 = Date.now();
  const history: EpochLog[] = [];
  try {
    await model.fit(train, {
      ...fit,
      validation: valid,
      signal: AbortSignal.timeout(minutes * 60_000),
      onEpochEnd: (log) => {
        history.push(log);
        console.log(`${String(log.epoch).padStart(5)}  ${log.loss.toFixed(4).padStart(10)}  ${log.valLoss!.toFixed(4).padStart(8)}  ${log.valPerplexity!.toFixed(3).padStart(7)}  ${Math.round(log.tokensPerSecond).toString().padStart(8)}  ${((Date.now() - t0) / 60000).toFixed(1).padStart(7)}`);
      },
    });
  } catch (e) {
    if ((e as Error).name !== 'TimeoutError' && (e as Error).name !== 'AbortError') throw e;
  }
  const wall = (Date.now() - t0) / 1000;
  const final = await model.evaluate(valid, { seqLength: 128 });
  const sample = await model.generate({ prompt: 'ROMEO:', maxTokens: 400, temperature: 0.8, seed: 1 });
  console.log(`\nfinal validation loss ${final.loss.toFixed(4)} nats/char (perplexity ${final.perplexity.toFixed(3)}) after ${(wall / 60).toFixed(1)} minutes`);
  console.log(`\nsample (temperature 0.8):\nROMEO:${sample}`);
  const out = {
    task: 'tinyshakespeare-char', device: model.device, cpu: cpus()[0]?.model, cores: cpus().length, node: process.version,
    date: new Date().toISOString(), minutes, wallSeconds: wall, config, fit, vocabSize: tokenizer.vocabSize, parameters: model.parameterCount,
    epochs: history.map((h) => ({ epoch: h.epoch, trainLoss: h.loss, valLoss: h.valLoss, tokensPerSecond: h.tokensPerSecond, seconds: h.seconds, lr: h.lr })),
    finalValidationLoss: final.loss, sample: 'ROMEO:' + sample,
  };
  const dir = join(__dirname, '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `reproduce-shakespeare-${model.device}.json`), JSON.stringify(out, null, 2) + '\n');
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
