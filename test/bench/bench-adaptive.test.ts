// The adaptive-softmax benchmark (npm run bench:adaptive, bench/harness/adaptive*.ts) run quick
// as a child process: it exits 0 on its own within its bound, every (V, softmax) of the plan is in
// the report with finite positive figures that agree with their own counts, the ratios are the
// runs' figures divided, and the README table renders those figures. Not speed: that is for the
// benchmark to report, not for a test to assert.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { ADAPTIVE_MODEL, QUICK_ADAPTIVE_SIZES, SOFTMAXES, adaptiveTargets, type AdaptiveReport, type AdaptiveRun } from '../../bench/harness/adaptive';
import { renderAdaptive } from '../../bench/render';

const root = join(__dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'rnnlm-bench-adaptive-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The quick run's report, made once by the first test. */
let report: AdaptiveReport | undefined;
/** Seconds the quick run may take: a smoke run of four small configurations (about 20 s on a busy 2-core machine). */
const QUICK_BOUND = 90;

const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;
const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));

test('bench:adaptive --quick: every (V, softmax) measured in its own process, figures finite and consistent, ratios from them', () => {
  const json = join(dir, 'quick.json');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'adaptive.ts'), '--quick', '--json', json], {
    cwd: root, encoding: 'utf8', timeout: 2 * QUICK_BOUND * 1000,
  });
  const seconds = (Date.now() - t0) / 1000;
  expect({ status: r.status, signal: r.signal }, r.stderr).toEqual({ status: 0, signal: null });
  expect(seconds).toBeLessThan(QUICK_BOUND);
  const rep = (report = JSON.parse(readFileSync(json, 'utf8')) as AdaptiveReport);
  expect(rep).toMatchObject({ kind: 'rnnlm-adaptive-bench', options: { quick: true, device: 'cpu' }, model: { divValue: 4, headBias: false } });
  expect(rep.partial).toBeUndefined();
  expect(rep.commit?.hash).toMatch(/^[0-9a-f]{40}$/);
  for (const k of ['cpu', 'node'] as const) expect(rep.machine[k]).toBeTruthy();
  expect(rep.machine.cores).toBeGreaterThan(0);

  // The plan, in order: full then adaptive for each size, the adaptive run with its cutoffs.
  const plan = QUICK_ADAPTIVE_SIZES.flatMap((s) => SOFTMAXES.map((softmax) => ({ vocabSize: s.vocabSize, softmax, cutoffs: softmax === 'adaptive' ? s.cutoffs : undefined })));
  expect(rep.runs.map((x) => ({ vocabSize: x.vocabSize, softmax: x.softmax, cutoffs: x.cutoffs }))).toEqual(plan);
  const o = rep.options, tokensPerStep = ADAPTIVE_MODEL.batchSize * ADAPTIVE_MODEL.seqLength;
  for (const run of rep.runs) {
    const at = `V ${run.vocabSize} ${run.softmax}`;
    expect(run.status, `${at}: ${run.reason}`).toBe('ok');
    const g = run.generate!, t = run.train!, m = run.memory!;
    for (const x of [run.parameters, run.seconds, g.calls, g.tokens, g.seconds, g.tokensPerSecond, t.warmupSteps, t.warmupSeconds, t.firstLoss, t.steps,
      t.seconds, t.tokensPerSecond, t.tokens, t.fitTokensPerSecond, t.loss, m.afterGenerate.backendMiB, m.afterGenerate.rssMiB, m.end!.backendMiB, m.end!.rssMiB]) {
      expect(positive(x), `${at}: ${x}`).toBe(true);
    }
    // Every call drew what it was asked for, and fit trained exactly the timed windows.
    expect(g.tokens, at).toBe(g.calls * o.generateTokens);
    expect(close(g.tokensPerSecond, g.tokens / g.seconds), at).toBe(true);
    expect(t.steps, at).toBeGreaterThanOrEqual(o.minSteps);
    expect(t.steps, at).toBeLessThanOrEqual(o.maxSteps);
    expect(t.tokens, at).toBe(t.steps * tokensPerStep);
    expect(close(t.tokensPerSecond, (t.steps * tokensPerStep) / t.seconds), at).toBe(true);
    // Peaks only rise, and a fresh model's first loss is no more than twice ln V (a uniform guess is ln V).
    expect(m.end!.backendMiB, at).toBeGreaterThanOrEqual(m.afterGenerate.backendMiB);
    expect(m.end!.rssMiB, at).toBeGreaterThanOrEqual(m.afterGenerate.rssMiB);
    expect(t.firstLoss, at).toBeLessThan(2 * Math.log(run.vocabSize));
  }

  // Adaptive ÷ full, from the runs' own figures.
  expect(rep.pairs.map((p) => p.vocabSize)).toEqual(QUICK_ADAPTIVE_SIZES.map((s) => s.vocabSize));
  for (const p of rep.pairs) {
    const of = (s: string) => rep.runs.find((x) => x.vocabSize === p.vocabSize && x.softmax === s)!;
    const f = of('full'), a = of('adaptive');
    expect(p.cutoffs).toEqual(a.cutoffs);
    expect(p.ratios).toEqual({
      train: a.train!.tokensPerSecond / f.train!.tokensPerSecond,
      generate: a.generate!.tokensPerSecond / f.generate!.tokensPerSecond,
      backendPeak: a.memory!.end!.backendMiB / f.memory!.end!.backendMiB,
      rssPeak: a.memory!.end!.rssMiB / f.memory!.end!.rssMiB,
    });
  }
  // The targets are computed from the data and written with it (a quick run judges none).
  expect(rep.targets).toEqual(adaptiveTargets(rep));
  expect(rep.targets!.length).toBeGreaterThan(0);
  expect(rep.targets!.every((x) => x.held === null)).toBe(true);
  // Progress on stderr: a line per run as it finishes.
  for (const run of rep.runs) expect(r.stderr).toMatch(new RegExp(`^V ${run.vocabSize.toLocaleString('en-US')} ${run.softmax}\\s*; train [\\d,]+ tokens/s .*; ok$`, 'm'));
}, 2 * QUICK_BOUND * 1000);

/** The numbers of a rendered row's cells (thousands separators and × dropped; '—' as NaN). */
const numbers = (cells: string[]) => cells.map((c) => Number(c.replace(/[,×]/g, '').trim()));
/** A figure as rendered (at most 2 decimals below 10, 1 below 100, none above) matches the report's. */
const rendered = (shown: number, x: number | undefined) => x !== undefined && Math.abs(shown - x) <= (x < 10 ? 0.005 : x < 100 ? 0.05 : 0.5) + 1e-9;

test("bench:render: the README's adaptive subsection is the report's table, one row per vocabulary size", () => {
  const rep = report;
  expect(rep, 'the quick run above made no report').toBeDefined();
  const markers = '<!-- bench:adaptive:begin (npm run bench:render) -->\nold\n<!-- bench:adaptive:end -->';
  const text = renderAdaptive(`before\n${markers}\nafter\n`, [{ file: 'adaptive-test.json', report: rep! }]);
  expect(text.startsWith('before\n<!-- bench:adaptive:begin')).toBe(true);
  expect(text.endsWith('<!-- bench:adaptive:end -->\nafter\n')).toBe(true);
  expect(text).not.toContain('\nold\n');
  expect(text).toContain('`bench/results/adaptive-test.json`');

  const rows = text.split('\n').filter((l) => /^\| [\d,]+ \|/.test(l)).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
  expect(rows.length).toBe(rep!.pairs.length);
  for (const [i, p] of rep!.pairs.entries()) {
    const of = (s: string) => rep!.runs.find((x) => x.vocabSize === p.vocabSize && x.softmax === s) as AdaptiveRun;
    const f = of('full'), a = of('adaptive');
    const [V, cutoffs, ...cells] = rows[i];
    expect(Number(V.replace(/,/g, ''))).toBe(p.vocabSize);
    expect(cutoffs.split(', ').map((c) => Number(c.replace(/,/g, '')))).toEqual(p.cutoffs);
    const steps = cells.pop()!;
    expect(steps).toBe(`${f.train!.steps} / ${a.train!.steps}`);
    const expected = [
      f.train!.tokensPerSecond, a.train!.tokensPerSecond, p.ratios.train, f.generate!.tokensPerSecond, a.generate!.tokensPerSecond, p.ratios.generate,
      f.memory!.end!.backendMiB, a.memory!.end!.backendMiB, f.memory!.end!.rssMiB, a.memory!.end!.rssMiB,
    ];
    const shown = numbers(cells);
    expect(shown.length).toBe(expected.length);
    shown.forEach((s, j) => expect(rendered(s, expected[j]), `V ${p.vocabSize}, column ${j + 3}: ${cells[j]} for ${expected[j]}`).toBe(true));
  }
  // Every target is listed with its verdict.
  for (const t of rep!.targets!) expect(text).toContain(`- ${t.what}: ${t.figure} — figure only`);

  // No report: a line saying how to make one; no markers: an error, not a README without its table.
  expect(renderAdaptive(markers, [])).toMatch(/^<!-- bench:adaptive:begin[^\n]*\n_No report yet: `npm run bench:adaptive`/);
  expect(() => renderAdaptive('no markers', [])).toThrow(/bench:adaptive:begin/);
});
