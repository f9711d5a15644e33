// The concurrency scenario of `npm run bench` (bench/harness/concurrency.ts), run tiny through the
// CLI: every run of the plan is in the report, each worker ended with code 0 and no signal, and
// every figure is finite. Not speed: that is for the benchmark to report, not for a test to assert.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { aggregate, concurrencyPlan, GENERATE_TOKENS, type ConcurrencyRun } from '../../bench/harness/concurrency';
import { QUICK } from '../../bench/harness/configs';
import type { BenchReport } from '../../bench/harness/run';

const root = join(__dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'rnnlm-bench-concurrency-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function bench(json: string, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'lib', 'cli.ts'), 'bench', '--quick', '--peers', 'rnnlm-cpu', '--concurrency-only', '--json', json, ...args], { cwd: root, encoding: 'utf8' });
  return { ...r, report: JSON.parse(readFileSync(json, 'utf8')) as BenchReport };
}
const key = (r: { kind: string; n: number; batching: boolean }) => `${r.kind} N=${r.n} ${r.batching ? 'on' : 'off'}`;
const expectedKeys = concurrencyPlan(['rnnlm-cpu'], [QUICK], true, 0).map(key);

test('bench --quick --concurrency-only: each (call, N, batching) measured in its own process, with finite figures', () => {
  const { status, stdout, stderr, report } = bench(join(dir, 'quick.json'));
  expect(status, stderr).toBe(0);
  expect(report.runs).toEqual([]);
  expect(report.partial).toBeUndefined();
  const runs = report.concurrency as ConcurrencyRun[];
  expect(runs.map(key)).toEqual(expectedKeys);
  expect(new Set(runs.map((r) => r.kind))).toEqual(new Set(['generate', 'predictNext']));
  for (const r of runs) {
    const at = key(r);
    expect(r, at).toMatchObject({ peer: 'rnnlm-cpu', config: QUICK.name, status: 'ok', finished: true, exit: { code: 0, signal: null } });
    expect(r.reason, at).toBeUndefined();
    expect(r.rounds, at).toBeGreaterThanOrEqual(1);
    expect(r.calls, at).toBe(r.rounds * r.n);
    // Every generate call goes through <eos> to maxTokens; ids.length is what was counted.
    expect(r.tokens, at).toBe(r.kind === 'generate' ? r.calls * GENERATE_TOKENS : r.calls);
    expect(r.shortCalls, at).toBeUndefined();
    const { p50, p99, max } = r.latencyMs!;
    for (const x of [r.seconds, r.warmupSeconds!, aggregate(r)!, r.callsPerSecond!, p50, p99, max, r.peakRssMiB!, r.exit!.seconds]) {
      expect(Number.isFinite(x) && x > 0, `${at}: ${x}`).toBe(true);
    }
    expect(p50 <= p99 && p99 <= max, at).toBe(true);
  }
  // The table's on ÷ off ratios and the targets' figures are printed (what they are is not asserted).
  expect(stdout).toMatch(/^quick\s+rnnlm-cpu\s+generate\s+4\s+on\s+[\d,]+ tok\/s.*\d\.\d\dx\s+ok$/m);
  expect(stdout).toMatch(/^target — rnnlm-cpu quick: generate at N = 4, batching on ÷ off: [\d.]+× \(target ≥ 2\.5×: (met|not met)\)/m);
}, 120_000);

test('a run stopped at its budget is reported as such, with the reason and the signal that ended it', () => {
  const { status, stderr, report } = bench(join(dir, 'budget.json'), '--budget', '0.05');
  // A stated reason is no failure of the bench (as for the training runs).
  expect(status, stderr).toBe(0);
  const runs = report.concurrency as ConcurrencyRun[];
  expect(runs.map(key)).toEqual(expectedKeys);
  for (const r of runs) {
    expect(r, key(r)).toMatchObject({ status: 'timeout', exit: { signal: 'SIGKILL' }, reason: expect.stringMatching(/^stopped at the 0\.05 s budget before its warm-up round/) });
  }
}, 60_000);
