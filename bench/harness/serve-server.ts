/**
 * `rnnlm serve` in a child process, for the server benchmark: started on a free port (the port
 * read from its `listening on` line, readiness from its `ready` line), its VmRSS sampled about
 * once a second from /proc, stopped with SIGTERM, and how it ended recorded — an exit on its own
 * is a crash, and after SIGTERM only code 0 within the bound is a clean stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { ServeReport, ServerLife } from './serve';

const root = join(__dirname, '..', '..');

/** The CLI: lib/cli.ts under tsx in a clone; cli.cjs beside this code in a bundle (.gpu/ on the GPU machine, see gpu/gpu-pack.sh). */
const cli = () => (extname(__filename) === '.ts' ? ['--import', 'tsx', join(root, 'lib', 'cli.ts')] : [join(__dirname, 'cli.cjs')]);

/** VmRSS and VmHWM (peak) of a process in MiB, from /proc; undefined once it is gone. */
export function memoryOf(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** CPU time of a process (every thread, user and system) in seconds, from /proc; undefined once it is gone. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th, in
    // clock ticks (USER_HZ: 100 on Linux).
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}

/** CPU time of the whole machine (every process) in seconds, from /proc/stat's first line. */
export function machineCpuSeconds(): number {
  // user nice system idle iowait irq softirq steal ..., in USER_HZ (100) ticks: busy is all but idle and iowait.
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + (steal || 0)) / 100;
}

export interface ServerSpec {
  checkpoint: string;
  batching: boolean;
  device: string;
  limits: ServeReport['options']['limits'];
  /** Extra flags for the server's node (--cpu-prof, say). */
  nodeArgs: string[];
  /** Seconds it may take to print `ready`. */
  startTimeout: number;
}

export class ServerProcess {
  readonly life: ServerLife;
  private readonly child: ChildProcess;
  private readonly t0 = performance.now();
  private stderr = '';
  private sampler?: NodeJS.Timeout;
  private ended?: { code: number | null; signal: NodeJS.Signals | null; at: number };
  private readonly exited: Promise<void>;
  /** The base URL, once it listens. */
  url = '';

  private constructor(spec: ServerSpec) {
    const { limits: l } = spec;
    const args = [
      ...spec.nodeArgs, ...cli(), 'serve', spec.checkpoint, '--host', '127.0.0.1', '--port', '0', '--device', spec.device,
      '--max-concurrent', String(l.maxConcurrent), '--max-queue', String(l.maxQueue), '--timeout', String(l.timeout),
      '--shutdown-timeout', String(l.shutdownTimeout), '--max-batch-size', String(l.maxBatchSize), ...(spec.batching ? [] : ['--no-batching']),
    ];
    this.child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    this.life = { batching: spec.batching, pid: this.child.pid, ok: false };
    this.child.stderr!.on('data', (d: Buffer) => void (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.ended = { code, signal, at: performance.now() };
        clearInterval(this.sampler);
        resolve();
      });
    });
  }

  /** Starts a server and resolves once its model is loaded; rejects (the process gone) if it exits or is not ready in time. */
  static async start(spec: ServerSpec): Promise<ServerProcess> {
    const s = new ServerProcess(spec);
    let lines = '';
    const ready = new Promise<void>((resolve, reject) => {
      s.child.stdout!.on('data', (d: Buffer) => {
        lines += d.toString();
        const listening = /rnnlm serve: listening on (\S+)/.exec(lines);
        if (listening) s.url = listening[1];
        if (/rnnlm serve: ready: /.test(lines)) resolve();
        lines = lines.slice(-2000);
      });
      void s.exited.then(() => reject(new Error(`the server exited with ${s.endedWith()} before it was ready: ${s.stderrTail()}`)));
      setTimeout(() => reject(new Error(`the server was not ready after ${spec.startTimeout} s: ${s.stderrTail()}`)), spec.startTimeout * 1000).unref();
    });
    try {
      await ready;
    } catch (e) {
      s.child.kill('SIGKILL');
      await s.exited;
      s.life.reason = (e as Error).message;
      s.life.exit = s.exitOf(false);
      throw Object.assign(e as Error, { life: s.life });
    }
    s.life.readySeconds = s.seconds();
    const m = memoryOf(s.child.pid!);
    s.life.rssMiB = { afterLoad: round(m?.rss ?? NaN), samples: [] };
    s.sampler = setInterval(() => s.rss(), 1000);
    return s;
  }

  /** Its VmRSS now in MiB (recorded as a sample), or undefined once it has exited. */
  rss(): number | undefined {
    const m = this.ended ? undefined : memoryOf(this.child.pid!);
    if (m) this.life.rssMiB?.samples.push([round(this.seconds()), round(m.rss)]);
    return m?.rss;
  }

  /** Its CPU time so far in seconds, or undefined once it has exited. */
  cpuSeconds(): number | undefined {
    return this.ended ? undefined : cpuSecondsOf(this.child.pid!);
  }

  /** Seconds since spawn. */
  seconds(): number {
    return (performance.now() - this.t0) / 1000;
  }

  get alive(): boolean {
    return this.ended === undefined;
  }

  /** Why it is gone, for a run it was serving. */
  death(): string {
    return `the server exited with ${this.endedWith()} while serving: ${this.stderrTail()}`;
  }

  /**
   * SIGTERM, then up to `bound` seconds for it to exit (then SIGKILL). Fills in its life: ok only
   * if it was still running and exited with code 0 and no signal in time.
   */
  async stop(bound: number): Promise<ServerLife> {
    const crashed = !this.alive;
    if (!crashed) {
      const m = memoryOf(this.child.pid!);
      if (this.life.rssMiB && m) Object.assign(this.life.rssMiB, { end: round(m.rss), peak: round(m.hwm) });
      const sent = performance.now();
      this.child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([this.exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), bound * 1000)))]);
      clearTimeout(timer);
      if (late) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
      this.life.exit = { ...this.exitOf(true, sent), ...(late ? { killed: true } : {}) };
      this.life.ok = !late && this.ended!.code === 0 && this.ended!.signal === null;
      if (!this.life.ok) {
        this.life.reason = late ? `still running ${bound} s after SIGTERM (killed): ${this.stderrTail()}` : `exited with ${this.endedWith()} after SIGTERM: ${this.stderrTail()}`;
      }
    } else {
      this.life.exit = this.exitOf(false);
      this.life.reason = this.death();
    }
    return this.life;
  }

  private exitOf(afterSigterm: boolean, from = this.t0): NonNullable<ServerLife['exit']> {
    const e = this.ended!;
    return { code: e.code, signal: e.signal, afterSigterm, seconds: round((e.at - from) / 1000, 2) };
  }

  private endedWith(): string {
    return this.ended ? (this.ended.signal ?? `code ${this.ended.code}`) : 'nothing yet';
  }

  private stderrTail(): string {
    return this.stderr.trim().split('\n').slice(-3).join(' | ') || '(nothing on stderr)';
  }
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
