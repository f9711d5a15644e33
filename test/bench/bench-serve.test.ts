// The server benchmark (npm run bench:serve, bench/harness/serve*.ts) run quick: every run of the
// plan is in the report and finished, every server exited with code 0 after SIGTERM, every answer
// was a 2xx with a body that passed its check, completions drew the tokens they were asked for
// (counted from the answers), and every figure is finite. Not speed: that is for the benchmark to
// report, not for a test to assert.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { COMPLETION_TOKENS, QUICK_SERVE_CONNECTIONS, SERVE_ENDPOINTS, runKey, rssGrowth, servePlan, serveTargets, type ServeReport } from '../../bench/harness/serve';
import { QUICK } from '../../bench/harness/configs';

const root = join(__dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'rnnlm-bench-serve-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('bench:serve --quick: each (endpoint, connections, batching) measured against a live server, every server stopped cleanly', () => {
  const json = join(dir, 'quick.json');
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'serve.ts'), '--quick', '--json', json], { cwd: root, encoding: 'utf8' });
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  const report = JSON.parse(readFileSync(json, 'utf8')) as ServeReport;
  expect(report).toMatchObject({ kind: 'rnnlm-serve-bench', options: { quick: true, device: 'cpu' }, model: { config: QUICK.name, vocabSize: QUICK.vocabSize, tokenizer: 'word' } });
  expect(report.partial).toBeUndefined();
  expect(report.runs.map(runKey)).toEqual(servePlan(SERVE_ENDPOINTS, QUICK_SERVE_CONNECTIONS).map(runKey));

  // One server per batching mode, each ready, then stopped by SIGTERM: exit code 0, no signal, within the bound.
  expect(report.servers.map((s) => s.batching)).toEqual([true, false]);
  for (const s of report.servers) {
    expect(s, `batching ${s.batching}`).toMatchObject({ ok: true, exit: { code: 0, signal: null, afterSigterm: true } });
    expect(s.exit!.seconds).toBeLessThanOrEqual(report.options.exitBound);
    const m = s.rssMiB!;
    for (const x of [s.readySeconds!, m.afterLoad, m.end!, m.peak!]) expect(Number.isFinite(x) && x > 0, `server ${s.batching}: ${x}`).toBe(true);
    expect(m.samples.length).toBeGreaterThan(0);
  }

  for (const run of report.runs) {
    const at = runKey(run);
    expect(run, at).toMatchObject({ status: 'ok', server: run.batching ? 0 : 1 });
    expect(run.reason, at).toBeUndefined();
    // Every answer a 2xx (no limit is near at 16 connections), every checked body right.
    for (const e of [run.errors, run.warmup!.errors]) {
      expect(e, at).toMatchObject({ status: {}, timeouts: 0, connection: 0, badBodies: 0 });
    }
    expect(run.answered, at).toBeGreaterThan(0);
    expect(run.errors.checkedBodies, at).toBeGreaterThan(0);
    if (run.endpoint === '/v1/completions') {
      // ignore_eos: each completion draws max_tokens, as its usage says.
      expect(run.errors.checkedBodies, at).toBe(run.answered);
      expect(run.tokens, at).toBe(run.answered * COMPLETION_TOKENS);
      expect(run.shortCompletions, at).toBe(0);
    } else {
      expect(run.tokens, at).toBeUndefined();
    }
    const l = run.latencyMs!;
    const figures = [run.seconds, run.requestsPerSecond!, l.p50, l.p99, l.max, l.mean, run.rssMiB!.start, run.rssMiB!.end, run.rssMiB!.peak, run.warmup!.seconds, run.cpuCores!.server, run.cpuCores!.client];
    expect(run.cpuCores!.others >= 0, at).toBe(true);
    if (run.endpoint === '/v1/completions') figures.push(run.tokensPerSecond!);
    for (const x of figures) expect(Number.isFinite(x) && x > 0, `${at}: ${x}`).toBe(true);
    expect(l.p50 <= l.p99 && l.p99 <= l.max, at).toBe(true);
    expect(Number.isFinite(rssGrowth(report, run)), at).toBe(true);
  }

  // The targets are computed from the data and written with it (whether they hold is not asserted).
  expect(report.targets).toEqual(serveTargets(report));
  expect(report.targets!.map((t) => typeof t.held)).toEqual(['boolean', 'boolean', 'boolean', 'object', 'object']);
  expect(r.stdout).toMatch(/^\/v1\/completions\s+16\s+on\s+[\d,]+\s+[\d,]+\s+[\d.]+\s+[\d.]+\s+0\s+.*ok$/m);
  expect(r.stdout).toMatch(/^target — no crash: every run finished, every server exited 0 on SIGTERM: 2 servers, 8 runs; .* \(met\)$/m);
}, 120_000);
