// npm run reproduce:shakespeare — character-level LSTM on Tiny Shakespeare
// (../shared/data/tinyshakespeare.txt, first 90 % train, last 10 % validation) for a time
// budget (MINUTES: 15 on the CPU, 10 on a GPU), keeping the best epoch's weights (early
// stopping after 3 epochs without improvement). DEVICE=cuda trains a larger model (3 x 512).
// RECIPE=awd adds AWD-LSTM's regularization and averages the last epochs' weights, then scores
// the validation text with a continuous cache tuned on the end of the training text.
// Prints a learning-curve table and a sample; writes JSON (config, seed, wall time, device,
// per-epoch validation) to bench/results/reproduce-shakespeare-<device>.json (RESULTS_DIR elsewhere).
import { CharTokenizer, LanguageModel } from '../lib/index';
import { tinyShakespeare } from './corpora';
import { cacheOnTest, deviceAndMinutes, fitKeepingBest, runMain, writeReport } from './reproduce';

const RECIPES = {
  cpu: {
    config: { cell: 'lstm', embeddingSize: 64, hiddenSize: 256, layers: 2, dropout: 0.1, seed: 1 },
    fit: { epochs: 1000, batchSize: 32, seqLength: 128, optimizer: { type: 'adam', lr: 2e-3 }, clipNorm: 5, lrSchedule: { type: 'plateau', factor: 0.5 } },
  },
  cuda: {
    config: { cell: 'lstm', embeddingSize: 64, hiddenSize: 512, layers: 3, dropout: 0.35, seed: 1 },
    fit: { epochs: 1000, batchSize: 64, seqLength: 128, optimizer: { type: 'adam', lr: 2e-3 }, clipNorm: 5, lrSchedule: { type: 'plateau', factor: 0.5 } },
  },
} as const;
/**
 * AWD-LSTM's regularizers at a character model's light rates. On the CPU the budget's end is known
 * (~17 epochs): a high learning rate halved every 2 epochs from epoch 8, the last ones averaged; light
 * weight drop (0.2 ended at 1.431, 0.1 at 1.399: a character model overfits little in 15 minutes).
 */
const AWD = {
  cpu: {
    config: { ...RECIPES.cpu.config, lockedDropout: true, weightDrop: 0.1 },
    fit: { ...RECIPES.cpu.fit, optimizer: { type: 'adam', lr: 4e-3 }, lrSchedule: { type: 'step', factor: 0.5, start: 8, every: 2 }, ar: 1, tar: 1, average: { trigger: 'epoch', start: 13 } },
  },
  cuda: {
    config: { ...RECIPES.cuda.config, dropoutHidden: 0.2, lockedDropout: true, weightDrop: 0.3 },
    fit: { ...RECIPES.cuda.fit, ar: 1, tar: 1, average: { trigger: 'nonmonotone', window: 3 } },
  },
} as const;
const patience = 3;

runMain(async () => {
  const { device, minutes } = deviceAndMinutes({ cpu: 15, cuda: 10 });
  const awd = process.env.RECIPE === 'awd';
  const { config, fit } = (awd ? AWD : RECIPES)[device];
  const text = tinyShakespeare();
  const cut = Math.floor(text.length * 0.9);
  const train = text.slice(0, cut), valid = text.slice(cut);
  const tokenizer = CharTokenizer.fit(text);
  const model = await LanguageModel.create({ tokenizer, device, ...config });
  console.log(`Tiny Shakespeare: ${train.length.toLocaleString('en-US')} training and ${valid.length.toLocaleString('en-US')} validation characters, vocabulary ${tokenizer.vocabSize}`);
  console.log(`LSTM ${config.layers} x ${config.hiddenSize}, ${model.parameterCount.toLocaleString('en-US')} parameters, on ${model.device}; up to ${minutes} minutes\n`);
  console.log('epoch  train loss  val loss  val ppl      lr  tokens/s  minutes');
  const run = await fitKeepingBest(model, train, valid, fit, {
    minutes,
    patience,
    row: (log, min) =>
      `${String(log.epoch).padStart(5)}  ${log.loss.toFixed(4).padStart(10)}  ${log.valLoss!.toFixed(4).padStart(8)}  ${log.valPerplexity!.toFixed(3).padStart(7)}  ${log.lr.toExponential(1).padStart(6)}  ${Math.round(log.tokensPerSecond).toString().padStart(8)}  ${min.toFixed(1).padStart(7)}`,
  });
  const final = await run.best.evaluate(valid, { seqLength: 128 });
  const sample = await run.best.generate({ prompt: 'ROMEO:', maxTokens: 400, temperature: 0.8, seed: 1 });
  console.log(`\nvalidation loss ${final.loss.toFixed(4)} nats/char (perplexity ${final.perplexity.toFixed(3)}), best epoch ${run.bestEpoch}, after ${(run.wallSeconds / 60).toFixed(1)} minutes`);
  console.log(`\nsample (temperature 0.8):\nROMEO:${sample}`);
  // The cache, tuned on the training text's last 100,000 characters (the validation text is the one scored).
  const cache = awd ? await cacheOnTest(run.best, train.slice(-100_000), valid, 128) : undefined;
  writeReport(awd ? 'shakespeare-awd' : 'shakespeare', model.device, {
    task: 'tinyshakespeare-char', minutes, wallSeconds: run.wallSeconds, config, fit: { ...fit, patience }, vocabSize: tokenizer.vocabSize,
    parameters: model.parameterCount,
    epochs: run.history.map((h) => ({ epoch: h.epoch, trainLoss: h.loss, valLoss: h.valLoss, tokensPerSecond: h.tokensPerSecond, seconds: h.seconds, lr: h.lr })),
    bestEpoch: run.bestEpoch, finalValidationLoss: final.loss, sample: 'ROMEO:' + sample,
    ...(cache ? { cache } : {}),
  });
  if (run.best !== model) run.best.dispose();
  model.dispose();
});
