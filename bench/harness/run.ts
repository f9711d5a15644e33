/**
 * `rnnlm bench` / `npm run bench`: every peer on every configuration, one run at a time, each in
 * its own process with a time budget; a table on stdout and, with --json, the whole report.
 * Ratios are only ever taken between runs of the same report (same machine, same session).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { extname, join } from 'node:path';
import { nvidiaDriverPresent } from '../../lib/backend/cuda';
import { invalidArgument } from '../../lib/errors';
import { CONCURRENCY_BUDGET, concurrencyPlan, concurrencyTargets, formatConcurrency, runConcurrency, type ConcurrencyRun } from './concurrency';
import { CONFIGS, CPU_DEFAULT, QUICK, findConfig, scalingConfigs, type BenchConfig } from './configs';
import { implausibleFirstLoss } from './peer';
import { spawnWorker, stderrTail } from './spawn';
import type { RunResult, RunSpec } from './worker';

/** The CLI's entry (lib/cli.ts loads this file only): the configurations' names for its help. */
export { CONFIGS };

/** The peers a bench runs unless told (--peers); ALL_PEERS adds our CUDA variants (rnnlm-peer.ts), asked for by name. */
export const DEFAULT_PEERS = ['rnnlm-cpu', 'rnnlm-cuda', 'tfjs-cpu', 'tfjs-wasm', 'tfjs-webgpu'];
export const ALL_PEERS = [...DEFAULT_PEERS, 'rnnlm-cuda-tf32', 'rnnlm-cuda-bf16', 'rnnlm-cuda-fp16', 'rnnlm-cuda-auto', 'rnnlm-cuda-graphs'];

/** Ours on the same class of device as a peer: ratios compare GPU with GPU and CPU with CPU. */
export function oursFor(peer: string): string {
  return /-cpu$|-wasm$/.test(peer) ? 'rnnlm-cpu' : 'rnnlm-cuda';
}

export interface BenchOptions {
  /** Configuration names, or 'all'; default: all on a GPU machine, CPU_DEFAULT otherwise. */
  configs?: string[];
  peers?: string[];
  /** A tiny configuration with short timings, for smoke tests (CI). */
  quick?: boolean;
  /** Timed training steps (default: as many as fill minSeconds). */
  steps?: number;
  minSeconds?: number;
  genSeconds?: number;
  /** Seconds one run (one peer on one configuration) may take before it is stopped. */
  budget?: number;
  /** Also the scaling sweeps (hidden size, batch size) for these peers. */
  scaling?: string[];
  /** The concurrency scenario for our peers on zaremba-small and char-lstm (bench/harness/concurrency.ts). Default true. */
  concurrency?: boolean;
  /** Only the concurrency scenario: no training and generation runs. */
  concurrencyOnly?: boolean;
  /** Measured rounds of each concurrency run last about this long (default 3; --quick 0.3). */
  concurrencySeconds?: number;
  /** Runs measured by another program on this machine in this session (bench/pytorch_bench.py), added to the report. */
  withRuns?: string;
  json?: string;
  log?: (line: string) => void;
}

export interface BenchReport {
  kind: 'rnnlm-bench';
  date: string;
  machine: { cpu: string; cores: number; memoryGiB: number; os: string; node: string; gpu?: string; nvidiaDriver?: string; loadAverage?: number; graphics?: GraphicsFacts };
  options: { quick: boolean; minSeconds: number; genSeconds: number; budget: number; steps?: number; concurrencySeconds?: number };
  runs: RunResult[];
  scaling?: (RunResult & { axis: string; value: number })[];
  concurrency?: ConcurrencyRun[];
  /** Set while runs are still to come: the file is rewritten after every run, so a run that is
   * killed (a time-limited GPU session) still leaves what it measured. */
  partial?: boolean;
}

const workerFile = join(__dirname, `worker${extname(__filename)}`);

/** Runs one spec in a child process; never rejects. */
export async function runOne(spec: RunSpec, budgetSeconds: number): Promise<RunResult> {
  let last: RunResult = { peer: spec.peer, config: spec.config.name, status: 'error', reason: 'the run reported nothing', notes: [] };
  const { code, signal, timedOut, stderr } = await spawnWorker(workerFile, spec, budgetSeconds, (m: RunResult) => {
    last = m.status === 'error' && last.status !== 'error' ? { ...last, status: 'error', reason: m.reason } : { ...m, peer: spec.peer, config: spec.config.name };
  });
  if (timedOut) {
    last = { ...last, status: 'timeout', reason: `stopped at the ${budgetSeconds} s budget` };
    const t = last.train;
    if ((!t || t.steps === 0) && last.trainStartedAt) {
      // Not one step finished: the rate is below one step's tokens over the time it had.
      const tokens = spec.config.batchSize * spec.config.seqLength;
      const sec = (Date.now() - last.trainStartedAt) / 1000;
      last.reason += `: no training step finished in ${sec.toFixed(0)} s, so training runs at < ${(tokens / sec).toPrecision(2)} tokens/s`;
      last.train = undefined;
      (last as RunResult & { trainTokensPerSecondBelow?: number }).trainTokensPerSecondBelow = tokens / sec;
    }
  } else if (last.status === 'ok' && (code !== 0 || !last.train?.steps)) {
    last = { ...last, status: 'error', reason: `exited with ${signal ?? `code ${code}`} before finishing: ${stderrTail(stderr)}` };
  } else if (last.status === 'error' && last.reason === 'the run reported nothing') {
    last.reason = `exited with ${signal ?? `code ${code}`}: ${stderrTail(stderr)}`;
  } else if (last.status === 'unavailable' && stderr.trim()) {
    // What the peer's own libraries said (Dawn names the Vulkan feature an adapter lacks).
    const said = [...new Set(stderr.split('\n').map((l) => l.trim()).filter(Boolean))].slice(-6).join(' | ');
    last = { ...last, notes: [...(last.notes ?? []), `its stderr: ${said}`] };
  }
  return last;
}

/** The machine a report was measured on. */
export function machine(): BenchReport['machine'] {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    // The last minute's, at the start: a shared machine's other jobs slow every figure.
    loadAverage: Math.round(loadavg()[0] * 100) / 100,
    ...nvidiaDriverVersion(),
  };
}

/** machine(), with the container's graphics facts on a machine with an NVIDIA driver. */
function benchMachine(): BenchReport['machine'] {
  const m = machine();
  return m.nvidiaDriver ? { ...m, graphics: graphicsFacts() } : m;
}

/**
 * What a container offers graphics APIs (tfjs-webgpu runs on Dawn over Vulkan): the capabilities
 * the NVIDIA container runtime was asked for (`graphics` among them mounts the Vulkan ICD and the
 * EGL / GLX libraries), the Vulkan ICD files, and which of the libraries the dynamic linker knows.
 * Recorded on GPU machines, so that "tfjs-webgpu could not run" comes with its evidence.
 */
export interface GraphicsFacts {
  driverCapabilities: string | null;
  vulkanIcds: string[];
  libraries: Record<'libvulkan.so.1' | 'libEGL_nvidia' | 'libGLX_nvidia', boolean>;
}

export const ICD_DIRS = ['/usr/local/nvidia/share/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'];

/** `ldconfig -p`'s listing (null without ldconfig) is read for the libraries. */
export function graphicsFacts(env: NodeJS.ProcessEnv = process.env, icdDirs = ICD_DIRS, linkerCache = ldconfigListing()): GraphicsFacts {
  const icds = icdDirs.flatMap((d) => {
    try {
      return readdirSync(d).filter((f) => f.endsWith('.json')).sort().map((f) => join(d, f));
    } catch {
      return [];
    }
  });
  const has = (lib: string) => linkerCache !== null && linkerCache.split('\n').some((l) => l.trim().startsWith(lib));
  return {
    driverCapabilities: env.NVIDIA_DRIVER_CAPABILITIES ?? null,
    vulkanIcds: icds,
    libraries: { 'libvulkan.so.1': has('libvulkan.so.1'), libEGL_nvidia: has('libEGL_nvidia'), libGLX_nvidia: has('libGLX_nvidia') },
  };
}

function ldconfigListing(): string | null {
  for (const bin of ['ldconfig', '/sbin/ldconfig']) {
    const r = spawnSync(bin, ['-p'], { encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0) return r.stdout;
  }
  return null;
}

/** The kernel module's version line ("NVRM version: ... Kernel Module  580.159.04 ..."), where there is one. */
function nvidiaDriverVersion(): { nvidiaDriver?: string } {
  try {
    const m = /Kernel Module\s+([\d.]+)/.exec(readFileSync('/proc/driver/nvidia/version', 'utf8'));
    return m ? { nvidiaDriver: m[1] } : {};
  } catch {
    return {};
  }
}

const fmt = (x: number | undefined, digits = 0) =>
  x === undefined ? '—' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Plain-text table of a report's runs, with each peer's speed relative to ours on the same device class. */
export function formatRuns(runs: RunResult[]): string {
  const lines: string[] = [];
  const header = ['config', 'peer', 'train tok/s', 'gen tok/s', 'peak RSS MiB', 'peak device MiB', 'ours/peer train', 'ours/peer gen', 'status'];
  const rows: string[][] = [header];
  for (const r of runs) {
    const ours = runs.find((o) => o.config === r.config && o.peer === oursFor(r.peer));
    const isOurs = r.peer.startsWith('rnnlm');
    const below = (r as { trainTokensPerSecondBelow?: number }).trainTokensPerSecondBelow;
    const tr = r.train?.tokensPerSecond ?? undefined;
    const ratio = (a?: number, b?: number, lower = false) => (a && b ? `${lower ? '> ' : ''}${fmt(a / b, a / b < 10 ? 1 : 0)}x` : '');
    rows.push([
      r.config,
      r.peer,
      tr !== undefined ? fmt(tr, tr < 10 ? 2 : 0) : below !== undefined ? `< ${below.toPrecision(2)}` : '—',
      r.generate ? fmt(r.generate.tokensPerSecond, r.generate.tokensPerSecond < 10 ? 2 : 0) : '—',
      fmt(r.peakRssMiB),
      fmt(r.peakDeviceMiB),
      isOurs ? '' : ratio(ours?.train?.tokensPerSecond, tr ?? below, tr === undefined),
      isOurs ? '' : ratio(ours?.generate?.tokensPerSecond, r.generate?.tokensPerSecond),
      r.status === 'ok' ? 'ok' : `${r.status}: ${(r.reason ?? '').split('\n')[0].slice(0, 120)}`,
    ]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) lines.push(row.map((cell, i) => (i >= 2 && i <= 7 ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd());
  const notes = [...new Set(runs.flatMap((r) => r.notes.map((n) => `${r.peer}: ${n}`)))];
  return [...lines, ...notes.map((n) => `note — ${n}`)].join('\n');
}

export async function runBench(o: BenchOptions = {}): Promise<{ report: BenchReport; ok: boolean }> {
  const log = o.log ?? ((l: string) => console.log(l));
  const gpu = nvidiaDriverPresent();
  const quick = o.quick ?? false;
  const names = o.configs ?? (quick ? [QUICK.name] : gpu ? CONFIGS.map((c) => c.name) : CPU_DEFAULT);
  const configs: BenchConfig[] = (names.includes('all') ? CONFIGS.map((c) => c.name) : names).map(
    (n) => findConfig(n) ?? (() => { throw invalidArgument(`bench: unknown configuration '${n}' (known: ${[...CONFIGS.map((c) => c.name), QUICK.name].join(', ')})`); })(),
  );
  const peers = o.peers ?? DEFAULT_PEERS;
  for (const p of [...peers, ...(o.scaling ?? [])]) {
    if (!ALL_PEERS.includes(p)) throw invalidArgument(`bench: unknown peer '${p}' (known: ${ALL_PEERS.join(', ')})`);
  }
  const timing = {
    quick,
    minSeconds: o.minSeconds ?? (quick ? 1 : 10),
    genSeconds: o.genSeconds ?? (quick ? 0.5 : 5),
    budget: o.budget ?? (quick ? 60 : 600),
    concurrencySeconds: o.concurrencySeconds ?? (quick ? 0.3 : 3),
    ...(o.steps !== undefined ? { steps: o.steps } : {}),
  };
  const report: BenchReport = { kind: 'rnnlm-bench', date: new Date().toISOString(), machine: benchMachine(), options: timing, runs: [] };
  const spec = (peer: string, config: BenchConfig): RunSpec => ({
    peer, config, seed: 1, minSeconds: timing.minSeconds, genSeconds: timing.genSeconds, steps: timing.steps, maxSteps: 10_000,
  });
  const save = (partial: boolean) => {
    if (o.json) writeFileSync(o.json, `${JSON.stringify(partial ? { ...report, partial } : report, null, 2)}\n`);
  };
  log(`rnnlm bench: ${configs.map((c) => c.name).join(', ')} x ${peers.join(', ')}; ${report.machine.cpu}, ${report.machine.cores} cores`);
  for (const c of o.concurrencyOnly ? [] : configs) {
    for (const p of peers) {
      const r = await runOne(spec(p, c), timing.budget);
      if (r.info?.device && p === 'rnnlm-cuda') report.machine.gpu = String(r.info.device);
      report.runs.push(r);
      save(true);
      log(formatRuns([r]).split('\n')[1]);
    }
  }
  if (o.concurrency !== false || o.concurrencyOnly) {
    const plan = concurrencyPlan(peers, configs, quick, timing.concurrencySeconds);
    if (plan.length) {
      report.concurrency = [];
      log('');
      log(`concurrency: ${plan.length} runs (${[...new Set(plan.map((s) => `${s.peer} ${s.config.name}`))].join(', ')}), each in its own process`);
    }
    const unavailable = new Set<string>();
    for (const s of plan) {
      if (unavailable.has(s.peer)) continue; // said once
      const r = await runConcurrency(s, Math.min(timing.budget, CONCURRENCY_BUDGET));
      if (r.status === 'unavailable') unavailable.add(s.peer);
      if (r.device && s.peer === 'rnnlm-cuda') report.machine.gpu = r.device;
      report.concurrency!.push(r);
      save(true);
      log(formatConcurrency([r]).split('\n')[1]);
    }
  }
  if (o.scaling?.length) {
    report.scaling = [];
    for (const { axis, value, config } of scalingConfigs()) {
      for (const p of o.scaling) {
        // Shorter runs: the sweep is about how cost grows, not about the last per cent.
        const r = await runOne({ ...spec(p, config), minSeconds: Math.min(timing.minSeconds, 5), genSeconds: 0.2 }, Math.min(timing.budget, 150));
        report.scaling.push({ ...r, axis, value });
        save(true);
        log(`${axis} ${value} ${p}: ${r.train ? `${fmt(r.train.tokensPerSecond)} tokens/s` : r.reason}`);
      }
    }
  }
  if (o.withRuns) {
    let extra: RunResult[];
    try {
      extra = (JSON.parse(readFileSync(o.withRuns, 'utf8')) as { runs: RunResult[] }).runs;
      if (!Array.isArray(extra)) throw new Error('no "runs" array');
    } catch (e) {
      throw invalidArgument(`bench: --with ${o.withRuns}: ${(e as Error).message}`);
    }
    // Next to ours, configuration by configuration; a run whose model is not the model fails.
    for (const x of extra) {
      const c = findConfig(x.config);
      const wrong = !x.train || !c ? undefined
        : x.train.firstLoss === undefined ? 'it reports no train.firstLoss, so it cannot be checked to train the model'
        : implausibleFirstLoss(x.train.firstLoss, c.vocabSize);
      const r = wrong ? { ...x, status: 'error' as const, reason: wrong, train: undefined } : x;
      const at = report.runs.map((q) => q.config).lastIndexOf(r.config);
      report.runs.splice(at < 0 ? report.runs.length : at + 1, 0, { ...r, notes: r.notes ?? [] });
    }
  }
  log('');
  if (report.runs.length) log(formatRuns(report.runs));
  if (report.concurrency?.length) {
    log('');
    log(formatConcurrency(report.concurrency));
    for (const line of concurrencyTargets(report.concurrency)) log(`target — ${line}`);
  }
  save(false);
  // A figure may be missing only with a stated reason; a peer that crashed fails the run.
  const ok = [...report.runs, ...(report.scaling ?? [])].every((r) => r.status !== 'error' && (r.train || r.reason))
    && (report.concurrency ?? []).every((r) => r.status !== 'error' && (r.status !== 'ok' || r.finished));
  return { report, ok };
}
