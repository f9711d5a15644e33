#!/usr/bin/env node
/**
 * The rnnlm command line: train, eval, generate, predict, summary, serve, bench. Options are the API's
 * options in kebab-case, and --help shows the API's defaults (lib/defaults.ts); every failure
 * prints one line and exits non-zero.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { readCheckpoint, summaryTable } from './checkpoint';
import { DEFAULTS } from './defaults';
import { RnnlmError, invalidArgument } from './errors';
import { LanguageModel, parseCreateOptions } from './model';
import { packageRoot } from './util/package-root';
import { API_DEFAULTS, MODEL_KEYS, modelFlags, deviceOption, notePrecision, precisionOption, quantizeOption, int, kebab, lines, list, lossyOption, modelOptions, num, shown, softmaxOf } from './cli/flags';
import { readText } from './cli/input';
import { serveCommand } from './cli/serve';
import { Interrupted, trainCommand } from './cli/train';

const version = () => (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

export function program(): Command {
  const prog = new Command('rnnlm')
    .description('Recurrent language models (LSTM, GRU, RNN) on the CPU and NVIDIA GPUs')
    .version(version(), '-V, --version', "rnnlm's version")
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  trainCommand(prog);

  prog
    .command('eval')
    .description('loss and perplexity of a model on a text')
    .argument('<model>', 'a .safetensors checkpoint')
    .requiredOption('--text <file>', 'text to evaluate (UTF-8)')
    .addOption(new Option('--mode <mode>', "as in training (unless given: the model's)").choices(['stream', 'sentences']))
    .option('--batch-size <n>', `sequences per batch${shown(DEFAULTS.evaluate.batchSize)}`, int('--batch-size'))
    .option('--seq-length <n>', `time steps per window${shown(DEFAULTS.evaluate.seqLength)}`, int('--seq-length'))
    .addOption(deviceOption(DEFAULTS.load.device))
    .addOption(precisionOption())
    .addOption(quantizeOption())
    .addOption(lossyOption())
    .addHelpText('after', API_DEFAULTS)
    .action(async (path, o) => {
      const text = readText(o.text, Boolean(o.lossyUtf8));
      const model = await LanguageModel.load(path, { device: o.device, precision: o.precision, quantize: o.quantize });
      notePrecision(model, o.precision);
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
    .option('--max-tokens <n>', `tokens to generate${shown(DEFAULTS.generate.maxTokens)}`, int('--max-tokens'))
    .option('--temperature <t>', `0 = greedy; < 1 sharper; > 1 flatter${shown(DEFAULTS.generate.temperature)}`, num('--temperature'))
    .option('--top-k <k>', `sample among the k most likely tokens (0 = all)${shown(DEFAULTS.generate.topK)}`, int('--top-k'))
    .option('--top-p <p>', `nucleus sampling mass (1 = all)${shown(DEFAULTS.generate.topP)}`, num('--top-p'))
    .option('--seed <n>', 'seed of the sampler (unless given: random)', int('--seed'))
    .option('--stop <text...>', 'stop when one of these strings appears')
    .option('--stop-at-eos', `end at a sampled <eos>${shown(DEFAULTS.generate.stopAtEos)}`)
    .option('--no-stop-at-eos', 'go on through sentence ends, up to --max-tokens')
    .addOption(deviceOption(DEFAULTS.load.device))
    .addOption(precisionOption())
    .addOption(quantizeOption())
    .addHelpText('after', API_DEFAULTS)
    .action(async (path, o) => {
      const model = await LanguageModel.load(path, { device: o.device, precision: o.precision, quantize: o.quantize });
      notePrecision(model, o.precision);
      try {
        // A stream model was never shown a start of text (no <sos>; newlines are not tokens), so
        // no token is a principled default beginning: it continues what the user gives.
        if (!o.prompt && model.mode !== 'sentences') {
          throw invalidArgument(`generate: ${path} was trained in stream mode: it continues a text and cannot start from nothing; pass --prompt <text>`);
        }
        const text = await model.generate({
          prompt: o.prompt, maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed, stop: o.stop, stopAtEos: o.stopAtEos,
        });
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
    .option('--top-k <k>', `how many${shown(DEFAULTS.predictNext.topK)}`, int('--top-k'))
    .option('--json', 'print them as JSON: [{ token, id, probability }, ...]')
    .addOption(deviceOption(DEFAULTS.load.device))
    .addOption(precisionOption())
    .addOption(quantizeOption())
    .addHelpText('after', API_DEFAULTS)
    .action(async (path, o) => {
      const model = await LanguageModel.load(path, { device: o.device, precision: o.precision, quantize: o.quantize });
      notePrecision(model, o.precision);
      try {
        const predictions = await model.predictNext(o.context, { topK: o.topK });
        if (o.json) console.log(JSON.stringify(predictions));
        else for (const p of predictions) console.log(`${p.probability.toFixed(4)}  ${JSON.stringify(p.token)}`);
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
      const flags = ['vocabSize', ...MODEL_KEYS.filter((k) => k !== 'seed'), 'adaptiveSoftmax', 'divValue', 'headBias'].filter((k) => cmd.getOptionValueSource(k) === 'cli');
      if (path && flags.length > 0) throw invalidArgument(`summary: a checkpoint's configuration is its own; leave out ${flags.map(kebab).join(', ')}`);
      const config = path
        ? (await readCheckpoint(path)).config
        : parseCreateOptions({
            vocabSize: o.vocabSize ?? failMissing('--vocab-size (or a checkpoint)'),
            ...modelFlags(o), seed: undefined,
            softmax: softmaxOf(o),
          }).cfg;
      console.log(summaryTable(config).text);
    });
  serveCommand(prog);

  prog
    .command('bench')
    .description('training and generation speed of rnnlm against tfjs, one run per process (in a clone of the repository)')
    .option('--config <names>', 'comma-separated configuration names (listed below), or all', list)
    .option('--peers <names>', 'comma-separated peers (listed below)', list)
    .option('--steps <n>', 'timed training steps (default: enough for --min-seconds)', int('--steps'))
    .option('--min-seconds <s>', 'least time of timed training per run', num('--min-seconds'))
    .option('--budget <s>', 'seconds one run may take before it is stopped (its figures so far are kept)', num('--budget'))
    .option('--quick', 'a tiny configuration and short timings (a smoke test)', false)
    .option('--scaling <peers>', 'also sweep hidden size 200-1600 and batch size 1-128 for these peers', list)
    .option('--no-concurrency', 'skip the concurrency scenario (N = 1-64 concurrent calls, batching on and off; our peers, zaremba-small and char-lstm)')
    .option('--concurrency-only', 'run the concurrency scenario only', false)
    .option('--json <file>', 'write the full report as JSON')
    .option('--with <file>', "add another program's runs on this machine (bench/pytorch_bench.py --json) to the report")
    .addHelpText('after', () => {
      try {
        const h = benchHarness();
        return `\nconfigurations: ${h.CONFIGS.map((c) => c.name).join(', ')}\npeers: ${h.ALL_PEERS.join(', ')}`;
      } catch (e) {
        return `\n${(e as Error).message}`;
      }
    })
    .action(async (o) => {
      const { ok } = await benchHarness().runBench({
        configs: o.config, peers: o.peers, steps: o.steps, minSeconds: o.minSeconds, budget: o.budget, quick: o.quick,
        scaling: o.scaling, json: o.json, withRuns: o.with, concurrency: o.concurrency, concurrencyOnly: o.concurrencyOnly,
      });
      if (!ok) throw new Error('bench: a peer failed (see the table above)');
    });
  return prog;
}

/** What the CLI uses of bench/harness/run.ts (a type import would pull the harness into the build). */
/** @internal */
export interface BenchHarness {
  CONFIGS: readonly { name: string }[];
  ALL_PEERS: readonly string[];
  runBench(o: {
    configs?: string[]; peers?: string[]; steps?: number; minSeconds?: number; budget?: number; quick?: boolean;
    scaling?: string[]; json?: string; withRuns?: string; concurrency?: boolean; concurrencyOnly?: boolean;
  }): Promise<{ ok: boolean }>;
}

/**
 * The benchmark harness (a second model in tfjs, its peer; tfjs is a devDependency) is tooling,
 * not the library: it lives in bench/harness/ of a clone, outside lib/ and so outside the
 * published package, and is loaded here only, so no other command and no `import 'rnnlm'`
 * loads it. The path is a literal so that esbuild bundles it (gpu/gpu-pack.sh); from dist/ it
 * is absent, and that is said in one line.
 */
function benchHarness(): BenchHarness {
  try {
    return require('../bench/harness/run') as BenchHarness;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    if (err.code !== 'MODULE_NOT_FOUND' || !err.message?.includes('bench/harness/run')) throw e;
    throw new Error('bench needs a clone of the repository (its harness and the tfjs peers are not in the published package): git clone, npm install, then npm run bench -- <options>');
  }
}

function failMissing(what: string): never {
  throw new RnnlmError('ERR_INVALID_ARGUMENT', `missing ${what}`);
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
