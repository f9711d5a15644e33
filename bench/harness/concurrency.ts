/**
 * The concurrency scenario of `npm run bench`: N calls to one model at once (generate or
 * predictNext), with continuous batching on and off, for our peers. Each (peer, configuration,
 * call, N, batching) is measured in its own process (bench/harness/concurrency-worker.ts), so
 * its peak RSS is its own; ratios are only taken between runs of the same report.
 */
import { extname, join } from 'node:path';
import { QUICK, type BenchConfig } from './configs';
import { spawnWorker, stderrTail } from './spawn';

export type CallKind = 'generate' | 'predictNext';
export const CALL_KINDS: readonly CallKind[] = ['generate', 'predictNext'];
/** Configurations the scenario runs on, when they are among the bench's (--quick: the quick one). */
export const CONCURRENCY_CONFIGS = ['zaremba-small', 'char-lstm', QUICK.name];
export const CONCURRENCY_N = [1, 4, 16, 64];
export const QUICK_CONCURRENCY_N = [1, 4];
/** Tokens each generate call makes; tokens of each predictNext call's context; predictions asked for. */
export const GENERATE_TOKENS = 64;
export const CONTEXT_TOKENS = 20;
export const TOP_K = 5;
/** A run is stopped after this many seconds at most (or --budget, when shorter). */
export const CONCURRENCY_BUDGET = 120;

export interface ConcurrencySpec {
  peer: string;
  config: BenchConfig;
  kind: CallKind;
  n: number;
  batching: boolean;
  /** Measured rounds go on until they fill this long (at least one round, after one warm-up round). */
  seconds: number;
  seed: number;
}

export interface ConcurrencyRun {
  peer: string;
  config: string;
  kind: CallKind;
  n: number;
  batching: boolean;
  status: 'ok' | 'unavailable' | 'error' | 'timeout';
  reason?: string;
  /** The device the model ran on, as its backend names it. */
  device?: string;
  warmupSeconds?: number;
  /** Measured rounds of n calls, their calls, and the tokens the calls made (predictNext: one per call). */
  rounds: number;
  calls: number;
  tokens: number;
  /** Wall time of the measured rounds, each from its first call's start to its last call's answer. */
  seconds: number;
  /** generate: tokens made over the rounds' wall time. */
  tokensPerSecond?: number;
  callsPerSecond?: number;
  /** One call, from its start to its answer, over every measured call. */
  latencyMs?: { p50: number; p99: number; max: number };
  peakRssMiB?: number;
  /** Generate calls that made fewer tokens than asked (counted as made). */
  shortCalls?: number;
  /** Set by the worker after its last round: a worker that exits without it did not finish. */
  finished?: boolean;
  /** How the worker process ended (checked: code 0, no signal). */
  exit?: { code: number | null; signal: string | null; seconds: number };
}

/** What one run is measured by: tokens/s for generate, calls/s for predictNext. */
export const aggregate = (r: ConcurrencyRun) => (r.kind === 'generate' ? r.tokensPerSecond : r.callsPerSecond);

/** Every run of the scenario, on and off next to each other. */
export function concurrencyPlan(peers: string[], configs: BenchConfig[], quick: boolean, seconds: number): ConcurrencySpec[] {
  const specs: ConcurrencySpec[] = [];
  // Our plain peers only: the CUDA variants (rnnlm-peer.ts) are measured by training and generation.
  for (const peer of peers.filter((p) => p === 'rnnlm-cpu' || p === 'rnnlm-cuda')) {
    for (const config of configs.filter((c) => CONCURRENCY_CONFIGS.includes(c.name))) {
      for (const kind of CALL_KINDS) {
        for (const n of quick ? QUICK_CONCURRENCY_N : CONCURRENCY_N) {
          for (const batching of [true, false]) specs.push({ peer, config, kind, n, batching, seconds, seed: 1 });
        }
      }
    }
  }
  return specs;
}

const workerFile = join(__dirname, `concurrency-worker${extname(__filename)}`);

/** Runs one spec in its own process; never rejects. A run that did not finish says why. */
export async function runConcurrency(spec: ConcurrencySpec, budgetSeconds: number): Promise<ConcurrencyRun> {
  const { peer, kind, n, batching } = spec;
  let last: ConcurrencyRun = { peer, config: spec.config.name, kind, n, batching, status: 'error', reason: 'the run reported nothing', rounds: 0, calls: 0, tokens: 0, seconds: 0 };
  const exit = await spawnWorker(workerFile, spec, budgetSeconds, (m: ConcurrencyRun) => {
    // An error keeps the rounds measured before it.
    last = m.status === 'error' && last.status === 'ok' ? { ...last, status: 'error', reason: m.reason } : m;
  });
  const ended = exit.signal ?? `code ${exit.code}`;
  last.exit = { code: exit.code, signal: exit.signal, seconds: exit.seconds };
  if (exit.timedOut) {
    const what = last.rounds > 0 ? `after ${last.rounds} measured round(s)` : 'before its warm-up round of calls had all been answered';
    last = { ...last, status: 'timeout', reason: `stopped at the ${budgetSeconds} s budget ${what}` };
  } else if (last.status === 'ok' && (exit.code !== 0 || exit.signal || !last.finished || last.rounds === 0)) {
    last = { ...last, status: 'error', reason: `exited with ${ended} before finishing${last.finished ? '' : ' (a call never answered?)'}: ${stderrTail(exit.stderr)}` };
  } else if (last.status === 'error' && last.reason === 'the run reported nothing') {
    last.reason = `exited with ${ended}: ${stderrTail(exit.stderr)}`;
  }
  return last;
}

const fmt = (x: number | undefined, digits = 0) =>
  x === undefined || !Number.isFinite(x) ? '—' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
/** Latency in ms with about three significant digits. */
export const ms = (x: number) => fmt(x, x < 10 ? 2 : x < 100 ? 1 : 0);

/** The run of the same report at the same peer, configuration, call and N, with batching the other way. */
export function counterpart(runs: ConcurrencyRun[], r: ConcurrencyRun, batching = !r.batching, n = r.n): ConcurrencyRun | undefined {
  return runs.find((o) => o.peer === r.peer && o.config === r.config && o.kind === r.kind && o.n === n && o.batching === batching);
}

/** aggregate(a) / aggregate(b), when both ran. */
export function ratio(a?: ConcurrencyRun, b?: ConcurrencyRun): number | undefined {
  const x = a && aggregate(a), y = b && aggregate(b);
  return x && y ? x / y : undefined;
}

/**
 * Issue 22's targets as figures: on the CPU, generate at N = 64 with batching >= 2.5x without and
 * predictNext's p99 at N = 64 <= 50 ms; on the GPU, generate with batching at N = 64 >= 20x N = 1.
 */
export function concurrencyTargets(runs: ConcurrencyRun[]): string[] {
  const lines: string[] = [];
  const top = Math.max(...runs.map((r) => r.n));
  const groups = [...new Set(runs.map((r) => `${r.peer}\t${r.config}`))].map((k) => k.split('\t'));
  for (const [peer, config] of groups) {
    const find = (kind: CallKind, n: number, batching: boolean) => runs.find((r) => r.peer === peer && r.config === config && r.kind === kind && r.n === n && r.batching === batching);
    const gpu = peer === 'rnnlm-cuda';
    const figures: string[] = [];
    const onOff = ratio(find('generate', top, true), find('generate', top, false));
    if (onOff) figures.push(`generate at N = ${top}, batching on ÷ off: ${fmt(onOff, 1)}×${gpu ? '' : ` (target ≥ 2.5×: ${onOff >= 2.5 ? 'met' : 'not met'})`}`);
    const scale = ratio(find('generate', top, true), find('generate', 1, true));
    if (scale) figures.push(`generate with batching, N = ${top} ÷ N = 1: ${fmt(scale, 1)}×${gpu ? ` (target ≥ 20×: ${scale >= 20 ? 'met' : 'not met'})` : ''}`);
    const p = [true, false].map((b) => find('predictNext', top, b)?.latencyMs?.p99);
    if (p[0] !== undefined) {
      figures.push(`predictNext p99 at N = ${top}: ${ms(p[0])} ms with batching${p[1] !== undefined ? `, ${ms(p[1])} ms without` : ''}${gpu ? '' : ` (target ≤ 50 ms: ${p[0] <= 50 ? 'met' : 'not met'})`}`);
    }
    if (figures.length) lines.push(`${peer} ${config}: ${figures.join('; ')}`);
  }
  return lines;
}

/** Plain-text table of concurrency runs, for stdout. */
export function formatConcurrency(runs: ConcurrencyRun[]): string {
  const header = ['config', 'peer', 'call', 'N', 'batching', 'aggregate', 'p50 ms', 'p99 ms', 'peak RSS MiB', 'on/off', 'status'];
  const rows: string[][] = [header];
  for (const r of runs) {
    const x = aggregate(r);
    const onOff = r.batching ? ratio(r, counterpart(runs, r)) : undefined;
    rows.push([
      r.config, r.peer, r.kind, String(r.n), r.batching ? 'on' : 'off',
      x === undefined ? '—' : `${fmt(x)} ${r.kind === 'generate' ? 'tok/s' : 'calls/s'}`,
      r.latencyMs ? ms(r.latencyMs.p50) : '—',
      r.latencyMs ? ms(r.latencyMs.p99) : '—',
      fmt(r.peakRssMiB),
      onOff ? `${fmt(onOff, 2)}x` : '',
      r.status === 'ok' ? 'ok' : `${r.status}: ${(r.reason ?? '').split('\n')[0].slice(0, 160)}`,
    ]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const right = new Set([3, 5, 6, 7, 8, 9]);
  return rows.map((row) => row.map((cell, i) => (right.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}
