#!/usr/bin/env node
/**
 * The rnnlm command line: train, eval, generate, predict, summary. Options are the API's
 * options in kebab-case (DESIGN.md, "CLI"); every failure prints one line and exits non-zero.
 */
import { isUtf8 } from 'node:buffer';
import { accessSync, constants as fsConstants, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ALL_PEERS, runBench } from './bench/run';
import { CONFIGS } from './bench/configs';
import { readCheckpoint, summaryTable, type ModelConfig } from './checkpoint';
import { RnnlmError, invalidArgument } from './errors';
import { LanguageModel } from './model';
import { CharTokenizer, WordTokenizer, type Tokenizer } from './tokenizers';
import { readTrainState, type FitOptions, type LrSchedule } from './train';

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

function fraction(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !(n >= 0 && n < 1)) throw new InvalidArgumentError(`${name} must be a number in [0, 1) (got ${v})`);
    return n;
  };
}

/** Training stopped by a signal: the CLI saves, then ends by that same signal. */
class Interrupted extends Error {
  override name = 'AbortError';
  /** Where the training so far was saved (unset: stopped before training began). */
  saved?: string;
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}`);
  }
}

/** Bytes of `b` outside any well-formed UTF-8 sequence (RFC 3629), and the offset of the first. */
function invalidUtf8(b: Uint8Array): { count: number; first: number } {
  let count = 0, first = -1;
  for (let i = 0; i < b.length; ) {
    const c = b[i];
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    // The second byte's range rules out overlong forms, surrogates and code points above U+10FFFF.
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80, hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    let ok = n === 1 || (n > 1 && b[i + 1] >= lo && b[i + 1] <= hi);
    for (let k = 2; ok && k < n; k++) ok = b[i + k] >= 0x80 && b[i + k] <= 0xbf;
    if (ok) {
      i += n;
    } else {
      if (first < 0) first = i;
      count++;
      i++;
    }
  }
  return { count, first };
}

/**
 * A text file as UTF-8. Bytes that are not UTF-8 (a Latin-1 or binary file) would silently
 * become U+FFFD and train the model on garbage: they are refused, or with `lossy` replaced
 * with a warning that counts them.
 */
function readText(path: string, lossy: boolean): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw invalidArgument(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (!isUtf8(bytes)) {
    const { count, first } = invalidUtf8(bytes);
    const what = `${count} ${count === 1 ? 'byte is' : 'bytes are'} not valid UTF-8 (the first at byte ${first})`;
    if (!lossy) throw invalidArgument(`${path} is not UTF-8 text: ${what}; convert it (e.g. iconv -f latin1 -t utf-8) or pass --lossy-utf8 to read them as U+FFFD`);
    console.error(`rnnlm: warning: ${path}: ${what}; read as U+FFFD (--lossy-utf8)`);
  }
  return bytes.toString('utf8');
}

/** --out must name a file in a writable directory: checked before any work, not found after an epoch. */
function checkOut(out: string): void {
  const dir = dirname(resolve(out));
  const bad = (why: string) => invalidArgument(`--out ${out}: ${why}`);
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    throw bad((e as NodeJS.ErrnoException).code === 'ENOENT' ? `the directory ${dir} does not exist; create it first` : `cannot use the directory ${dir}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw bad(`${dir} is not a directory`);
  try {
    accessSync(dir, fsConstants.W_OK);
  } catch {
    throw bad(`the directory ${dir} is not writable`);
  }
  if (statSync(out, { throwIfNoEntry: false })?.isDirectory()) throw bad(`is a directory; give a file path such as ${join(out, 'model.safetensors')}`);
}

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

const lines = (text: string) => text.split(/\r?\n/).filter((l) => l.trim().length > 0);

const kebab = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** The model flags, named as ModelConfig's fields (the API's CreateOptions). */
const MODEL_KEYS = ['cell', 'embeddingSize', 'hiddenSize', 'layers', 'dropout', 'tieWeights', 'seed'] as const;

// No defaults here where the API has one: a flag left out is left out of the call (one source of truth).
const modelOptions = (cmd: Command) =>
  cmd
    .addOption(new Option('--cell <cell>', 'recurrent cell').choices(['lstm', 'gru', 'rnn_tanh', 'rnn_relu']))
    .option('--embedding-size <n>', 'embedding size', int('--embedding-size'))
    .option('--hidden-size <n>', 'hidden size', int('--hidden-size'))
    .option('--layers <n>', 'stacked recurrent layers', int('--layers'))
    .option('--dropout <p>', 'dropout on embeddings, between layers and on the output', num('--dropout'))
    .option('--tie-weights', 'share the embedding matrix with the decoder');

const API_DEFAULTS = '\nOptions left out take the API\'s defaults (README.md, "API").';

const deviceOption = () => new Option('--device <device>', 'where to compute (auto: CUDA if it answers, else the CPU)').choices(['auto', 'cpu', 'cuda']);
const lossyOption = () => new Option('--lossy-utf8', 'read bytes that are not UTF-8 as U+FFFD (with a warning) instead of refusing the file');

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
      .option('--valid-split <fraction>', 'fraction of the training text held out for validation when no --validation (0: none)', fraction('--valid-split'), 0.1)
      .option('--out <file>', 'where to save the trained model', 'model.safetensors')
      .addOption(new Option('--tokenizer <kind>', 'word or character tokens').choices(['word', 'char']).default('word'))
      .option('--lowercase', 'lowercase words (word tokenizer)')
      .option('--min-freq <n>', 'words seen fewer times become <unk>', int('--min-freq'))
      .option('--max-vocab <n>', 'largest vocabulary, specials included', int('--max-vocab'))
      .addOption(new Option('--mode <mode>', 'stream: one text, truncated BPTT; sentences: one sentence per line').choices(['stream', 'sentences']).default('stream')),
  )
    .addOption(deviceOption())
    .addOption(lossyOption())
    .option('--seed <n>', 'seed of initialisation, dropout and shuffling', int('--seed'))
    .option('--epochs <n>', 'passes over the training data', int('--epochs'))
    .option('--batch-size <n>', 'sequences per batch', int('--batch-size'))
    .option('--seq-length <n>', 'time steps per window (stream mode)', int('--seq-length'))
    .addOption(new Option('--optimizer <type>', 'optimizer').choices(['adam', 'adamw', 'sgd']).default('adam'))
    .option('--lr <rate>', 'learning rate (default: 1e-3 for Adam, 1 for SGD)', num('--lr'))
    .option('--momentum <m>', 'SGD momentum', num('--momentum'))
    .option('--weight-decay <w>', 'weight decay', num('--weight-decay'))
    .addOption(new Option('--lr-schedule <kind>', 'learning-rate schedule').choices(['constant', 'step', 'plateau']))
    .option('--lr-factor <f>', 'schedule factor (step: 0.5, plateau: 0.25)', num('--lr-factor'))
    .option('--lr-start <epoch>', 'step schedule: first epoch after which the rate decays', int('--lr-start'))
    .option('--clip-norm <n>', 'clip the global gradient norm', num('--clip-norm'))
    .option('--clip-value <v>', 'clip each gradient to [-v, v]', num('--clip-value'))
    .option('--checkpoint-every <steps>', 'also save every N steps (default: every epoch)', int('--checkpoint-every'))
    .option('--resume', 'continue the run saved at --out (its model, tokenizer, mode and batching come from there)', false)
    .option('--keep-training-state', 'keep <out>.train.safetensors after the last epoch, to --resume for more epochs later')
    .option('--no-progress', 'no progress bar')
    .option('--sample <n>', 'print n generated tokens after each epoch', int('--sample'), 0)
    .addHelpText('after', API_DEFAULTS)
    .action(async (o, cmd: Command) => {
      const given = (key: string) => cmd.getOptionValueSource(key) === 'cli';
      // First of all: a signal from here on stops training at the next step and saves it.
      const controller = new AbortController();
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort(new Interrupted(sig)));
      checkOut(o.out);
      if (o.validation && given('validSplit')) throw invalidArgument('--valid-split and --validation exclude each other: give one');
      if (o.lowercase && o.tokenizer === 'char') throw invalidArgument('--lowercase is for --tokenizer word');
      const text = readText(o.train, Boolean(o.lossyUtf8));
      let trainText = text, validText: string | undefined = o.validation ? readText(o.validation, Boolean(o.lossyUtf8)) : undefined;
      if (!validText && o.validSplit > 0) {
        const cut = Math.floor(text.length * (1 - o.validSplit));
        trainText = text.slice(0, cut);
        validText = text.slice(cut);
      }
      const create = o.resume ? await fromCheckpoint(o, given, trainText) : undefined;
      const sentences = o.mode === 'sentences';
      const tokenizer = create?.tokenizer ?? fitTokenizer(o, trainText, sentences);
      const config = create ?? o;
      const model = await LanguageModel.create({
        cell: config.cell, embeddingSize: config.embeddingSize, hiddenSize: config.hiddenSize, layers: config.layers, dropout: config.dropout,
        tieWeights: config.tieWeights, seed: config.seed, tokenizer, device: o.device,
      });
      console.error(`rnnlm: ${model.device} (${model.deviceReason}); vocabulary ${tokenizer.vocabSize}; ${model.parameterCount.toLocaleString('en-US')} parameters`);
      const lrSchedule: LrSchedule | undefined = o.lrSchedule === 'step'
        ? { type: 'step', factor: o.lrFactor, start: o.lrStart }
        : o.lrSchedule === 'plateau' ? { type: 'plateau', factor: o.lrFactor } : o.lrSchedule;
      const optimizer = o.optimizer === 'sgd'
        ? { type: 'sgd' as const, lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay }
        : { type: o.optimizer as 'adam' | 'adamw', lr: o.lr, weightDecay: o.weightDecay };
      const fitOpts: FitOptions = {
        mode: o.mode,
        epochs: o.epochs,
        batchSize: o.batchSize,
        seqLength: o.seqLength,
        optimizer,
        lrSchedule,
        clipNorm: o.clipNorm,
        clipValue: o.clipValue,
        progress: o.progress,
        signal: controller.signal,
        checkpoint: { path: o.out, every: o.checkpointEvery ?? 'epoch', keepTrainingState: o.keepTrainingState },
        resume: o.resume,
        ...(validText ? { validation: sentences ? lines(validText) : validText } : {}),
        onEpochEnd: async (log, m) => {
          const val = log.valLoss !== undefined ? `, validation loss ${log.valLoss.toFixed(4)} (perplexity ${log.valPerplexity!.toFixed(2)})` : '';
          console.log(`epoch ${log.epoch}: loss ${log.loss.toFixed(4)} (perplexity ${log.perplexity.toFixed(2)})${val}, ${Math.round(log.tokensPerSecond)} tokens/s, ${log.seconds.toFixed(1)} s`);
          if (o.sample > 0) console.log(`  sample: ${await sampleText(m, o.sample)}`);
        },
      };
      try {
        if (controller.signal.aborted) throw controller.signal.reason; // stopped before training: nothing new to save
        const history = await model.fit(sentences ? lines(trainText) : trainText, fitOpts).catch((e: unknown) => {
          if (e instanceof Interrupted) e.saved = o.out; // fit rejects with the signal's reason only once it has saved
          throw e;
        });
        if (create && history.length < create.epoch) {
          // The run's epoch count is not in the checkpoint: a resume that reaches no new epoch says so.
          console.error(`rnnlm: nothing to train: ${o.out} has finished ${history.length} epochs; give a larger --epochs to train more`);
        } else {
          console.log(`saved ${o.out}`);
        }
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
    .addOption(lossyOption())
    .action(async (path, o) => {
      const text = readText(o.text, Boolean(o.lossyUtf8));
      const model = await LanguageModel.load(path, { device: o.device });
      try {
        const mode = o.mode ?? model.mode ?? 'stream';
        const r = await model.evaluate(mode === 'sentences' ? lines(text) : text, { mode, batchSize: o.batchSize, seqLength: o.seqLength });
        console.log(JSON.stringify(r));
      } finally {
        model.dispose();
      }
    });

  prog
    .command('generate')
    .description('continue a prompt by sampling (a model trained on sentences can start one without a prompt)')
    .argument('<model>', 'a .safetensors checkpoint')
    .option('--prompt <text>', 'text to continue (needed by a model trained in stream mode)')
    .option('--max-tokens <n>', 'tokens to generate', int('--max-tokens'))
    .option('--temperature <t>', '0 = greedy; < 1 sharper; > 1 flatter', num('--temperature'))
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = all)', int('--top-k'))
    .option('--top-p <p>', 'nucleus sampling mass (1 = all)', num('--top-p'))
    .option('--seed <n>', 'seed of the sampler', int('--seed'))
    .option('--stop <text...>', 'stop when one of these strings appears')
    .addOption(deviceOption())
    .addHelpText('after', API_DEFAULTS)
    .action(async (path, o) => {
      const model = await LanguageModel.load(path, { device: o.device });
      try {
        // A stream model was never shown a start of text (no <sos>; newlines are not tokens), so
        // no token is a principled default beginning: it continues what the user gives.
        if (!o.prompt && model.mode !== 'sentences') {
          throw invalidArgument(`generate: ${path} was trained in stream mode: it continues a text and cannot start from nothing; pass --prompt <text>`);
        }
        const text = await model.generate({ prompt: o.prompt, maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed, stop: o.stop });
        const sep = o.prompt && model.tokenizer?.kind === 'word' ? ' ' : '';
        console.log((o.prompt ?? '') + sep + text);
      } finally {
        model.dispose();
      }
    });

  prog
    .command('predict')
    .description('the most likely next tokens after a context')
    .argument('<model>', 'a .safetensors checkpoint')
    .requiredOption('--context <text>', 'the context')
    .option('--top-k <k>', 'how many', int('--top-k'))
    .addOption(deviceOption())
    .addHelpText('after', API_DEFAULTS)
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
      .description('layers and parameter counts, of a checkpoint or of a configuration (counted, nothing allocated)')
      .argument('[model]', 'a .safetensors checkpoint')
      .option('--vocab-size <n>', 'vocabulary size (without a checkpoint)', int('--vocab-size')),
  )
    .addHelpText('after', API_DEFAULTS)
    .action(async (path, o, cmd: Command) => {
      const flags = ['vocabSize', ...MODEL_KEYS.filter((k) => k !== 'seed')].filter((k) => cmd.getOptionValueSource(k) === 'cli');
      if (path && flags.length > 0) throw invalidArgument(`summary: a checkpoint's configuration is its own; leave out ${flags.map(kebab).join(', ')}`);
      const config = path
        ? (await readCheckpoint(path)).config
        : LanguageModel.configOf({
            vocabSize: o.vocabSize ?? failMissing('--vocab-size (or a checkpoint)'),
            cell: o.cell, embeddingSize: o.embeddingSize, hiddenSize: o.hiddenSize, layers: o.layers, dropout: o.dropout, tieWeights: o.tieWeights,
          }).cfg;
      console.log(summaryTable(config).text);
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

type TrainFlags = Record<string, unknown> & { out: string; tokenizer: 'word' | 'char'; mode: 'stream' | 'sentences' };

function fitTokenizer(o: TrainFlags, text: string, sentences: boolean): Tokenizer {
  return o.tokenizer === 'char'
    ? CharTokenizer.fit(text, { minFreq: o.minFreq as number | undefined, maxVocab: o.maxVocab as number | undefined, unk: true })
    : WordTokenizer.fit(sentences ? lines(text) : text, { minFreq: o.minFreq as number | undefined, maxVocab: o.maxVocab as number | undefined, lowercase: o.lowercase as boolean | undefined });
}

/**
 * --resume continues the run saved at --out: the model config, tokenizer, data mode, batching and
 * learning rate come from there, so no flag needs repeating; a flag that is given must agree with
 * the checkpoint (refused otherwise, naming it and both values), and the rate in use is said.
 * Sets `o`'s mode, batch size, sequence length and optimizer to the checkpoint's.
 */
async function fromCheckpoint(o: TrainFlags, given: (key: string) => boolean, trainText: string): Promise<ModelConfig & { tokenizer: Tokenizer; epoch: number }> {
  const ck = await readCheckpoint(o.out);
  const { saved } = await readTrainState(o.out, ck.metadata.trainStep);
  const disagree = (key: string, theirs: unknown, field = key) => {
    if (given(key) && o[key] !== theirs) {
      throw invalidArgument(`--resume: ${kebab(key)} ${String(o[key])} disagrees with the checkpoint's ${field} ${String(theirs)}; leave it out to use the checkpoint's`);
    }
  };
  for (const key of MODEL_KEYS) disagree(key, ck.config[key]);
  const tokenizer = ck.tokenizer;
  if (!tokenizer) throw invalidArgument(`--resume: ${o.out} has no tokenizer (it was trained on token ids), so it cannot train on text`);
  disagree('tokenizer', tokenizer.kind);
  const json = tokenizer.toJSON();
  if (json.type === 'word') disagree('lowercase', json.options.lowercase);
  if (ck.mode) disagree('mode', ck.mode);
  o.mode = ck.mode ?? o.mode;
  // Fitting options are not stored: the vocabulary they give must be the checkpoint's.
  const fitFlags = ['minFreq', 'maxVocab'].filter(given);
  if (fitFlags.length > 0) {
    const refit = fitTokenizer({ ...o, tokenizer: tokenizer.kind, lowercase: json.type === 'word' ? json.options.lowercase : undefined }, trainText, o.mode === 'sentences');
    if (JSON.stringify(refit.tokens()) !== JSON.stringify(tokenizer.tokens())) {
      throw invalidArgument(`--resume: ${fitFlags.map(kebab).join(' and ')} ${fitFlags.length > 1 ? 'give' : 'gives'} a vocabulary of ${refit.vocabSize} tokens on this text, the checkpoint's has ${tokenizer.vocabSize} (a different one); leave ${fitFlags.length > 1 ? 'them' : 'it'} out to use the checkpoint's`);
    }
  }
  // Batching and the optimizer's type are in the training state's record of the run.
  let run: Record<string, unknown> = {};
  try {
    run = JSON.parse(saved.fingerprint);
  } catch {
    // fit refuses a state it cannot match
  }
  for (const key of ['batchSize', 'seqLength', 'optimizer']) {
    if (run[key] === undefined) continue;
    disagree(key, run[key]);
    o[key] = run[key];
  }
  const lr = Number(saved.lr.toPrecision(6));
  const ignored = given('lr') && o.lr !== saved.lr ? `; --lr ${String(o.lr)} is not used` : '';
  console.error(`rnnlm: resuming ${o.out} at epoch ${saved.epoch}, step ${saved.step}: learning rate ${lr} (the checkpoint's${ignored})`);
  return { ...ck.config, tokenizer, epoch: saved.epoch };
}

function failMissing(what: string): never {
  throw new RnnlmError('ERR_INVALID_ARGUMENT', `missing ${what}`);
}

async function sampleText(model: LanguageModel, n: number): Promise<string> {
  const prompt = model.mode === 'sentences' ? '' : model.tokenizer?.kind === 'char' ? '\n' : 'The';
  return JSON.stringify(await model.generate({ prompt, maxTokens: n, temperature: 0.8, seed: 1 }));
}

/** Runs the CLI; resolves with the exit code, or with the signal to end by (training stopped by it and saved). */
export async function main(argv: string[]): Promise<number | NodeJS.Signals> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string; name?: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) return err.exitCode || 1; // commander printed it
    if (e instanceof Interrupted) {
      console.error(`rnnlm: ${e.signal}: ${e.saved ? `stopped; the training so far is saved in ${e.saved} (continue with --resume)` : 'stopped before training began; nothing was written'}`);
      return e.signal;
    }
    const msg = e instanceof RnnlmError ? `${e.code}: ${e.message}` : (err.message ?? String(e));
    console.error(`rnnlm: ${msg.split('\n')[0]}`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv).then((status) => {
    if (typeof status === 'number') {
      process.exitCode = status;
    } else {
      // Saved; now end by the signal itself, as its sender (a shell, systemd, Kubernetes) expects:
      // our handler is spent, so the default action applies.
      process.removeAllListeners(status);
      process.kill(process.pid, status);
    }
  });
}
