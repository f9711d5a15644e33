// The rnnlm command line, run as a user would (a child process): each command works, and
// each failure prints one line and exits non-zero.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';

const root = join(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'rnnlm-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rnnlm(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'lib', 'cli.ts'), ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('a CPU backend that cannot load: one line naming the cause and how to compile it', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'lib', 'cli.ts'), 'summary', '--vocab-size', '10'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, RNNLM_CPU_ADDON: join(dir, 'missing', 'rnnlm.node') },
  });
  expect(r.status).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^rnnlm: ERR_NATIVE: cannot load the rnnlm CPU backend \(Cannot find module .*missing\/rnnlm\.node'\)\. /);
  expect(lines[0]).toMatch(/npm rebuild rnnlm/);
});

const corpus = Array.from({ length: 400 }, (_, i) => `the ${['cat', 'dog', 'bird'][i % 3]} ${['sees', 'likes'][i % 2]} the ball .`).join('\n');

test('train -> eval -> predict -> generate -> summary of a checkpoint', () => {
  writeFileSync(join(dir, 'train.txt'), corpus);
  const model = join(dir, 'lm.safetensors');
  const t = rnnlm('train', '--train', join(dir, 'train.txt'), '--out', model, '--epochs', '2', '--hidden-size', '16', '--embedding-size', '16',
    '--layers', '1', '--batch-size', '8', '--seq-length', '10', '--lr', '0.01', '--device', 'cpu', '--no-progress', '--sample', '5');
  expect(t.err + t.out).toMatch(/epoch 2: loss/);
  expect(t.out).toMatch(/sample: /);
  expect(t.code).toBe(0);
  const e = rnnlm('eval', model, '--text', join(dir, 'train.txt'));
  expect(e.code).toBe(0);
  const r = JSON.parse(e.out);
  expect(r.perplexity).toBeGreaterThan(1);
  expect(r.perplexity).toBeLessThan(6);
  const p = rnnlm('predict', model, '--context', 'the cat', '--top-k', '3');
  expect(p.code).toBe(0);
  expect(p.out.trim().split('\n')).toHaveLength(3);
  expect(p.out).toMatch(/"(sees|likes)"/);
  const g = rnnlm('generate', model, '--prompt', 'the', '--max-tokens', '6', '--seed', '3');
  expect(g.code).toBe(0);
  expect(g.out.startsWith('the ')).toBe(true);
  const s = rnnlm('summary', model);
  expect(s.code).toBe(0);
  expect(s.out).toMatch(/Total params: /);
}, 60_000);

test.each([
  [['train'], /required option '--train <file>'/],
  [['train', '--train', '/nonexistent/missing.txt'], /^rnnlm: ERR_INVALID_ARGUMENT: cannot read \/nonexistent\/missing.txt/m],
  [['train', '--train', 'x', '--layers', 'two'], /--layers must be an integer/],
  [['train', '--train', 'x', '--cell', 'tcn'], /Allowed choices are lstm, gru, rnn_tanh, rnn_relu/],
  [['generate', '/nonexistent/missing.safetensors'], /^rnnlm: ERR_CHECKPOINT: /m],
  [['summary'], /^rnnlm: ERR_INVALID_ARGUMENT: missing --vocab-size/m],
  [['summary', '--vocab-size', '1'], /^rnnlm: ERR_INVALID_ARGUMENT: LanguageModel.create: vocabSize must be an integer >= 2/m],
  [['frobnicate'], /unknown command 'frobnicate'/],
])('%j fails with one line and a non-zero exit', (args, message) => {
  const r = rnnlm(...(args as string[]));
  expect(r.code).not.toBe(0);
  expect(r.err).toMatch(message as RegExp);
  expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
});

test('--help of each command lists its options', () => {
  for (const cmd of ['train', 'eval', 'generate', 'predict', 'summary']) {
    const r = rnnlm(cmd, '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Options:/);
  }
});

test('bench --json rewrites the report after every run, so a bench that is killed keeps what it measured', async () => {
  const json = join(dir, 'bench.json');
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'lib', 'cli.ts'), 'bench', '--quick', '--peers', 'rnnlm-cpu,tfjs-cpu', '--json', json], { cwd: root });
  let out = '';
  let seen: { partial?: boolean; runs: { peer: string; train?: { tokensPerSecond: number } }[] } | undefined;
  await new Promise((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!seen && /\nquick\s+rnnlm-cpu /.test(out)) {
        seen = JSON.parse(readFileSync(json, 'utf8'));
        child.kill('SIGKILL'); // before tfjs-cpu's run ends
      }
    });
    child.on('exit', resolve);
  });
  expect(seen?.partial).toBe(true);
  expect(seen?.runs.map((r) => r.peer)).toEqual(['rnnlm-cpu']);
  expect(seen?.runs[0].train?.tokensPerSecond).toBeGreaterThan(0);
  expect(JSON.parse(readFileSync(json, 'utf8'))).toEqual(seen);
}, 60_000);

test('bench --with fails a merged run whose first loss no fresh model gives, or that does not report one', () => {
  const peer = (name: string, train: Record<string, number>) => ({ peer: name, config: 'quick', status: 'ok', notes: [], train: { steps: 10, seconds: 1, tokensPerSecond: 1280, ...train } });
  const withFile = join(dir, 'with.json');
  writeFileSync(withFile, JSON.stringify({ runs: [
    peer('pytorch-cpu', { firstLoss: 6.95 }), peer('pytorch-eager', { firstLoss: 6.95 }), peer('denormal', { firstLoss: 1.3e-44 }), peer('summed', { firstLoss: 6.9 * 128 }), peer('silent', {}),
  ] }));
  const json = join(dir, 'with-bench.json');
  const r = rnnlm('bench', '--quick', '--peers', 'rnnlm-cpu', '--with', withFile, '--json', json);
  expect(r.err).toMatch(/a peer failed/);
  expect(r.code).not.toBe(0);
  const runs = (JSON.parse(readFileSync(json, 'utf8')) as { runs: { peer: string; status: string; reason?: string; train?: { firstLoss?: number; tokensPerSecond?: number } }[] }).runs;
  const by = Object.fromEntries(runs.map((x) => [x.peer, x]));
  expect(by['rnnlm-cpu'].status).toBe('ok');
  expect(Math.abs(by['rnnlm-cpu'].train!.firstLoss! - Math.log(996))).toBeLessThan(0.5);
  expect(by['pytorch-cpu'].status).toBe('ok');
  // A CPU peer is compared with ours on the CPU; a GPU peer with rnnlm-cuda, which did not run here.
  const row = (peer: string) => r.out.split('\n').map((l) => l.trim().split(/\s{2,}/)).find((cells) => cells[0] === 'quick' && cells[1] === peer)!;
  const ratio = by['rnnlm-cpu'].train!.tokensPerSecond! / 1280;
  expect(row('pytorch-cpu')).toContain(`${ratio.toFixed(ratio < 10 ? 1 : 0)}x`);
  expect(row('pytorch-eager').filter((c) => c.endsWith('x'))).toEqual([]);
  for (const bad of ['denormal', 'summed']) expect(by[bad]).toMatchObject({ status: 'error', reason: expect.stringMatching(/ln\(996\) = 6\.90/) });
  expect(by.silent).toMatchObject({ status: 'error', reason: expect.stringMatching(/no train\.firstLoss/) });
}, 60_000);
