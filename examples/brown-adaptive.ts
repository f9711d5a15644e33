// npm run reproduce:brown-adaptive — the full softmax against the adaptive softmax (Grave et al.,
// 2017) on the Brown corpus with its whole training vocabulary (minFreq 1: every word of the first
// 800,000, about 45,000; split as in brown.ts). One recipe for both, reproduce:brown's CPU recipe
// untied (an adaptive softmax cannot be tied, and an untied full softmax keeps the comparison about
// the decoder alone); the adaptive softmax has cutoffs [2000, 10000], divValue 4, no head bias
// (Grave et al.'s text8 setting, 44k words).
// Equal CPU time: both train at once for MINUTES (default 60: the full softmax needs ~16 minutes
// an epoch on one core), each in a child process with one core's worth of threads: the model's stream thread computes, OpenBLAS adds none
// (OPENBLAS_NUM_THREADS=1, checked), and the CPU backend's helper thread only shares products when
// OpenBLAS has two threads or more (native/cpu/blas.h), so it never starts. Each child's CPU time
// (every thread of its process) is measured and reported. Each run keeps its best validation epoch, reports
// its test perplexity, and checks that its evaluate on the first CHECK_WORDS test words equals the
// mean -log p of score's per-token log-probabilities (evaluate uses the exact distribution).
// Prints both learning curves and a summary; writes bench/results/reproduce-brown-adaptive-cpu.json
// (RESULTS_DIR elsewhere). Other adaptive settings: CUTOFFS=4000,16000 DIV_VALUE=2, with
// FULL_FROM=<an earlier report> to reuse its full-softmax run instead of training it again.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { selectBackend } from '../lib/backend/index';
import { LanguageModel, type EpochLog, type SoftmaxOptions } from '../lib/index';
import { RECIPES, patience } from './brown';
import { brownSplit } from './corpora';
import { fitKeepingBest, runMain, writeReport } from './reproduce';

// CUTOFFS (e.g. 4000,16000) and DIV_VALUE choose the adaptive softmax compared.
const DECODERS = {
  full: { type: 'full' },
  adaptive: {
    type: 'adaptive',
    cutoffs: (process.env.CUTOFFS ?? '2000,10000').split(',').map(Number),
    divValue: Number(process.env.DIV_VALUE ?? 4),
    headBias: false,
  },
} satisfies Record<string, SoftmaxOptions>;
type Name = keyof typeof DECODERS;
const config = { ...RECIPES.cpu.config, tieWeights: false };
const { fit } = RECIPES.cpu;
const minFreq = 1;
const CHECK_WORDS = 300;
const TOLERANCE = 1e-6;

/** What a child sends back: its run, evaluated. */
interface RunResult {
  name: Name;
  words: number;
  vocabSize: number;
  parameters: number;
  blas: unknown;
  epochs: { epoch: number; trainPerplexity: number; validPerplexity: number; lr: number; tokensPerSecond: number; seconds: number }[];
  bestEpoch: number;
  bestValidPerplexity: number | null;
  testPerplexity: number;
  testTokens: number;
  /** Training tokens per second over the finished epochs (null when none finished). */
  tokensPerSecond: number | null;
  /** fit's wall time (training and validation), and the process's CPU time during it (every thread). */
  trainMinutes: number;
  cpuMinutes: number;
  testSeconds: number;
  exactCheck: { testWords: number; tokens: number; evaluateLoss: number; scoreLoss: number; relativeDifference: number; pass: boolean };
}

const minutes = Number(process.env.MINUTES ?? 60);
/** A figure for the summary and the README row (— when there is none). */
const n = (x: number | null, digits: number) => (x === null ? '—' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));
const row = (name: Name) => (log: EpochLog, min: number) =>
  `${name.padEnd(8)}  ${String(log.epoch).padStart(5)}  ${log.perplexity.toFixed(1).padStart(9)}  ${log.valPerplexity!.toFixed(1).padStart(9)}  ${log.lr.toExponential(1).padStart(6)}  ${Math.round(log.tokensPerSecond).toString().padStart(8)}  ${min.toFixed(1).padStart(7)}`;

/** One run, in its own process (argv[2] names the decoder). */
async function child(name: Name): Promise<RunResult> {
  const blas = selectBackend('cpu').backend.info().blas as { threads: number };
  if (blas.threads !== 1) throw new Error(`OpenBLAS runs ${blas.threads} threads; the parent sets OPENBLAS_NUM_THREADS=1`);
  const { words, train, valid, test, tokenizer } = brownSplit({ minFreq });
  const model = await LanguageModel.create({ tokenizer, device: 'cpu', ...config, softmax: DECODERS[name] });
  process.send!({ ready: `${name.padEnd(8)}  ${model.parameterCount.toLocaleString('en-US')} parameters, vocabulary ${tokenizer.vocabSize.toLocaleString('en-US')}` });
  const cpu0 = process.cpuUsage();
  const run = await fitKeepingBest(model, train, valid, fit, { minutes, patience, row: row(name) });
  const cpu = process.cpuUsage(cpu0);
  const t0 = Date.now();
  const r = await run.best.evaluate(test);
  const testSeconds = (Date.now() - t0) / 1000;
  // The same tokens in the same contexts both ways (evaluate in one column, as score reads the
  // text): evaluate's mean loss, and score's log-probability of each token.
  const text = test.split(' ').slice(0, CHECK_WORDS).join(' ');
  const e = await run.best.evaluate(text, { batchSize: 1 });
  const s = await run.best.score(text, { tokenLogProbs: true });
  const scoreLoss = -s.tokenLogProbs!.reduce((a, b) => a + b, 0) / s.tokens;
  const relativeDifference = Math.abs(e.loss - scoreLoss) / scoreLoss;
  const tokens = run.history.reduce((a, h) => a + h.tokens, 0), seconds = run.history.reduce((a, h) => a + h.seconds, 0);
  const result: RunResult = {
    name, words, vocabSize: tokenizer.vocabSize, parameters: model.parameterCount, blas,
    epochs: run.history.map((h) => ({ epoch: h.epoch, trainPerplexity: h.perplexity, validPerplexity: h.valPerplexity!, lr: h.lr, tokensPerSecond: h.tokensPerSecond, seconds: h.seconds })),
    bestEpoch: run.bestEpoch, bestValidPerplexity: run.bestEpoch > 0 ? Math.exp(run.bestLoss) : null,
    testPerplexity: r.perplexity, testTokens: r.tokens, tokensPerSecond: seconds > 0 ? tokens / seconds : null,
    trainMinutes: run.wallSeconds / 60, cpuMinutes: (cpu.user + cpu.system) / 60e6, testSeconds,
    exactCheck: { testWords: CHECK_WORDS, tokens: s.tokens, evaluateLoss: e.loss, scoreLoss, relativeDifference, pass: e.tokens === s.tokens && relativeDifference <= TOLERANCE },
  };
  if (run.best !== model) run.best.dispose();
  model.dispose();
  return result;
}

/** Runs `name` in a child process with one OpenBLAS thread; resolves with its result, calls ready with its first line. */
function spawnRun(name: Name, started: { kill(): boolean }[], ready: (line: string) => void): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const c = fork(__filename, [name], { env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
    started.push(c);
    let result: RunResult | undefined;
    c.on('message', (m: { ready: string } | { result: RunResult }) => ('ready' in m ? ready(m.ready) : (result = m.result)));
    c.on('error', reject);
    c.on('exit', (code, signal) => (code === 0 && result ? resolve(result) : reject(new Error(`the ${name} run ended with ${signal ?? `exit code ${code}`}`))));
  });
}

async function parent() {
  const loadAverage = loadavg()[0];
  console.log(`Brown corpus, whole training vocabulary (minFreq ${minFreq}): full softmax and adaptive softmax ${JSON.stringify(DECODERS.adaptive.cutoffs)}, divValue ${DECODERS.adaptive.divValue}`);
  console.log(`LSTM ${config.layers} x ${config.hiddenSize}, untied; both at once, one thread each, ${minutes} minutes each (load average ${loadAverage.toFixed(2)})\n`);
  // FULL_FROM: the full softmax's run from an earlier report of this script (same recipe and
  // vocabulary, at least as many minutes: checked), to compare other adaptive settings without
  // training the full softmax again.
  const from = process.env.FULL_FROM ? (JSON.parse(readFileSync(process.env.FULL_FROM, 'utf8')) as { date: string; minutes: number; config: unknown; minFreq: number; runs: { full: RunResult } }) : undefined;
  if (from && (from.minutes < minutes || from.minFreq !== minFreq || JSON.stringify(from.config) !== JSON.stringify(config))) {
    throw new Error(`FULL_FROM ${process.env.FULL_FROM} ran ${from.minutes} minutes (fewer than ${minutes}) or another recipe or vocabulary; run both again`);
  }
  const names = (from ? ['adaptive'] : Object.keys(DECODERS)) as Name[];
  const started: { kill(): boolean }[] = [], lines: string[] = [];
  // The learning curves' header once both models exist (and have said so).
  const ready = (line: string) => {
    lines.push(line);
    if (lines.length === names.length) console.log(`${lines.join('\n')}\n\ndecoder   epoch  train ppl  valid ppl      lr  tokens/s  minutes`);
  };
  let runs: RunResult[];
  try {
    runs = await Promise.all(names.map((n) => spawnRun(n, started, ready)));
  } catch (e) {
    for (const c of started) c.kill(); // the other run has no comparison left to make
    throw e;
  }
  if (from) runs.unshift(from.runs.full);
  const [full, adaptive] = runs;
  const ratio = (a: number | null, b: number | null) => (a !== null && b !== null ? a / b : null);
  const ratios = { testPerplexity: adaptive.testPerplexity / full.testPerplexity, tokensPerSecond: ratio(adaptive.tokensPerSecond, full.tokensPerSecond) };
  console.log(`\nBrown, whole vocabulary (${full.vocabSize.toLocaleString('en-US')} words), ${full.testTokens.toLocaleString('en-US')} test tokens:`);
  console.log('decoder   parameters  epochs  best  valid ppl  test ppl  tokens/s  fit min  CPU min  check rel. diff');
  for (const r of runs) {
    console.log(`${r.name.padEnd(8)}  ${r.parameters.toLocaleString('en-US').padStart(10)}  ${String(r.epochs.length).padStart(6)}  ${String(r.bestEpoch).padStart(4)}  ${n(r.bestValidPerplexity, 1).padStart(9)}  ${n(r.testPerplexity, 1).padStart(8)}  ${n(r.tokensPerSecond, 0).padStart(8)}  ${n(r.trainMinutes, 1).padStart(7)}  ${n(r.cpuMinutes, 1).padStart(7)}  ${r.exactCheck.relativeDifference.toExponential(1).padStart(15)}`);
  }
  for (const r of runs.filter((x) => x.bestEpoch === 0)) {
    console.log(`${r.name}: no epoch finished in ${minutes} minutes, so no validation and no tokens/s: its test perplexity is of the weights at the budget's end (raise MINUTES)`);
  }
  console.log(`adaptive / full: test perplexity ${n(ratios.testPerplexity, 3)}×, training tokens/s ${n(ratios.tokensPerSecond, 2)}×`);
  // Filled in the README's Results as it is printed (the table's columns are these).
  console.log(`\nREADME row (Results, Brown):\n| ${n(full.vocabSize, 0)} words (minFreq ${minFreq}) | ${n(full.testPerplexity, 1)} | ${n(full.tokensPerSecond, 0)} | ${n(adaptive.testPerplexity, 1)} | ${n(adaptive.tokensPerSecond, 0)} | ${n(ratios.testPerplexity, 3)} / ${n(ratios.tokensPerSecond, 2)}× | ${from ? `${from.minutes} / ${minutes}` : minutes} (CPU ${n(full.cpuMinutes, 1)} / ${n(adaptive.cpuMinutes, 1)}) |\n`);
  console.log(`check: evaluate on the first ${CHECK_WORDS} test words = mean -log p of score's tokenLogProbs to ${TOLERANCE} relative: ${runs.map((r) => `${r.name} ${r.exactCheck.pass ? 'pass' : 'FAIL'}`).join(', ')}`);
  const file = writeReport('brown-adaptive', 'cpu', {
    task: 'brown-word-whole-vocabulary', minutes: from ? { full: from.minutes, adaptive: minutes } : minutes, loadAverage, threadsPerRun: 1, words: full.words, minFreq, vocabSize: full.vocabSize,
    config, fit: { ...fit, patience }, decoders: DECODERS, runs: { full, adaptive }, ratios,
    ...(from ? { fullFrom: { file: process.env.FULL_FROM, date: from.date } } : {}),
  });
  console.log(`\n${file}`);
  if (!runs.every((r) => r.exactCheck.pass)) process.exitCode = 1;
}

runMain(async () => {
  const name = process.argv[2];
  if (name === undefined) return parent();
  if (!(name in DECODERS)) throw new Error(`unknown decoder ${name}`);
  const result = await child(name as Name);
  await new Promise<void>((resolve, reject) => process.send!({ result }, (e: Error | null) => (e ? reject(e) : resolve())));
  process.disconnect();
});
