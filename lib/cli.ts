#!/usr/bin/env node
/**
 * The rnnlm command line: train, eval, generate, predict, summary. Options are the API's
 * options in kebab-case (DESIGN.md, "CLI"); every failure prints one line and exits non-zero.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ALL_PEERS, runBench } from './bench/run';
import { CONFIGS } from './bench/configs';
import { RnnlmError } from './errors';
import { LanguageModel, type CreateOptions } from './model';
import { CharTokenizer, WordTokenizer } from './tokenizers';
import type { FitOptions, LrSchedule } from './train';

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be an integer`);
    return n;
  };
}
function num(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new RnnlmError('ERR_INVALID_ARGUMENT', `cannot read ${path}: ${(e as Error).message}`);
  }
}

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

const lines = (text: string) => text.split(/\r?\n/).filter((l) => l.trim().length > 0);

const modelOptions = (cmd: Command) =>
  cmd
    .addOption(new Option('--cell <cell>', 'recurrent cell').choices(['lstm', 'gru', 'rnn_tanh', 'rnn_relu']).default('lstm'))
    .option('--embedding-size <n>', 'embedding size', int('--embedding-size'), 200)
    .option('--hidden-size <n>', 'hidden size', int('--hidden-size'), 200)
    .option('--layers <n>', 'stacked recurrent layers', int('--layers'), 2)
    .option('--dropout <p>', 'dropout on embeddings, between layers and on the output', num('--dropout'), 0)
    .option('--tie-weights', 'share the embedding matrix with the decoder', false);

const deviceOption = () => new Option('--device <device>', 'where to compute').choices(['auto', 'cpu', 'cuda']).default('auto');

export function program(): Command {
  const prog = new Command('rnnlm')
    .description('Recurrent language models (LSTM, GRU, RNN) on the CPU and NVIDIA GPUs')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  modelOptions(
    prog
      .command('train')
      .description('train a model on a text file and save it')
      .requiredOption('--train <file>', 'training text (UTF-8)')
      .option('--validation <file>', 'validation text (default: the last --valid-split of the training text)')
      .option('--valid-split <fraction>', 'fraction of the training text held out for validation when no --validation', num('--valid-split'), 0.1)
      .option('--out <file>', 'where to save the trained model', 'model.safetensors')
      .addOption(new Option('--tokenizer <kind>', 'word or character tokens').choices(['word', 'char']).default('word'))
      .option('--lowercase', 'lowercase words (word tokenizer)', false)
      .option('--min-freq <n>', 'words seen fewer times become <unk>', int('--min-freq'), 1)
      .option('--max-vocab <n>', 'largest vocabulary, specials included', int('--max-vocab'))
      .addOption(new Option('--mode <mode>', 'stream: one text, truncated BPTT; sentences: one sentence per line').choices(['stream', 'sentences']).default('stream')),
  )
    .addOption(deviceOption())
    .option('--seed <n>', 'seed of initialisation, dropout and shuffling', int('--seed'), 1)
    .option('--epochs <n>', 'passes over the training data', int('--epochs'), 1)
    .option('--batch-size <n>', 'sequences per batch', int('--batch-size'))
    .option('--seq-length <n>', 'time steps per window (stream mode)', int('--seq-length'), 35)
    .addOption(new Option('--optimizer <type>', 'optimizer').choices(['adam', 'adamw', 'sgd']).default('adam'))
    .option('--lr <rate>', 'learning rate (default: 1e-3 for Adam, 1 for SGD)', num('--lr'))
    .option('--momentum <m>', 'SGD momentum', num('--momentum'))
    .option('--weight-decay <w>', 'weight decay', num('--weight-decay'))
    .addOption(new Option('--lr-schedule <kind>', 'learning-rate schedule').choices(['constant', 'step', 'plateau']).default('constant'))
    .option('--lr-factor <f>', 'schedule factor (step: 0.5, plateau: 0.25)', num('--lr-factor'))
    .option('--lr-start <epoch>', 'step schedule: first epoch after which the rate decays', int('--lr-start'))
    .option('--clip-norm <n>', 'clip the global gradient norm', num('--clip-norm'))
    .option('--clip-value <v>', 'clip each gradient to [-v, v]', num('--clip-value'))
    .option('--checkpoint-every <steps>', 'also save every N steps (default: every epoch)', int('--checkpoint-every'))
    .option('--resume', 'continue from the checkpoint at --out', false)
    .option('--no-progress', 'no progress bar')
    .option('--sample <n>', 'print n generated tokens after each epoch', int('--sample'), 0)
    .action(async (o) => {
      const text = readText(o.train);
      let trainText = text, validText: string | undefined = o.validation ? readText(o.validation) : undefined;
      if (!validText && o.validSplit > 0) {
        const cut = Math.floor(text.length * (1 - o.validSplit));
        trainText = text.slice(0, cut);
        validText = text.slice(cut);
      }
      const sentences = o.mode === 'sentences';
      const tokenizer = o.tokenizer === 'char'
        ? CharTokenizer.fit(trainText, { minFreq: o.minFreq, ...(o.maxVocab ? { maxVocab: o.maxVocab } : {}), unk: true })
        : WordTokenizer.fit(sentences ? lines(trainText) : trainText, { minFreq: o.minFreq, lowercase: o.lowercase, ...(o.maxVocab ? { maxVocab: o.maxVocab } : {}) });
      const createOpts: CreateOptions = {
        tokenizer, cell: o.cell, embeddingSize: o.embeddingSize, hiddenSize: o.hiddenSize, layers: o.layers,
        dropout: o.dropout, tieWeights: o.tieWeights, device: o.device, seed: o.seed,
      };
      const model = await LanguageModel.create(createOpts);
      console.error(`rnnlm: ${model.device} (${model.deviceReason}); vocabulary ${tokenizer.vocabSize}; ${model.parameterCount.toLocaleString('en-US')} parameters`);
      const lrSchedule: LrSchedule = o.lrSchedule === 'step'
        ? { type: 'step', ...(o.lrFactor !== undefined ? { factor: o.lrFactor } : {}), ...(o.lrStart !== undefined ? { start: o.lrStart } : {}) }
        : o.lrSchedule === 'plateau' ? { type: 'plateau', ...(o.lrFactor !== undefined ? { factor: o.lrFactor } : {}) } : 'constant';
      const optimizer = o.optimizer === 'sgd'
        ? { type: 'sgd' as const, ...(o.lr !== undefined ? { lr: o.lr } : {}), ...(o.momentum !== undefined ? { momentum: o.momentum } : {}), ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}) }
        : { type: o.optimizer as 'adam' | 'adamw', ...(o.lr !== undefined ? { lr: o.lr } : {}), ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}) };
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      const fitOpts: FitOptions = {
        mode: o.mode,
        epochs: o.epochs,
        seqLength: o.seqLength,
        optimizer,
        lrSchedule,
        progress: o.progress,
        signal: controller.signal,
        checkpoint: { path: o.out, every: o.checkpointEvery ?? 'epoch' },
        resume: o.resume,
        ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
        ...(o.clipNorm !== undefined ? { clipNorm: o.clipNorm } : {}),
        ...(o.clipValue !== undefined ? { clipValue: o.clipValue } : {}),
        ...(validText ? { validation: sentences ? lines(validText) : validText } : {}),
        onEpochEnd: async (log, m) => {
          const val = log.valLoss !== undefined ? `, validation loss ${log.valLoss.toFixed(4)} (perplexity ${log.valPerplexity!.toFixed(2)})` : '';
          console.log(`epoch ${log.epoch}: loss ${log.loss.toFixed(4)} (perplexity ${log.perplexity.toFixed(2)})${val}, ${Math.round(log.tokensPerSecond)} tokens/s, ${log.seconds.toFixed(1)} s`);
          if (o.sample > 0) console.log(`  sample: ${await sampleText(m, o.sample)}`);
        },
      };
      try {
        await model.fit(sentences ? lines(trainText) : trainText, fitOpts);
        console.log(`saved ${o.out}`);
      } finally {
        model.dispose();
      }
    });

  prog
    .command('eval')
    .description('loss and perplexity of a model on a text')
    .argument('<model>', 'a .safetensors checkpoint')
    .requiredOption('--text <file>', 'text to evaluate (UTF-8)')
    .addOption(new Option('--mode <mode>', 'as in training (default: the model\'s)').choices(['stream', 'sentences']))
    .option('--batch-size <n>', 'sequences per batch', int('--batch-size'))
    .option('--seq-length <n>', 'time steps per window', int('--seq-length'))
    .addOption(deviceOption())
    .action(async (path, o) => {
      const model = await LanguageModel.load(path, { device: o.device });
      try {
        const mode = o.mode ?? model.mode ?? 'stream';
        const text = readText(o.text);
        const r = await model.evaluate(mode === 'sentences' ? lines(text) : text, {
          mode,
          ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
          ...(o.seqLength !== undefined ? { seqLength: o.seqLength } : {}),
        });
        console.log(JSON.stringify(r));
      } finally {
        model.dispose();
      }
    });

  prog
    .command('generate')
    .description('continue a prompt by sampling')
    .argument('<model>', 'a .safetensors checkpoint')
    .option('--prompt <text>', 'text to continue', '')
    .option('--max-tokens <n>', 'tokens to generate', int('--max-tokens'), 100)
    .option('--temperature <t>', '0 = greedy; < 1 sharper; > 1 flatter', num('--temperature'), 1)
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = all)', int('--top-k'), 0)
    .option('--top-p <p>', 'nucleus sampling mass (1 = all)', num('--top-p'), 1)
    .option('--seed <n>', 'seed of the sampler', int('--seed'))
    .option('--stop <text...>', 'stop when one of these strings appears')
    .addOption(deviceOption())
    .action(async (path, o) => {
      const model = await LanguageModel.load(path, { device: o.device });
      try {
        const text = await model.generate({
          prompt: o.prompt, maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP,
          ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.stop ? { stop: o.stop } : {}),
        });
        const sep = o.prompt && model.tokenizer?.kind === 'word' ? ' ' : '';
        console.log(o.prompt + sep + text);
      } finally {
        model.dispose();
      }
    });

  prog
    .command('predict')
    .description('the most likely next tokens after a context')
    .argument('<model>', 'a .safetensors checkpoint')
    .requiredOption('--context <text>', 'the context')
    .option('--top-k <k>', 'how many', int('--top-k'), 5)
    .addOption(deviceOption())
    .action(async (path, o) => {
      const model = await LanguageModel.load(path, { device: o.device });
      try {
        for (const p of await model.predictNext(o.context, { topK: o.topK })) {
          console.log(`${p.probability.toFixed(4)}  ${JSON.stringify(p.token)}`);
        }
      } finally {
        model.dispose();
      }
    });

  modelOptions(
    prog
      .command('summary')
      .description('layers and parameter counts, of a checkpoint or of a configuration')
      .argument('[model]', 'a .safetensors checkpoint')
      .option('--vocab-size <n>', 'vocabulary size (without a checkpoint)', int('--vocab-size')),
  ).action(async (path, o) => {
    const model = path
      ? await LanguageModel.load(path, { device: 'cpu' })
      : await LanguageModel.create({
          vocabSize: o.vocabSize ?? failMissing('--vocab-size (or a checkpoint)'),
          cell: o.cell, embeddingSize: o.embeddingSize, hiddenSize: o.hiddenSize, layers: o.layers, dropout: o.dropout,
          tieWeights: o.tieWeights, device: 'cpu',
        });
    try {
      model.summary();
    } finally {
      model.dispose();
    }
  });
  prog
    .command('bench')
    .description('training and generation speed of rnnlm against tfjs (if installed), one run per process')
    .option('--config <names>', `comma-separated: ${[...CONFIGS.map((c) => c.name), 'all'].join(', ')}`, list)
    .option('--peers <names>', `comma-separated: ${ALL_PEERS.join(', ')}`, list)
    .option('--steps <n>', 'timed training steps (default: enough for --min-seconds)', int('--steps'))
    .option('--min-seconds <s>', 'least time of timed training per run', num('--min-seconds'))
    .option('--budget <s>', 'seconds one run may take before it is stopped (its figures so far are kept)', num('--budget'))
    .option('--quick', 'a tiny configuration and short timings (a smoke test)', false)
    .option('--scaling <peers>', 'also sweep hidden size 200-1600 and batch size 1-128 for these peers', list)
    .option('--json <file>', 'write the full report as JSON')
    .option('--with <file>', "add another program's runs on this machine (bench/pytorch_bench.py --json) to the report")
    .action(async (o) => {
      const { ok } = await runBench({
        configs: o.config, peers: o.peers, steps: o.steps, minSeconds: o.minSeconds, budget: o.budget, quick: o.quick,
        scaling: o.scaling, json: o.json, withRuns: o.with,
      });
      if (!ok) throw new Error('bench: a peer failed (see the table above)');
    });
  return prog;
}

function failMissing(what: string): never {
  throw new RnnlmError('ERR_INVALID_ARGUMENT', `missing ${what}`);
}

async function sampleText(model: LanguageModel, n: number): Promise<string> {
  const prompt = model.mode === 'sentences' ? '' : model.tokenizer?.kind === 'char' ? '\n' : 'The';
  return JSON.stringify(await model.generate({ prompt, maxTokens: n, temperature: 0.8, seed: 1 }));
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string; name?: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) return err.exitCode || 1; // commander printed it
    if (err.name === 'AbortError') {
      console.error('rnnlm: interrupted; the last checkpoint is saved (continue with --resume)');
      return 130;
    }
    const msg = e instanceof RnnlmError ? `${e.code}: ${e.message}` : (err.message ?? String(e));
    console.error(`rnnlm: ${msg.split('\n')[0]}`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
