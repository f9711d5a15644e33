/**
 * The server benchmark (`npm run bench:serve`, bench/serve.ts): `rnnlm serve` in a child process,
 * loaded by autocannon at a few connection counts on /v1/next and /v1/completions, with
 * continuous batching on and off. This file holds what the report is and what is made of it (its
 * types, the targets as figures, the table); serve-run.ts runs it, serve-server.ts is the server's
 * process, serve-load.ts one load run.
 */
import { ms } from './concurrency';
import type { BenchReport } from './run';

export type Endpoint = '/v1/next' | '/v1/completions';
export const SERVE_ENDPOINTS: readonly Endpoint[] = ['/v1/next', '/v1/completions'];
export const SERVE_CONNECTIONS = [1, 16, 64, 256];
export const QUICK_SERVE_CONNECTIONS = [1, 16];
/** The model's configuration (bench/harness/configs.ts); --quick: the quick one. */
export const SERVE_CONFIG = 'zaremba-small';
/** Tokens each completion draws: with ignore_eos every one draws exactly this many (counted from usage, not assumed). */
export const COMPLETION_TOKENS = 32;
/** Words of a completion's prompt and of a /v1/next context; predictions asked of /v1/next. */
export const PROMPT_WORDS = 4;
export const CONTEXT_WORDS = 8;
export const NEXT_TOP_K = 5;
/** The issue's speed targets on the CPU, at this many connections: completions' tokens/s with batching over without, and /v1/next's p99. */
export const TARGET = { connections: 64, onOff: 2.5, nextP99Ms: 100 };
/**
 * A run's RSS is flat when the median of its samples in the second half of the run is at most this
 * much above the median of the first half's (the garbage collector's sawtooth, tens of MiB on a
 * busy server, moves the start and end readings; a leak moves the level), or when it grew but the
 * server's RSS fell back to within this much of the run's start later: at a low request rate the
 * heap can grow for a whole run before a full collection gives the memory back, which no leak does.
 */
export const FLAT_RSS = { fraction: 0.05, mib: 8 };

/** Answers that were not what a client wants, by kind. */
export interface ErrorCounts {
  /** Non-2xx answers by status, 503 included. */
  status: Record<string, number>;
  /** Requests unanswered after the client's timeout (autocannon then reconnects). */
  timeouts: number;
  /** Connection errors (refused, reset). */
  connection: number;
  /** 2xx answers whose body was not the endpoint's shape (checked: every completion, a sample of /v1/next). */
  badBodies: number;
  checkedBodies: number;
  /** The first body of each non-2xx status and of a bad 2xx body (cut to 300 characters). */
  samples?: Record<string, string>;
}

export interface ServeRun {
  endpoint: Endpoint;
  connections: number;
  batching: boolean;
  /** error: its server exited during it, could not start, or the load generator failed. */
  status: 'ok' | 'error';
  reason?: string;
  /** Its server: an index into the report's servers. */
  server: number;
  /** The warm-up before it (same connections and requests, not counted in the figures). */
  warmup?: { seconds: number; answered: number; errors: ErrorCounts };
  /** Measured seconds (autocannon's run, from its first request to its last tick). */
  seconds: number;
  /** 2xx answers. */
  answered: number;
  requestsPerSecond?: number;
  /** Completions: usage.completion_tokens summed over the 2xx answers, per second. */
  tokens?: number;
  tokensPerSecond?: number;
  /** Completions whose usage.completion_tokens was not COMPLETION_TOKENS. */
  shortCompletions?: number;
  /**
   * 2xx answers, from the request's setup (just before it is written) to the answer's last byte,
   * every answer (nearest rank); beside them autocannon's histogram, which keeps whole milliseconds.
   */
  latencyMs?: { p50: number; p99: number; max: number; mean: number; histogram: { p50: number; p99: number } };
  errors: ErrorCounts;
  /**
   * CPU time per second of the measured part: the server's process, this one's (the load
   * generator, autocannon), and every other process's on the machine (a shared machine's other work).
   */
  cpuCores?: { server: number; client: number; others: number };
  /**
   * The server's VmRSS when the measured part began and ended, the most sampled in the run
   * (warm-up included), and the measured part's span on the server's clock (seconds since its
   * spawn: its samples are the server's in that span).
   */
  rssMiB?: { start: number; end: number; peak: number; window: [number, number] };
}

/** One server process: how it started and ended, and its RSS over its life. */
export interface ServerLife {
  batching: boolean;
  pid?: number;
  /** Seconds from spawn to its `ready` line (the model loaded). */
  readySeconds?: number;
  /** It started, served, and exited with code 0 after SIGTERM within the bound. */
  ok: boolean;
  reason?: string;
  /** How it ended: after the bench's SIGTERM, or on its own (a crash); seconds from SIGTERM (or spawn) to exit. */
  exit?: { code: number | null; signal: string | null; afterSigterm: boolean; seconds: number; killed?: boolean };
  /** VmRSS after loading and at the end, VmHWM (the kernel's peak) before SIGTERM, and a sample about every second: [seconds since spawn, MiB]. */
  rssMiB?: { afterLoad: number; end?: number; peak?: number; samples: [number, number][] };
}

export interface ServeReport {
  kind: 'rnnlm-serve-bench';
  date: string;
  machine: BenchReport['machine'];
  options: {
    quick: boolean;
    device: string;
    /** Seconds of each measured run, and of the warm-up before it. */
    duration: number;
    warmup: number;
    connections: number[];
    endpoints: Endpoint[];
    /** Seconds the load generator waits for an answer before it counts a timeout. */
    clientTimeout: number;
    /** The server's limits (flags of `rnnlm serve`): 503 beyond maxConcurrent + maxQueue waiting requests. */
    limits: { maxConcurrent: number; maxQueue: number; timeout: number; shutdownTimeout: number; maxBatchSize: number };
    /** Seconds after SIGTERM within which a server must have exited with code 0. */
    exitBound: number;
  };
  model: { config: string; cell: string; layers: number; hiddenSize: number; embeddingSize: number; vocabSize: number; parameters: number; tokenizer: string; weights: string };
  servers: ServerLife[];
  runs: ServeRun[];
  /** serveTargets(report) when it was written (render computes them again from the data). */
  targets?: ServeTarget[];
  /** Set while runs are still to come (the file is rewritten after each run). */
  partial?: boolean;
}

export interface ServeTarget {
  what: string;
  /** The figures it is judged on. */
  figure: string;
  /** true / false: met or not; null: a figure only (not a target on this device or with these runs). */
  held: boolean | null;
}

const fmt = (x: number | undefined, digits = 0) =>
  x === undefined || !Number.isFinite(x) ? '—' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mib = (x: number) => fmt(x, x < 100 ? 1 : 0);

export const runKey = (r: { endpoint: string; connections: number; batching: boolean }) =>
  `${r.endpoint} c=${r.connections} batching ${r.batching ? 'on' : 'off'}`;

/** Every run of a report, in the order they run: each batching mode on its own server, endpoint by endpoint, connections rising. */
export function servePlan(endpoints: readonly Endpoint[], connections: number[], modes: boolean[] = [true, false]) {
  return modes.flatMap((batching) => endpoints.flatMap((endpoint) => connections.map((c) => ({ endpoint, connections: c, batching }))));
}

/** Non-2xx other than 503, timeouts, connection errors and bad bodies: what must be 0. */
export function unwanted(e: ErrorCounts): number {
  return Object.entries(e.status).reduce((s, [status, n]) => s + (status === '503' ? 0 : n), 0) + e.timeouts + e.connection + e.badBodies;
}

/** "0", or what went wrong: "503 × 12, 500 × 1, 3 timeouts". */
export function errorsCell(e: ErrorCounts): string {
  const parts = Object.entries(e.status).map(([s, n]) => `${s} × ${fmt(n)}`);
  if (e.timeouts) parts.push(`${fmt(e.timeouts)} timeouts`);
  if (e.connection) parts.push(`${fmt(e.connection)} connection errors`);
  if (e.badBodies) parts.push(`${fmt(e.badBodies)} bad bodies`);
  return parts.length ? parts.join(', ') : '0';
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** How much a run's RSS grew while it was measured, in MiB: the median of its second half's samples less the first half's (FLAT_RSS). */
export function rssGrowth(rep: ServeReport, r: ServeRun): number | undefined {
  if (!r.rssMiB) return undefined;
  const [from, to] = r.rssMiB.window, mid = (from + to) / 2;
  const samples: [number, number][] = [[from, r.rssMiB.start], ...(rep.servers[r.server]?.rssMiB?.samples ?? []).filter(([t]) => t > from && t < to), [to, r.rssMiB.end]];
  return median(samples.filter(([t]) => t >= mid).map(([, x]) => x)) - median(samples.filter(([t]) => t < mid).map(([, x]) => x));
}
const tolerance = (r: ServeRun) => Math.max(FLAT_RSS.fraction * r.rssMiB!.start, FLAT_RSS.mib);
/** The first sample of the run's server after the run at most FLAT_RSS above the run's start: its growth given back. */
const givenBack = (rep: ServeReport, r: ServeRun) =>
  rep.servers[r.server]?.rssMiB?.samples.find(([t, x]) => t > r.rssMiB!.window[1] && x <= r.rssMiB!.start + tolerance(r));
const grew = (rep: ServeReport, r: ServeRun) => rssGrowth(rep, r)! > tolerance(r);
const flat = (rep: ServeReport, r: ServeRun) => r.rssMiB !== undefined && (!grew(rep, r) || givenBack(rep, r) !== undefined);

/** The run at this endpoint, connections and batching. */
const find = (runs: ServeRun[], endpoint: Endpoint, connections: number, batching: boolean) =>
  runs.find((r) => r.endpoint === endpoint && r.connections === connections && r.batching === batching && r.status === 'ok');

/**
 * Issue 23's targets, from the report's data: no errors other than deliberate 503s and no crash
 * anywhere, RSS flat over every run; on the CPU, completions' tokens/s at 64 connections with
 * batching >= 2.5x without and /v1/next's p99 at 64 connections <= 100 ms (on a GPU, figures only).
 */
export function serveTargets(rep: ServeReport): ServeTarget[] {
  const out: ServeTarget[] = [];
  const runs = rep.runs;
  const all = runs.flatMap((r) => (r.warmup ? [r.errors, r.warmup.errors] : [r.errors]));
  const overloaded = all.reduce((s, e) => s + (e.status['503'] ?? 0), 0);
  const bad = runs.filter((r) => unwanted(r.errors) + (r.warmup ? unwanted(r.warmup.errors) : 0) > 0);
  const failedRuns = runs.filter((r) => r.status !== 'ok');
  out.push({
    what: 'no errors other than deliberate 503s',
    figure: `${bad.length ? bad.map((r) => `${runKey(r)}: ${errorsCell(r.errors)}${r.warmup && unwanted(r.warmup.errors) ? ` (warm-up: ${errorsCell(r.warmup.errors)})` : ''}`).join('; ') : 'none'} in ${runs.length} runs (warm-ups included)${failedRuns.length ? `, ${failedRuns.length} of which failed (below)` : ''}; 503: ${fmt(overloaded)}`,
    // A run that failed has no complete count of its errors.
    held: bad.length === 0 && failedRuns.length === 0 && runs.length > 0,
  });
  const failedServers = rep.servers.filter((s) => !s.ok);
  const exits = rep.servers.filter((s) => s.exit?.afterSigterm && s.exit.code === 0).map((s) => s.exit!.seconds);
  out.push({
    what: 'no crash: every run finished, every server exited 0 on SIGTERM',
    figure: failedRuns.length || failedServers.length
      ? [...failedServers.map((s) => `server (batching ${s.batching ? 'on' : 'off'}): ${firstLine(s.reason)}`), ...failedRuns.map((r) => `${runKey(r)}: ${firstLine(r.reason)}`)].join('; ')
      : `${rep.servers.length} servers, ${runs.length} runs; exit 0 within ${fmt(Math.max(...exits), 1)} s of SIGTERM (bound ${rep.options.exitBound} s)`,
    held: failedRuns.length === 0 && failedServers.length === 0 && runs.length > 0,
  });
  const measured = runs.filter((r) => r.rssMiB);
  const growth = (r: ServeRun) => rssGrowth(rep, r)!;
  const worst = measured.reduce<ServeRun | undefined>((w, r) => (w === undefined || growth(r) > growth(w) ? r : w), undefined);
  const lives = rep.servers.filter((s) => s.rssMiB?.end !== undefined)
    .map((s) => `batching ${s.batching ? 'on' : 'off'} ${mib(s.rssMiB!.afterLoad)} → ${mib(s.rssMiB!.end!)} MiB (peak ${mib(s.rssMiB!.peak ?? NaN)})`);
  out.push({
    what: `RSS flat over each run (the median of its second half at most ${FLAT_RSS.fraction * 100} % or ${FLAT_RSS.mib} MiB, whichever is more, above its first half's, or given back later in the server's life)`,
    figure: [
      `largest growth within a run: ${worst ? `${signed(growth(worst))} MiB (${runKey(worst)})` : '—'}`,
      `grew and given back later: ${measured.filter((r) => grew(rep, r) && givenBack(rep, r)).map((r) => `${runKey(r)} ${signed(growth(r))} MiB, back to ${mib(givenBack(rep, r)![1])} MiB ${fmt(givenBack(rep, r)![0] - r.rssMiB!.window[1])} s after it`).join(', ') || 'none'}`,
      `not flat: ${measured.filter((r) => !flat(rep, r)).map(runKey).join(', ') || 'none'}`,
      `over each server's life: ${lives.join(', ') || '—'}`,
    ].join('; '),
    held: measured.length === runs.length && runs.length > 0 && measured.every((r) => flat(rep, r)),
  });
  const cpu = rep.options.device === 'cpu';
  const c = rep.options.connections.includes(TARGET.connections) ? TARGET.connections : Math.max(...rep.options.connections);
  const judged = cpu && c === TARGET.connections;
  const on = find(runs, '/v1/completions', c, true), off = find(runs, '/v1/completions', c, false);
  if (on?.tokensPerSecond && off?.tokensPerSecond) {
    const x = on.tokensPerSecond / off.tokensPerSecond;
    out.push({
      what: `completions' tokens/s at ${c} connections, batching on ÷ off${judged ? ` ≥ ${TARGET.onOff}×` : ''}`,
      figure: `${fmt(on.tokensPerSecond)} ÷ ${fmt(off.tokensPerSecond)} = ${fmt(x, 2)}×`,
      held: judged ? x >= TARGET.onOff : null,
    });
  }
  const next = [true, false].map((b) => find(runs, '/v1/next', c, b)?.latencyMs?.p99);
  if (next[0] !== undefined) {
    out.push({
      what: `/v1/next p99 at ${c} connections with batching${judged ? ` ≤ ${TARGET.nextP99Ms} ms` : ''}`,
      figure: `${ms(next[0])} ms${next[1] !== undefined ? ` (without batching: ${ms(next[1])} ms)` : ''}`,
      held: judged ? next[0] <= TARGET.nextP99Ms : null,
    });
  }
  return out;
}

const signed = (x: number) => `${x >= 0 ? '+' : '−'}${mib(Math.abs(x))}`;
const firstLine = (s?: string) => (s ?? 'no reason given').split('\n')[0];
export const verdict = (t: ServeTarget) => (t.held === null ? 'figure only' : t.held ? 'met' : 'not met');

/** Plain-text table of the runs, for stdout. */
export function formatServe(runs: ServeRun[]): string {
  const header = ['endpoint', 'conns', 'batching', 'req/s', 'tokens/s', 'p50 ms', 'p99 ms', 'errors', 'RSS MiB start→end (peak)', 'CPU server+client+others', 'status'];
  const rows: string[][] = [header];
  for (const r of runs) {
    rows.push([
      r.endpoint, String(r.connections), r.batching ? 'on' : 'off',
      fmt(r.requestsPerSecond), fmt(r.tokensPerSecond),
      r.latencyMs ? ms(r.latencyMs.p50) : '—', r.latencyMs ? ms(r.latencyMs.p99) : '—',
      errorsCell(r.errors),
      r.rssMiB ? `${mib(r.rssMiB.start)}→${mib(r.rssMiB.end)} (${mib(r.rssMiB.peak)})` : '—',
      r.cpuCores ? `${fmt(r.cpuCores.server, 2)}+${fmt(r.cpuCores.client, 2)}+${fmt(r.cpuCores.others, 2)}` : '—',
      r.status === 'ok' ? 'ok' : `${r.status}: ${firstLine(r.reason).slice(0, 160)}`,
    ]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const right = new Set([1, 3, 4, 5, 6, 8, 9]);
  return rows.map((row) => row.map((cell, i) => (right.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}
