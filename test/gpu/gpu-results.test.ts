// gpu/gpu-results.ts summarizes a GPU session's files against the GPU issues' targets; here on
// the committed H100 report and a copy of it with our training made slower.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import type { BenchReport } from '../../bench/harness/run';
import { summarize } from '../../gpu/gpu-results';

const results = join(__dirname, '..', '..', 'bench', 'results');
const report = JSON.parse(readFileSync(join(results, 'gpu-h100.json'), 'utf8')) as BenchReport;
const tps = (config: string, peer: string, what: 'train' | 'generate') =>
  report.runs.find((r) => r.config === config && r.peer === peer)![what]!.tokensPerSecond;

test('each ratio is ours over PyTorch eager from the report, judged against its target', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rnnlm-gpu-results-'));
  copyFileSync(join(results, 'gpu-h100.json'), join(dir, 'bench-gpu.json'));
  copyFileSync(join(results, 'gpu-check-h100.json'), join(dir, 'gpu-check.json'));
  const lines = summarize(dir);
  const line = (config: string) => lines.find((l) => l.trim().startsWith(`${config}:`))!;
  for (const config of ['zaremba-small', 'zaremba-medium', 'zaremba-large', 'keras-gru']) {
    const train = tps(config, 'rnnlm-cuda', 'train') / tps(config, 'pytorch-eager', 'train');
    const target = config.startsWith('zaremba-s') || config.startsWith('zaremba-m') ? 1.2 : 1;
    expect(line(config)).toContain(`train ${train.toFixed(2)}x eager (target ${target}: ${train >= target ? 'met' : 'MISSED'})`);
    const gen = tps(config, 'rnnlm-cuda', 'generate') / tps(config, 'pytorch-eager', 'generate');
    expect(line(config)).toContain(`generate ${gen.toFixed(2)}x eager (target 2: ${gen >= 2 ? 'met' : 'MISSED'})`);
  }
  expect(lines.find((l) => l.includes('parity:'))).toMatch(/12 cases, largest relative error 5\.5\de-7 .*: met/);
});

test('a ratio under its target is reported as missed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rnnlm-gpu-results-'));
  const slow = structuredClone(report);
  const ours = slow.runs.find((r) => r.config === 'zaremba-small' && r.peer === 'rnnlm-cuda')!;
  ours.train!.tokensPerSecond = tps('zaremba-small', 'pytorch-eager', 'train') * 1.1;
  writeFileSync(join(dir, 'bench-gpu.json'), JSON.stringify(slow));
  expect(summarize(dir).find((l) => l.includes('zaremba-small:'))).toContain('train 1.10x eager (target 1.2: MISSED)');
});
