// npm run reproduce:brown — word-level LSTM on the Brown corpus with the split of Bengio et al.
// (2003): the first 800,000 words train, the next 200,000 validation, the rest test; words seen
// 3 times or fewer in training become <unk>. Stream mode, dropout, Adam with a plateau schedule,
// early stopping on validation (the best epoch's weights are kept), a time budget (MINUTES:
// 60 on the CPU, 20 on a GPU). DEVICE=cuda trains a larger model (2 x 650, as Zaremba et al.'s
// medium model). RECIPE=awd trains the same model with AWD-LSTM's regularization and iterate
// averaging (Merity et al. 2017), then tunes a continuous cache on the validation text and
// scores the test text with it (Grave et al. 2016). Prints a learning-curve table, test
// perplexity and a sample; writes JSON to bench/results/reproduce-brown[-awd]-<device>.json
// (RESULTS_DIR elsewhere).
import { LanguageModel } from '../lib/index';
import { brownSplit } from './corpora';
import { cacheOnTest, deviceAndMinutes, fitKeepingBest, runMain, writeReport } from './reproduce';

export const RECIPES = {
  cpu: {
    config: { cell: 'lstm', embeddingSize: 256, hiddenSize: 256, layers: 2, dropout: 0.3, tieWeights: true, seed: 1 },
    fit: { epochs: 1000, batchSize: 20, seqLength: 35, optimizer: { type: 'adam', lr: 2e-3 }, clipNorm: 0.25, lrSchedule: { type: 'plateau', factor: 0.25 } },
  },
  cuda: {
    config: { cell: 'lstm', embeddingSize: 650, hiddenSize: 650, layers: 2, dropout: 0.5, tieWeights: true, seed: 1 },
    fit: { epochs: 1000, batchSize: 20, seqLength: 35, optimizer: { type: 'adam', lr: 1e-3 }, clipNorm: 0.25, lrSchedule: { type: 'plateau', factor: 0.25 } },
  },
} as const;
/**
 * AWD-LSTM's recipe on the same model, sized for the CPU's hour (about 14 epochs, where AWD-LSTM
 * trains for hundreds): its regularizers at moderate rates, variable-length BPTT, and the mean of
 * the iterates once validation stops improving (NT-ASGD's trigger; Adam, which gets further than
 * SGD in so few epochs).
 */
export const AWD = {
  cpu: {
    config: { ...RECIPES.cpu.config, dropoutInput: 0.35, dropoutHidden: 0.2, dropoutOutput: 0.3, dropoutEmbedding: 0.05, lockedDropout: true, weightDrop: 0.3 },
    fit: { ...RECIPES.cpu.fit, variableLength: true, ar: 2, tar: 1, average: { trigger: 'nonmonotone', window: 2 } },
  },
  cuda: {
    config: { ...RECIPES.cuda.config, dropoutInput: 0.5, dropoutHidden: 0.25, dropoutOutput: 0.4, dropoutEmbedding: 0.1, lockedDropout: true, weightDrop: 0.5 },
    fit: { ...RECIPES.cuda.fit, variableLength: true, ar: 2, tar: 1, average: { trigger: 'nonmonotone', window: 3 } },
  },
} as const;
export const patience = 2;

// Run as a script, not when brown-adaptive.ts imports the recipe.
if (require.main === module) runMain(async () => {
  const { device, minutes } = deviceAndMinutes({ cpu: 60, cuda: 20 });
  const awd = process.env.RECIPE === 'awd';
  const { config, fit } = (awd ? AWD : RECIPES)[device];
  const { words, train, valid, test, tokenizer } = brownSplit();
  const model = await LanguageModel.create({ tokenizer, device, ...config });
  console.log(`Brown corpus: ${words.toLocaleString('en-US')} words (train 800,000 / valid 200,000 / test ${(words - 1_000_000).toLocaleString('en-US')}); vocabulary ${tokenizer.vocabSize.toLocaleString('en-US')}`);
  console.log(`LSTM ${config.layers} x ${config.hiddenSize}, tied, ${model.parameterCount.toLocaleString('en-US')} parameters, on ${model.device}${awd ? ', AWD-LSTM recipe' : ''}; up to ${minutes} minutes\n`);
  console.log('epoch  train ppl  valid ppl      lr  tokens/s  minutes');
  const run = await fitKeepingBest(model, train, valid, fit, {
    minutes,
    patience,
    row: (log, min) =>
      `${String(log.epoch).padStart(5)}  ${log.perplexity.toFixed(1).padStart(9)}  ${log.valPerplexity!.toFixed(1).padStart(9)}  ${log.lr.toExponential(1).padStart(6)}  ${Math.round(log.tokensPerSecond).toString().padStart(8)}  ${min.toFixed(1).padStart(7)}`,
  });
  const r = await run.best.evaluate(test);
  const sample = await run.best.generate({ prompt: 'The', maxTokens: 60, temperature: 0.8, seed: 1 });
  const best = run.bestEpoch > 0 ? `best validation perplexity ${Math.exp(run.bestLoss).toFixed(1)}, epoch ${run.bestEpoch}` : 'no epoch finished within the budget';
  console.log(`\ntest perplexity ${r.perplexity.toFixed(1)} (${best}) after ${(run.wallSeconds / 60).toFixed(1)} minutes`);
  console.log(`Bengio et al. (2003): 252 (neural), ~312 (best n-gram)\n\nsample: The ${sample}`);
  // The cache: theta and lambda tuned on the validation text, then the test text scored with them.
  const cache = awd ? await cacheOnTest(run.best, valid, test) : undefined;
  writeReport(awd ? 'brown-awd' : 'brown', model.device, {
    task: 'brown-word', minutes, wallSeconds: run.wallSeconds, config, fit: { ...fit, patience }, vocabSize: tokenizer.vocabSize,
    parameters: model.parameterCount,
    epochs: run.history.map((h) => ({ epoch: h.epoch, trainPerplexity: h.perplexity, validPerplexity: h.valPerplexity, lr: h.lr, tokensPerSecond: h.tokensPerSecond, seconds: h.seconds })),
    bestEpoch: run.bestEpoch, bestValidPerplexity: run.bestEpoch > 0 ? Math.exp(run.bestLoss) : null, testPerplexity: r.perplexity, testTokens: r.tokens, sample: 'The ' + sample,
    ...(cache ? { cache } : {}),
  });
  if (run.best !== model) run.best.dispose();
  model.dispose();
});
