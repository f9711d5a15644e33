/**
 * rnnlm train: fits a tokenizer on a text, creates a model and fits it, saving to --out after
 * every epoch; --resume continues a saved run; SIGINT / SIGTERM save the training so far. Its
 * flags are CreateOptions, FitOptions (with the optimizer's and the schedule's fields) and the
 * tokenizer's options in kebab-case.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { readCheckpoint, type ModelConfig } from '../checkpoint';
import { DEFAULTS } from '../defaults';
import { invalidArgument } from '../errors';
import { LanguageModel, parseCreateOptions, type CreateOptions, type FitOptions } from '../model';
import type { OptimizerOptions } from '../nn/optimizer';
import { CharTokenizer, WordTokenizer, type Tokenizer } from '../tokenizers';
import { readTrainState, type LrSchedule } from '../train';
import { API_DEFAULTS, MODEL_KEYS, modelFlags, deviceOption, precisionOption, field, fraction, int, kebab, lines, lossyOption, modelOptions, num, shown, softmaxOf } from './flags';
import { parseSoftmax } from '../nn/decoder';
import { isLossScale } from '../nn/loss-scale';
import { checkOut, readText } from './input';

/** Training stopped by a signal: the CLI saves, then ends by that same signal. */
export class Interrupted extends Error {
  override name = 'AbortError';
  /** Where the training so far was saved (unset: stopped before training began). */
  saved?: string;
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}`);
  }
}

const F = DEFAULTS.fit, OPT = DEFAULTS.optimizer, SCHEDULE = DEFAULTS.lrSchedule;
/** The optimizer's fields that have flags (each refused with an optimizer that has no such field). */
const OPTIMIZER_FLAGS = ['lr', 'beta1', 'beta2', 'eps', 'momentum', 'dampening', 'nesterov', 'weightDecay'] as const;
/** The schedule flags, as the lrSchedule fields they give. */
const SCHEDULE_FLAGS = { lrFactor: 'factor', lrStart: 'start', lrEvery: 'every', lrPatience: 'patience', lrThreshold: 'threshold' } as const;

type TrainFlags = Record<string, unknown> & { out: string; tokenizer: 'word' | 'char'; mode: 'stream' | 'sentences'; optimizer: OptimizerOptions['type'] };

export function trainCommand(prog: Command): void {
  modelOptions(
    prog
      .command('train')
      .description('train a model on a text file and save it')
      .requiredOption('--train <file>', 'training text (UTF-8)')
      .option('--validation <file>', 'validation text (unless given: the last --valid-split of the training text)')
      .option('--valid-split <fraction>', 'fraction of the training text held out for validation when no --validation (0: none)', fraction('--valid-split'), 0.1)
      .option('--out <file>', 'where to save the trained model', 'model.safetensors')
      .addOption(new Option('--tokenizer <kind>', 'word or character tokens').choices(['word', 'char']).default('word'))
      .option('--lowercase', `lowercase words (word tokenizer)${shown(DEFAULTS.wordTokenizer.lowercase)}`)
      .option('--min-freq <n>', `tokens seen fewer times become <unk>${shown({ word: DEFAULTS.wordTokenizer.minFreq, char: DEFAULTS.charTokenizer.minFreq })}`, int('--min-freq'))
      .option('--max-vocab <n>', 'largest vocabulary, specials included', int('--max-vocab'))
      .option('--no-unk', 'char tokenizer: a character not seen in training is an error (ERR_VOCAB), not <unk>')
      .addOption(new Option('--mode <mode>', 'stream: one text, truncated BPTT; sentences: one sentence per line').choices(['stream', 'sentences']).default('stream')),
  )
    .addOption(deviceOption(DEFAULTS.create.device))
    .addOption(precisionOption())
    .addOption(lossyOption())
    .option('--seed <n>', `seed of initialisation, and of dropout and shuffling unless --train-seed${shown(DEFAULTS.create.seed)}`, int('--seed'))
    .option('--train-seed <n>', "seed of dropout masks and shuffling (unless given: the model's --seed)", int('--train-seed'))
    .option('--epochs <n>', `passes over the training data${shown(F.epochs)}`, int('--epochs'))
    .option('--batch-size <n>', `sequences per batch${shown(F.batchSize)}`, int('--batch-size'))
    .option('--seq-length <n>', `time steps per window (stream mode)${shown(F.seqLength)}`, int('--seq-length'))
    .option('--variable-length', 'stream mode: windows of varying length around --seq-length, the learning rate scaled to each (AWD-LSTM)')
    .option('--shuffle', `sentences mode: shuffle the sentences each epoch${shown(F.shuffle)}`)
    .option('--no-shuffle', "sentences mode: keep the text's order")
    .option('--bucketing', `sentences mode: batch sentences of similar length together${shown(F.bucketing)}`)
    .addOption(new Option('--optimizer <type>', 'optimizer').choices(['adam', 'adamw', 'sgd']).default(F.optimizer))
    .option('--lr <rate>', `learning rate${shown(field(OPT, 'lr'))}`, num('--lr'))
    .option('--beta1 <b>', `Adam's first-moment decay${shown(field(OPT, 'beta1'))}`, num('--beta1'))
    .option('--beta2 <b>', `Adam's second-moment decay${shown(field(OPT, 'beta2'))}`, num('--beta2'))
    .option('--eps <e>', `Adam's term added to the denominator${shown(field(OPT, 'eps'))}`, num('--eps'))
    .option('--momentum <m>', `SGD momentum${shown(field(OPT, 'momentum'))}`, num('--momentum'))
    .option('--dampening <d>', `SGD momentum dampening${shown(field(OPT, 'dampening'))}`, num('--dampening'))
    .option('--nesterov', `SGD Nesterov momentum${shown(field(OPT, 'nesterov'))}`)
    .option('--weight-decay <w>', `weight decay (decoupled for adamw)${shown(field(OPT, 'weightDecay'))}`, num('--weight-decay'))
    .addOption(new Option('--lr-schedule <kind>', 'learning-rate schedule (unless given: a constant rate)').choices(['constant', 'step', 'plateau']))
    .option('--lr-factor <f>', `schedule: multiply the rate by f${shown(field(SCHEDULE, 'factor'))}`, num('--lr-factor'))
    .option('--lr-start <epoch>', `step schedule: first epoch after which the rate decays${shown(field(SCHEDULE, 'start'))}`, int('--lr-start'))
    .option('--lr-every <n>', `step schedule: then after every n epochs${shown(field(SCHEDULE, 'every'))}`, int('--lr-every'))
    .option('--lr-patience <n>', `plateau schedule: decay after n + 1 epochs without improvement${shown(field(SCHEDULE, 'patience'))}`, int('--lr-patience'))
    .option('--lr-threshold <t>', `plateau schedule: least fall of the loss that is an improvement${shown(field(SCHEDULE, 'threshold'))}`, num('--lr-threshold'))
    .option('--clip-norm <n>', 'clip the global gradient norm', num('--clip-norm'))
    .option('--clip-value <v>', 'clip each gradient to [-v, v]', num('--clip-value'))
    .option('--ar <alpha>', 'activation regularization of the last layer\'s output (AWD-LSTM: 2)', num('--ar'))
    .option('--tar <beta>', 'temporal activation regularization (AWD-LSTM: 1)', num('--tar'))
    .addOption(new Option('--average <trigger>', 'iterate averaging (with --optimizer sgd: NT-ASGD): from when validation stops improving (nonmonotone), or from --average-start').choices(['nonmonotone', 'epoch']))
    .option('--average-window <n>', `--average nonmonotone: epochs looked back past${shown(F.averageWindow)}`, int('--average-window'))
    .option('--average-start <epoch>', '--average epoch: the first epoch averaged', int('--average-start'))
    .option('--loss-scale <scale>', "dynamic loss scaling: on, off, or the first scale (a power of two in [1, 2^24]); unless given: on with --precision fp16 (initial 2^16)", lossScaleFlag)
    .addOption(new Option('--non-finite <action>', `a step with a NaN/Inf loss or gradient: stop (ERR_NON_FINITE) or skip it${shown(F.nonFinite)}`).choices(['stop', 'skip']))
    .option('--checkpoint-every <steps>', `save every N steps instead of every epoch${shown(DEFAULTS.checkpoint.every)}`, int('--checkpoint-every'))
    .option('--resume', 'continue the run saved at --out (its model, tokenizer, mode, batching and training seed come from there)')
    .option('--keep-training-state', `keep <out>.train.safetensors after the last epoch, to --resume for more epochs later${shown(DEFAULTS.checkpoint.keepTrainingState)}`)
    .option('--progress', `a progress bar on stderr when it is a terminal${shown(F.progress)}`)
    .option('--no-progress', 'no progress bar')
    .option('--sample <n>', 'print n generated tokens after each epoch', int('--sample'), 0)
    .option('--dry-run', 'check the flags and the text, print the model and fit options that training would use (JSON), and stop: nothing is trained or written')
    .addHelpText('after', API_DEFAULTS)
    .action(train);
}

async function train(o: TrainFlags, cmd: Command): Promise<void> {
  const given = (key: string) => cmd.getOptionValueSource(key) === 'cli';
  // First of all: a signal from here on stops training at the next step and saves it.
  const controller = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort(new Interrupted(sig)));
  checkOut(o.out);
  if (o.validation && given('validSplit')) throw invalidArgument('--valid-split and --validation exclude each other: give one');
  if (o.lowercase && o.tokenizer === 'char') throw invalidArgument('--lowercase is for --tokenizer word');
  if (given('unk') && !o.resume && o.tokenizer !== 'char') throw invalidArgument('--no-unk is for --tokenizer char (a word tokenizer reads unseen words as <unk>)');
  const lossy = Boolean(o.lossyUtf8);
  const text = readText(o.train as string, lossy);
  let trainText = text, validText: string | undefined = o.validation ? readText(o.validation as string, lossy) : undefined;
  if (!validText && (o.validSplit as number) > 0) {
    const cut = Math.floor(text.length * (1 - (o.validSplit as number)));
    trainText = text.slice(0, cut);
    validText = text.slice(cut);
  }
  const create = o.resume ? await fromCheckpoint(o, given, trainText) : undefined;
  // After the checkpoint's: they depend on its optimizer type.
  const optimizer = optimizerOf(o), lrSchedule = scheduleOf(o);
  const sentences = o.mode === 'sentences';
  const tokenizer = create?.tokenizer ?? fitTokenizer(o, trainText, sentences);
  const config = (create ?? o) as Partial<ModelConfig>;
  const createOptions: CreateOptions = {
    ...modelFlags(config), softmax: create ? create.softmax : softmaxOf(o), seed: config.seed, tokenizer, device: o.device as CreateOptions['device'], precision: o.precision as CreateOptions['precision'],
  };
  const fitOptions: FitOptions = {
    mode: o.mode,
    epochs: o.epochs as number | undefined,
    batchSize: o.batchSize as number | undefined,
    seqLength: o.seqLength as number | undefined,
    variableLength: o.variableLength as boolean | undefined,
    shuffle: o.shuffle as boolean | undefined,
    bucketing: o.bucketing as boolean | undefined,
    seed: o.trainSeed as number | undefined,
    optimizer,
    lrSchedule,
    clipNorm: o.clipNorm as number | undefined,
    clipValue: o.clipValue as number | undefined,
    ar: o.ar as number | undefined,
    tar: o.tar as number | undefined,
    average: averageOf(o),
    nonFinite: o.nonFinite as FitOptions['nonFinite'],
    lossScale: o.lossScale as FitOptions['lossScale'],
    progress: o.progress as boolean | undefined,
    signal: controller.signal,
    checkpoint: { path: o.out, every: o.checkpointEvery as number | undefined, keepTrainingState: o.keepTrainingState as boolean | undefined },
    resume: o.resume as boolean | undefined,
    ...(validText ? { validation: sentences ? lines(validText) : validText } : {}),
    onEpochEnd: async (log, m) => {
      const val = log.valLoss !== undefined ? `, validation loss ${log.valLoss.toFixed(4)} (perplexity ${log.valPerplexity!.toFixed(2)})` : '';
      const scale = log.lossScale !== undefined ? `, loss scale ${log.lossScale} (${log.overflows} overflow${log.overflows === 1 ? '' : 's'} skipped)` : '';
      console.log(`epoch ${log.epoch}: loss ${log.loss.toFixed(4)} (perplexity ${log.perplexity.toFixed(2)})${val}, ${Math.round(log.tokensPerSecond)} tokens/s, ${log.seconds.toFixed(1)} s${scale}`);
      if ((o.sample as number) > 0) console.log(`  sample: ${await sampleText(m, o.sample as number)}`);
    },
  };
  if (o.dryRun) return dryRun(createOptions, fitOptions);
  const model = await LanguageModel.create(createOptions);
  console.error(`rnnlm: ${model.device}${model.precision !== 'fp32' ? ` ${model.precision}` : ''} (${model.deviceReason}); vocabulary ${tokenizer.vocabSize}; ${model.parameterCount.toLocaleString('en-US')} parameters`);
  try {
    if (controller.signal.aborted) throw controller.signal.reason; // stopped before training: nothing new to save
    const history = await model.fit(sentences ? lines(trainText) : trainText, fitOptions).catch((e: unknown) => {
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
}

/**
 * --dry-run: the model's configuration as create resolves it (checked, nothing allocated), the
 * tokenizer, and fit's options as given (the data and callbacks left out).
 */
function dryRun(create: CreateOptions, fit: FitOptions): void {
  const { cfg, device } = parseCreateOptions(create);
  const { signal, onEpochEnd, validation, ...options } = fit;
  const tokenizer = { kind: create.tokenizer!.kind, vocabSize: create.tokenizer!.vocabSize, unk: create.tokenizer!.hasUnk };
  console.log(JSON.stringify({ model: cfg, device, tokenizer, fit: { ...options, validation: validation !== undefined } }, null, 2));
  console.error('rnnlm: dry run: nothing was trained or written');
}

/** --loss-scale: on, off, or the first scale (a power of two in [1, 2^24], the option's rule). */
function lossScaleFlag(v: string): FitOptions['lossScale'] {
  if (v === 'on' || v === 'off') return v === 'on';
  if (!/^\d+$/.test(v) || !isLossScale(Number(v))) throw new InvalidArgumentError(`--loss-scale must be on, off or a power of two in [1, 16777216] (got '${v.slice(0, 80)}')`);
  return { initial: Number(v) };
}

/** fit's optimizer: its type and the fields given, each refused with a type that has no such field. */
function optimizerOf(o: TrainFlags): OptimizerOptions {
  const options: Record<string, unknown> = { type: o.optimizer };
  for (const key of OPTIMIZER_FLAGS) {
    if (o[key] === undefined) continue;
    if (!(key in OPT[o.optimizer])) throw invalidArgument(`${kebab(key)} is for --optimizer ${Object.keys(field(OPT, key)).join(' or ')}, not ${o.optimizer}`);
    options[key] = o[key];
  }
  return options as OptimizerOptions;
}

/** fit's lrSchedule: its type and the fields given, each refused with a type that has no such field. */
function scheduleOf(o: TrainFlags): LrSchedule | undefined {
  const type = o.lrSchedule as 'constant' | 'step' | 'plateau' | undefined;
  const schedule: Record<string, unknown> = { type };
  for (const [flag, key] of Object.entries(SCHEDULE_FLAGS)) {
    if (o[flag] === undefined) continue;
    if (type !== 'step' && type !== 'plateau' || !(key in SCHEDULE[type])) {
      throw invalidArgument(`${kebab(flag)} is for --lr-schedule ${Object.keys(field(SCHEDULE, key)).join(' or ')}`);
    }
    schedule[key] = o[flag];
  }
  return type === 'step' || type === 'plateau' ? (schedule as LrSchedule) : type;
}

/** fit's average from --average (nonmonotone | epoch), --average-window and --average-start. */
function averageOf(o: TrainFlags): FitOptions['average'] {
  const trigger = o.average as 'nonmonotone' | 'epoch' | undefined;
  if (o.averageWindow !== undefined && trigger !== 'nonmonotone') throw invalidArgument('--average-window is for --average nonmonotone');
  if (o.averageStart !== undefined && trigger !== 'epoch') throw invalidArgument('--average-start is for --average epoch');
  if (trigger === 'nonmonotone') return { trigger, window: o.averageWindow as number | undefined };
  if (trigger === 'epoch') return { trigger, start: o.averageStart as number };
  return undefined;
}

function fitTokenizer(o: TrainFlags, text: string, sentences: boolean): Tokenizer {
  const minFreq = o.minFreq as number | undefined, maxVocab = o.maxVocab as number | undefined;
  return o.tokenizer === 'char'
    ? CharTokenizer.fit(text, { minFreq, maxVocab, unk: o.unk as boolean })
    : WordTokenizer.fit(sentences ? lines(text) : text, { minFreq, maxVocab, lowercase: o.lowercase as boolean | undefined });
}

/**
 * --resume continues the run saved at --out: the model config, tokenizer, data mode, batching,
 * training seed and learning rate come from there, so no flag needs repeating; a flag that is
 * given must agree with the checkpoint (refused otherwise, naming it and both values), and the
 * rate in use is said. Sets `o`'s mode, batch size, sequence length, optimizer and training seed
 * to the checkpoint's.
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
  const softmax = softmaxOf(o);
  if (softmax && JSON.stringify(parseSoftmax(softmax, ck.config, invalidArgument)) !== JSON.stringify(ck.config.softmax)) {
    throw invalidArgument(`--resume: --adaptive-softmax, --div-value and --head-bias give ${JSON.stringify(softmax)}, which disagrees with the checkpoint's softmax ${JSON.stringify(ck.config.softmax)}; leave them out to use the checkpoint's`);
  }
  const tokenizer = ck.tokenizer;
  if (!tokenizer) throw invalidArgument(`--resume: ${o.out} has no tokenizer (it was trained on token ids), so it cannot train on text`);
  disagree('tokenizer', tokenizer.kind);
  if (given('unk') && tokenizer.hasUnk) throw invalidArgument(`--resume: --no-unk disagrees with the checkpoint's tokenizer, which has <unk>; leave it out to use the checkpoint's`);
  const json = tokenizer.toJSON();
  if (json.type === 'word') disagree('lowercase', json.options.lowercase);
  if (ck.mode) disagree('mode', ck.mode);
  o.mode = ck.mode ?? o.mode;
  // Fitting options are not stored: the vocabulary they give must be the checkpoint's.
  const fitFlags = ['minFreq', 'maxVocab'].filter(given);
  if (fitFlags.length > 0) {
    const lowercase = json.type === 'word' ? json.options.lowercase : undefined;
    const refit = fitTokenizer({ ...o, tokenizer: tokenizer.kind, lowercase, unk: tokenizer.hasUnk }, trainText, o.mode === 'sentences');
    if (JSON.stringify(refit.tokens()) !== JSON.stringify(tokenizer.tokens())) {
      throw invalidArgument(`--resume: ${fitFlags.map(kebab).join(' and ')} ${fitFlags.length > 1 ? 'give' : 'gives'} a vocabulary of ${refit.vocabSize} tokens on this text, the checkpoint's has ${tokenizer.vocabSize} (a different one); leave ${fitFlags.length > 1 ? 'them' : 'it'} out to use the checkpoint's`);
    }
  }
  // Batching, the optimizer's type and the training seed are in the training state's record of the run.
  let run: Record<string, unknown> = {};
  try {
    run = JSON.parse(saved.fingerprint);
  } catch {
    // fit refuses a state it cannot match
  }
  for (const [key, field] of [['batchSize', 'batchSize'], ['seqLength', 'seqLength'], ['optimizer', 'optimizer'], ['trainSeed', 'seed']]) {
    if (run[field] === undefined) continue;
    disagree(key, run[field], field);
    o[key] = run[field];
  }
  const lr = Number(saved.lr.toPrecision(6));
  const ignored = given('lr') && o.lr !== saved.lr ? `; --lr ${String(o.lr)} is not used` : '';
  console.error(`rnnlm: resuming ${o.out} at epoch ${saved.epoch}, step ${saved.step}: learning rate ${lr} (the checkpoint's${ignored})`);
  return { ...ck.config, tokenizer, epoch: saved.epoch };
}

async function sampleText(model: LanguageModel, n: number): Promise<string> {
  const prompt = model.mode === 'sentences' ? '' : model.tokenizer?.kind === 'char' ? '\n' : 'The';
  return JSON.stringify(await model.generate({ prompt, maxTokens: n, temperature: 0.8, seed: 1 }));
}
