// Process lifecycle with native models: a process (or a worker thread) ends cleanly however it
// ends — naturally with models alive, by process.exit() or an uncaught exception while a model
// trains, generates or saves, or by worker.terminate() — with its own exit code, no signal, and
// within 5 s of the end being asked for. Racy cases run 20 times at varied moments.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';

const root = join(__dirname, '..', '..');
// Under test:asan (sanitized addon, several times slower) the same cases run fewer times with
// wider time limits: there they are checked for use-after-free at teardown, not for speed.
const sanitized = Boolean(process.env.RNNLM_SANITIZED);
const repeats = sanitized ? 6 : 20;
const limitMs = sanitized ? 60_000 : 5000;
const LONG_MS = 600_000;
const child = join(__dirname, 'children', 'lifecycle-child.ts');
const dir = mkdtempSync(join(tmpdir(), 'rnnlm-lifecycle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  /** Milliseconds from the child's "busy" line (or its start) to its exit. */
  afterBusy: number;
}

function run(scenario: string, delay = 0): Promise<Exit> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, scenario, String(delay), dir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '', busyAt = performance.now();
    // A hang is a failure with a reason, not a stuck test run.
    const killer = setTimeout(() => p.kill('SIGKILL'), 3 * limitMs + 30_000);
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/^busy$/m.test(d.toString())) busyAt = performance.now();
    });
    p.stderr.on('data', (d: Buffer) => void (err += d.toString()));
    p.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, out, err, afterBusy: performance.now() - busyAt });
    });
  });
}

/** Runs jobs two at a time (this machine has two cores; each child uses them too). */
async function pool<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all([0, 1].map(async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  }));
  return results;
}

const clean = (r: Exit, code: number, label: string) => {
  const what = `${label}: code ${r.code}, signal ${r.signal}, ${Math.round(r.afterBusy)} ms after busy\n${r.err.slice(-800)}`;
  expect(r.signal, what).toBeNull();
  expect(r.code, what).toBe(code);
  expect(r.err, what).not.toMatch(/terminate called|Aborted|Segmentation|FATAL ERROR/);
};

test('a natural end with two models alive keeps process.exitCode (no SIGABRT)', async () => {
  const runs = await pool(['two-models', 'created-loaded', 'failed-creates', 'two-models', 'created-loaded', 'failed-creates'].map((s) => () => run(s)));
  runs.forEach((r, i) => clean(r, 3, ['two-models', 'created-loaded', 'failed-creates'][i % 3]));
}, LONG_MS);

test('a tensor whose buffer getter disposes the stream gets ERR_DISPOSED, not a crash', async () => {
  clean(await run('dispose-in-getter'), 3, 'dispose-in-getter');
});

test('process.exit() while a model trains, generates or saves ends the process within 5 s, 20 times (6 under test:asan)', async () => {
  const kinds = ['fit', 'generate', 'save'];
  const cases = Array.from({ length: repeats }, (_, i) => ({ kind: kinds[i % 3], delay: 20 + ((i * 97) % 400) }));
  const runs = await pool(cases.map((c) => () => run(`exit:${c.kind}`, c.delay)));
  runs.forEach((r, i) => {
    clean(r, 3, `exit:${cases[i].kind} after ${cases[i].delay} ms`);
    expect(r.afterBusy).toBeLessThan(cases[i].delay + limitMs);
  });
}, LONG_MS);

test('an uncaught exception while a model trains ends the process with code 1 within 5 s', async () => {
  const runs = await pool([50, 250, 450].map((d) => () => run('throw:fit', d)));
  runs.forEach((r, i) => {
    expect(r.err).toMatch(/uncaught on purpose/);
    clean(r, 1, `throw:fit #${i}`);
    expect(r.afterBusy).toBeLessThan(limitMs + 450);
  });
}, LONG_MS);

test('a worker thread with two models ends, is terminated, or calls process.exit(): the process lives on', async () => {
  const cases = [['end', 0], ['terminate', 1], ['exit', 5]] as const;
  const runs = await pool(cases.map(([how]) => () => run(`worker/idle-two/${how}`, 100)));
  runs.forEach((r, i) => {
    clean(r, 3, `worker/idle-two/${cases[i][0]}`);
    expect(r.out).toContain(`worker exit ${cases[i][1]}`);
  });
}, LONG_MS);

test('a worker terminated, killed by an uncaught exception, or exiting mid-fit or mid-generate: the process lives on, 20 times (6 under test:asan)', async () => {
  const kinds = ['run:fit/terminate', 'run:generate/terminate', 'throw:fit/x', 'exit:fit/x', 'run:fit/terminate'];
  const cases = Array.from({ length: repeats }, (_, i) => ({ s: `worker/${kinds[i % kinds.length]}`, delay: 10 + ((i * 131) % 500) }));
  const runs = await pool(cases.map((c) => () => run(c.s, c.delay)));
  runs.forEach((r, i) => {
    const label = `${cases[i].s} after ${cases[i].delay} ms`;
    clean(r, 3, label);
    expect(r.out, label).toMatch(/worker exit [13]/);
    expect(r.afterBusy, label).toBeLessThan(cases[i].delay + limitMs);
  });
}, LONG_MS);
