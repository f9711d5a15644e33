/**
 * Runs the adaptive-softmax benchmark (bench/harness/adaptive.ts says what it measures): for each
 * vocabulary size, the full softmax and then the adaptive one back to back, each in its own
 * process with a time budget; the report is rewritten after every run, so a stopped bench leaves
 * what it measured.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import {
  ADAPTIVE_MODEL, DIV_VALUE, GENERATE_TOKENS, HEAD_BIAS, QUICK_GENERATE_TOKENS, SOFTMAXES, ZIPF_S,
  adaptiveTargets, pairsOf, planSizes, type AdaptiveReport, type AdaptiveRun, type AdaptiveSpec,
} from './adaptive';
import { machine } from './run';
import { verdict } from './serve';
import { spawnWorker, stderrTail } from './spawn';

export interface AdaptiveBenchOptions {
  /** Tiny vocabularies, short timings: a smoke run of the same code paths. */
  quick?: boolean;
  /** Only these vocabulary sizes (of the plan's; planSizes refuses others). */
  sizes?: number[];
  /** Timed training per configuration lasts about this long (default 20 s; quick 0.3). */
  minSeconds?: number;
  /** Timed generation per configuration lasts about this long (default 5 s; quick 0.2). */
  genSeconds?: number;
  /** Seconds one configuration's process may take before it is stopped (default 300; quick 60). */
  budget?: number;
  /** Where the report is written (rewritten after every run). */
  json?: string;
  log?: (line: string) => void;
}

const workerFile = join(__dirname, `adaptive-worker${extname(__filename)}`);
const root = join(__dirname, '..', '..');

/** HEAD of the checkout and whether tracked files differ from it; undefined outside a git clone. */
function commit(): AdaptiveReport['commit'] {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return { hash: git('rev-parse', 'HEAD'), dirty: git('status', '--porcelain', '--untracked-files=no') !== '' };
  } catch {
    return undefined;
  }
}

/** One configuration in its own process; never rejects. */
async function runOne(spec: AdaptiveSpec, budget: number): Promise<AdaptiveRun> {
  const base = { vocabSize: spec.vocabSize, softmax: spec.softmax, ...(spec.softmax === 'adaptive' ? { cutoffs: spec.cutoffs } : {}) };
  let last: AdaptiveRun = { ...base, status: 'error', reason: 'the run reported nothing' };
  const exit = await spawnWorker(workerFile, spec, budget, (m: AdaptiveRun) => {
    // An error keeps what was measured before it.
    last = m.status === 'error' && last.status !== 'error' ? { ...last, status: 'error', reason: m.reason } : { ...m, ...base };
  });
  last.seconds = exit.seconds;
  if (exit.timedOut) {
    last = { ...last, status: 'timeout', reason: `stopped at the ${budget} s budget${last.train ? '' : ' before training finished'}` };
  } else if (last.status === 'ok' && (exit.code !== 0 || exit.signal || !last.train)) {
    last = { ...last, status: 'error', reason: `exited with ${exit.signal ?? `code ${exit.code}`} before finishing: ${stderrTail(exit.stderr)}` };
  } else if (last.status === 'error' && last.reason === 'the run reported nothing') {
    last.reason = `exited with ${exit.signal ?? `code ${exit.code}`}: ${stderrTail(exit.stderr)}`;
  }
  return last;
}

const fmt = (x: number | undefined, digits = 0) =>
  x === undefined || !Number.isFinite(x) ? '—' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** One line per run, for the log. */
export function formatAdaptiveRun(r: AdaptiveRun): string {
  const m = r.memory?.end ?? r.memory?.afterGenerate;
  return [
    `V ${fmt(r.vocabSize)} ${r.softmax.padEnd(8)}`,
    `train ${fmt(r.train?.tokensPerSecond)} tokens/s (${r.train?.steps ?? 0} steps, ${fmt(r.train?.seconds, 1)} s)`,
    `generate ${fmt(r.generate?.tokensPerSecond)} tokens/s`,
    `peak backend ${fmt(m?.backendMiB)} MiB, RSS ${fmt(m?.rssMiB)} MiB`,
    r.status === 'ok' ? 'ok' : `${r.status}: ${(r.reason ?? '').split('\n')[0].slice(0, 160)}`,
  ].join('; ');
}

export async function runAdaptiveBench(o: AdaptiveBenchOptions = {}): Promise<{ report: AdaptiveReport; ok: boolean }> {
  const log = o.log ?? ((l: string) => console.error(l));
  const quick = o.quick ?? false;
  const sizes = planSizes(quick, o.sizes);
  const options: AdaptiveReport['options'] = {
    quick, minSeconds: o.minSeconds ?? (quick ? 0.3 : 20), minSteps: quick ? 2 : 3, maxSteps: quick ? 20 : 5000,
    genSeconds: o.genSeconds ?? (quick ? 0.2 : 5), budget: o.budget ?? (quick ? 60 : 300), generateTokens: quick ? QUICK_GENERATE_TOKENS : GENERATE_TOKENS, device: 'cpu',
  };
  const report: AdaptiveReport = {
    kind: 'rnnlm-adaptive-bench',
    date: new Date().toISOString(),
    commit: commit(),
    machine: machine(),
    options,
    model: { ...ADAPTIVE_MODEL, divValue: DIV_VALUE, headBias: HEAD_BIAS, corpus: `token ids drawn independently from Zipf's law, P(id r) ∝ 1 / (r + 1)^${ZIPF_S} over ids 0 .. V − 1 (seeded; the same stream for full and adaptive)` },
    runs: [],
    pairs: [],
  };
  const save = (partial: boolean) => {
    report.pairs = pairsOf(report.runs);
    if (o.json) writeFileSync(o.json, `${JSON.stringify(partial ? { ...report, partial } : report, null, 2)}\n`);
  };
  log(`rnnlm bench:adaptive: V ${sizes.map((s) => s.vocabSize).join(', ')} x full, adaptive; ${report.machine.cpu}, ${report.machine.cores} cores${report.commit ? `, ${report.commit.hash.slice(0, 7)}${report.commit.dirty ? ' (modified)' : ''}` : ''}`);
  for (const s of sizes) {
    for (const softmax of SOFTMAXES) {
      const spec: AdaptiveSpec = {
        vocabSize: s.vocabSize, softmax, cutoffs: s.cutoffs, seed: 1, minSeconds: options.minSeconds, minSteps: options.minSteps,
        maxSteps: options.maxSteps, genSeconds: options.genSeconds, generateTokens: options.generateTokens,
      };
      log(`V ${s.vocabSize} ${softmax}: running (budget ${options.budget} s)`);
      const r = await runOne(spec, options.budget);
      report.runs.push(r);
      save(true);
      log(formatAdaptiveRun(r));
    }
  }
  report.targets = adaptiveTargets(report);
  save(false);
  for (const p of report.pairs) {
    const q = p.ratios;
    log(`V ${fmt(p.vocabSize)} adaptive ÷ full: train ${fmt(q.train, 2)}×, generate ${fmt(q.generate, 2)}×, peak backend ${fmt(q.backendPeak, 2)}×, peak RSS ${fmt(q.rssPeak, 2)}×`);
  }
  for (const t of report.targets) log(`target — ${t.what}: ${t.figure} (${verdict(t)})`);
  // Every run must finish: one stopped at its budget or crashed fails the bench (its reason is in the report).
  const ok = report.runs.every((r) => r.status === 'ok');
  return { report, ok };
}
