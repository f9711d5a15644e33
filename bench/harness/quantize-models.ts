/**
 * The two trained models of the quantization bench (bench/quantize.ts): zaremba-small's sizes
 * (2 x 200 LSTM, 10,000 words) on Brown (Bengio et al.'s split) and char-lstm's (3 x 512 LSTM,
 * 64-wide embedding) on Tiny Shakespeare (first 90 % train, last 10 % validation), each trained
 * for a few minutes with the reproduce recipes' optimizer and kept at its best validation epoch.
 * Perplexity before and after quantization needs trained weights: random ones say nothing about
 * what rounding costs. Trained once per minutes budget and cached (bench/.cache, git-ignored).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CharTokenizer, LanguageModel, WordTokenizer } from '../../lib/index';
import { brownWords, tinyShakespeare } from '../../examples/corpora';
import { fitKeepingBest } from '../../examples/reproduce';

export interface BenchModel {
  name: 'zaremba-small' | 'char-lstm';
  corpus: string;
  /** The checkpoint (float32). */
  file: string;
  /** The text perplexity is measured on (Brown test, Shakespeare validation). */
  evalText: string;
  /** A prompt for generation and predictNext (its first 20 tokens). */
  prompt: string;
  /** evaluate's batching, as training's. */
  evalShape: { batchSize: number; seqLength: number };
}

/** Brown split as reproduce:brown's, with the vocabulary cut to zaremba-small's 10,000 words. */
function brown() {
  const words = brownWords();
  const train = words.slice(0, 800_000).join(' '), valid = words.slice(800_000, 1_000_000).join(' '), test = words.slice(1_000_000).join(' ');
  return { train, valid, test, tokenizer: WordTokenizer.fit(train, { maxVocab: 10_000 }) };
}

function shakespeare() {
  const text = tinyShakespeare();
  const cut = Math.floor(text.length * 0.9);
  return { train: text.slice(0, cut), valid: text.slice(cut), tokenizer: CharTokenizer.fit(text) };
}

export async function benchModels(minutes: number, cacheDir: string): Promise<BenchModel[]> {
  mkdirSync(cacheDir, { recursive: true });
  const b = brown(), s = shakespeare();
  const out: BenchModel[] = [
    { name: 'zaremba-small', corpus: 'Brown (test)', file: join(cacheDir, `zaremba-small-brown-${minutes}min.safetensors`), evalText: b.test, prompt: 'The Fulton County Grand Jury said Friday an investigation of recent primary election produced no evidence that any irregularities took place', evalShape: { batchSize: 20, seqLength: 35 } },
    { name: 'char-lstm', corpus: 'Tiny Shakespeare (validation)', file: join(cacheDir, `char-lstm-shakespeare-${minutes}min.safetensors`), evalText: s.valid, prompt: 'ROMEO:\nWhat light through yonder', evalShape: { batchSize: 32, seqLength: 128 } },
  ];
  const recipes = [
    { m: out[0], data: b, config: { cell: 'lstm', embeddingSize: 200, hiddenSize: 200, layers: 2, dropout: 0.3, seed: 1 }, fit: { batchSize: 20, seqLength: 35, clipNorm: 0.25, lrSchedule: { type: 'plateau', factor: 0.25 } } },
    { m: out[1], data: s, config: { cell: 'lstm', embeddingSize: 64, hiddenSize: 512, layers: 3, dropout: 0.1, seed: 1 }, fit: { batchSize: 32, seqLength: 128, clipNorm: 5, lrSchedule: { type: 'plateau', factor: 0.5 } } },
  ] as const;
  for (const r of recipes) {
    if (existsSync(r.m.file)) continue;
    console.error(`training ${r.m.name} on ${r.m.corpus.split(' ')[0]} for ${minutes} minutes (cached in ${r.m.file})`);
    const model = await LanguageModel.create({ tokenizer: r.data.tokenizer, device: 'cpu', ...r.config });
    const run = await fitKeepingBest(model, r.data.train, r.data.valid, { epochs: 1000, optimizer: { type: 'adam', lr: 2e-3 }, ...r.fit }, {
      minutes, patience: 2,
      row: (log, min) => `  ${r.m.name} epoch ${log.epoch}: valid ppl ${log.valPerplexity!.toFixed(2)} at ${min.toFixed(1)} min`,
    });
    await run.best.save(r.m.file);
    if (run.best !== model) run.best.dispose();
    model.dispose();
  }
  return out;
}
