// The rnnlm command line, run as a user would (a child process): each command works, and
// each failure prints one line and exits non-zero.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { DEFAULTS } from '../../lib/defaults';
import { readSafetensorsFile } from '../../lib/io/safetensors';
import { LanguageModel, parseCreateOptions } from '../../lib/model';
import { sidecarPath } from '../../lib/train';

const root = join(__dirname, '..', '..');
const cli = join(root, 'lib', 'cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'rnnlm-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rnnlm(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
/** stderr's one line (a failure prints exactly one). */
function oneLine(err: string): string {
  const lines = err.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0];
}

const corpus = Array.from({ length: 400 }, (_, i) => `the ${['cat', 'dog', 'bird'][i % 3]} ${['sees', 'likes'][i % 2]} the ball .`).join('\n');
const trainFile = join(dir, 'train.txt');
writeFileSync(trainFile, corpus);
/** A model that trains in a blink. */
const tiny = ['--hidden-size', '16', '--embedding-size', '16', '--layers', '1', '--batch-size', '8', '--seq-length', '10', '--device', 'cpu', '--no-progress'];

test('a CPU backend that cannot load: one line naming the cause and how to compile it', () => {
  // train builds a model on the CPU (summary no longer needs a backend).
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'train', '--train', trainFile, '--out', join(dir, 'never.safetensors'), '--device', 'cpu'], {
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

test('train -> eval -> predict -> generate -> summary of a checkpoint', () => {
  const model = join(dir, 'lm.safetensors');
  const t = rnnlm('train', '--train', trainFile, '--out', model, '--epochs', '2', '--hidden-size', '16', '--embedding-size', '16',
    '--layers', '1', '--batch-size', '8', '--seq-length', '10', '--lr', '0.01', '--device', 'cpu', '--no-progress', '--sample', '5');
  expect(t.err + t.out).toMatch(/epoch 2: loss/);
  expect(t.out).toMatch(/sample: /);
  expect(t.code).toBe(0);
  const e = rnnlm('eval', model, '--text', trainFile);
  expect(e.code).toBe(0);
  const r = JSON.parse(e.out);
  expect(r.perplexity).toBeGreaterThan(1);
  expect(r.perplexity).toBeLessThan(6);
  const p = rnnlm('predict', model, '--context', 'the cat', '--top-k', '3');
  expect(p.code).toBe(0);
  expect(p.out.trim().split('\n')).toHaveLength(3);
  expect(p.out).toMatch(/"(sees|likes)"/);
  // --precision: the same predictions where it falls back (no GPU: device auto computes in fp32 and says so);
  // refused on the CPU explicitly.
  const pt = rnnlm('predict', model, '--context', 'the cat', '--top-k', '3', '--precision', 'tf32');
  if (!/GPU answered/.test(pt.err)) {
    expect([pt.code, pt.out]).toEqual([0, p.out]);
    expect(oneLine(pt.err)).toBe("rnnlm: precision 'tf32' fell back to 'fp32' (the cpu backend computes in 'fp32')");
  }
  const pc = rnnlm('predict', model, '--context', 'the cat', '--precision', 'bf16', '--device', 'cpu');
  expect(pc.code).not.toBe(0);
  expect(oneLine(pc.err)).toMatch(/precision 'bf16' is not available: the cpu backend computes in 'fp32'/);
  // --json: the same predictions, as one JSON array of the API's { token, id, probability }.
  const pj = rnnlm('predict', model, '--context', 'the cat', '--top-k', '3', '--json');
  expect(pj.code).toBe(0);
  const predictions = JSON.parse(pj.out) as { token: string; id: number; probability: number }[];
  expect(predictions.map((x) => `${x.probability.toFixed(4)}  ${JSON.stringify(x.token)}`)).toEqual(p.out.trim().split('\n'));
  for (const x of predictions) expect(Number.isInteger(x.id)).toBe(true);
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

test('--version prints the version of package.json', () => {
  const r = rnnlm('--version');
  expect(r.code).toBe(0);
  expect(r.out.trim()).toBe((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version);
});

/** Each flag of a command's --help and the description it shows, its wrapped lines joined. */
function helpOf(cmd: string): Map<string, string> {
  const r = rnnlm(cmd, '--help');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/Options:/);
  const flags = new Map<string, string>();
  let last: string | undefined;
  for (const line of r.out.split('\n')) {
    const flag = /^ {2}(?:-\w, )?(--[\w-]+)/.exec(line)?.[1];
    if (flag) flags.set((last = flag), line.trim());
    else if (last && /^ {3,}\S/.test(line)) flags.set(last, `${flags.get(last)} ${line.trim()}`);
    else last = undefined;
  }
  return flags;
}

/** The default a help description shows: one value, or one per kind ("0.001 for adam/adamw, 1 for sgd"). */
function shownDefault(description: string): unknown {
  const text = /(?:\(|, )default: ([^)]*)\)/.exec(description)?.[1];
  if (text === undefined || !text.includes(' for ')) return text === undefined ? undefined : JSON.parse(text);
  return Object.fromEntries(text.split(', ').flatMap((part) => {
    const [value, kinds] = part.split(' for ');
    return kinds.split('/').map((kind) => [kind, JSON.parse(value)]);
  }));
}

test("every default that --help shows is the API's, from its one table (lib/defaults.ts)", () => {
  const D = DEFAULTS, O = D.optimizer, S = D.lrSchedule;
  const model = {
    '--cell': D.create.cell, '--embedding-size': D.create.embeddingSize, '--hidden-size': D.create.hiddenSize, '--layers': D.create.layers,
    '--dropout': D.create.dropout, '--tie-weights': D.create.tieWeights,
    '--div-value': D.adaptiveSoftmax.divValue, '--head-bias': D.adaptiveSoftmax.headBias,
  };
  // A default per kind is shown once when all kinds agree.
  const one = (byKind: Record<string, unknown>) => (new Set(Object.values(byKind).map((v) => JSON.stringify(v))).size === 1 ? Object.values(byKind)[0] : byKind);
  const expected: Record<string, Record<string, unknown>> = {
    train: {
      ...model, '--seed': D.create.seed, '--device': D.create.device, '--precision': D.create.precision,
      '--lowercase': D.wordTokenizer.lowercase, '--min-freq': one({ word: D.wordTokenizer.minFreq, char: D.charTokenizer.minFreq }),
      '--epochs': D.fit.epochs, '--batch-size': D.fit.batchSize, '--seq-length': D.fit.seqLength, '--shuffle': D.fit.shuffle, '--bucketing': D.fit.bucketing,
      '--optimizer': D.fit.optimizer, '--lr': one({ adam: O.adam.lr, adamw: O.adamw.lr, sgd: O.sgd.lr }),
      '--beta1': one({ adam: O.adam.beta1, adamw: O.adamw.beta1 }), '--beta2': one({ adam: O.adam.beta2, adamw: O.adamw.beta2 }), '--eps': one({ adam: O.adam.eps, adamw: O.adamw.eps }),
      '--momentum': O.sgd.momentum, '--dampening': O.sgd.dampening, '--nesterov': O.sgd.nesterov,
      '--weight-decay': one({ adam: O.adam.weightDecay, adamw: O.adamw.weightDecay, sgd: O.sgd.weightDecay }),
      '--lr-factor': one({ step: S.step.factor, plateau: S.plateau.factor }), '--lr-start': S.step.start, '--lr-every': S.step.every,
      '--lr-patience': S.plateau.patience, '--lr-threshold': S.plateau.threshold,
      '--average-window': D.fit.averageWindow,
      '--non-finite': D.fit.nonFinite, '--checkpoint-every': D.checkpoint.every, '--keep-training-state': D.checkpoint.keepTrainingState, '--progress': D.fit.progress,
    },
    eval: { '--batch-size': D.evaluate.batchSize, '--seq-length': D.evaluate.seqLength, '--device': D.load.device, '--precision': D.load.precision },
    generate: {
      '--max-tokens': D.generate.maxTokens, '--temperature': D.generate.temperature, '--top-k': D.generate.topK, '--top-p': D.generate.topP,
      '--stop-at-eos': D.generate.stopAtEos, '--device': D.load.device, '--precision': D.load.precision,
    },
    predict: { '--top-k': D.predictNext.topK, '--device': D.load.device, '--precision': D.load.precision },
    summary: model,
  };
  // The CLI's own defaults, of flags that are no API option.
  const cliOwn = new Set(['--valid-split', '--out', '--tokenizer', '--mode', '--sample']);
  for (const [cmd, defaults] of Object.entries(expected)) {
    const shown = Object.fromEntries([...helpOf(cmd)].filter(([flag]) => !cliOwn.has(flag)).map(([flag, d]) => [flag, shownDefault(d)]).filter(([, v]) => v !== undefined));
    expect({ cmd, shown }).toEqual({ cmd, shown: defaults });
  }
  // And the API applies them (create's, observable without training).
  const { cfg, device, runtime } = parseCreateOptions({ vocabSize: 10 });
  const { batching, maxBatchSize, precision, ...modelDefaults } = D.create;
  expect({ ...cfg, device }).toMatchObject(modelDefaults);
  expect(runtime).toEqual({ maxRows: batching ? maxBatchSize : 1, precision });
});

test('bench --json rewrites the report after every run, so a bench that is killed keeps what it measured', async () => {
  const json = join(dir, 'bench.json');
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'bench', '--quick', '--peers', 'rnnlm-cpu,tfjs-cpu', '--json', json], { cwd: root });
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
  const r = rnnlm('bench', '--quick', '--peers', 'rnnlm-cpu', '--no-concurrency', '--with', withFile, '--json', json);
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

// ---- train: where it saves, signals, --resume, what it reads ----------------------------------

test('train --out in a missing, unwritable or impossible place fails at once, with one line, before any training', () => {
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  const cases: [string, RegExp][] = [
    [join(dir, 'missing', 'm.safetensors'), /--out .*m\.safetensors: the directory .*missing does not exist/],
    [join(file, 'm.safetensors'), /--out .*m\.safetensors: .*a-file is not a directory/],
    [dir, /--out .*: is a directory; give a file path/],
  ];
  if (process.getuid?.() !== 0) {
    // (root writes anywhere: this case only means something for other users)
    const ro = join(dir, 'read-only');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    cases.push([join(ro, 'm.safetensors'), /--out .*: the directory .*read-only is not writable/]);
  }
  for (const [out, message] of cases) {
    const r = rnnlm('train', '--train', trainFile, '--out', out, ...tiny, '--epochs', '3');
    expect(r.code).toBe(1);
    expect(r.out).toBe(''); // no epoch was trained
    expect(oneLine(r.err)).toMatch(/^rnnlm: ERR_INVALID_ARGUMENT: /);
    expect(r.err).toMatch(message);
  }
});

test('SIGTERM (like SIGINT) during training saves the training in progress, and the process then ends by that signal', async () => {
  const text = join(dir, 'long.txt');
  writeFileSync(text, Array.from({ length: 8 }, () => corpus).join('\n')); // epochs of ~200 steps
  const runs = [...Array<NodeJS.Signals>(20).fill('SIGTERM'), 'SIGINT', 'SIGINT'] as NodeJS.Signals[];
  let midEpoch = 0;
  for (const [i, sig] of runs.entries()) {
    const out = join(dir, `signal-${i}.safetensors`);
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'train', '--train', text, '--out', out, ...tiny, '--epochs', '100000'], { cwd: root });
    let err = '';
    child.stdout.resume();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    // Training starts right after this line; the signal comes at a different point of it in each run.
    await new Promise<void>((resolve) => child.stderr.on('data', (d: Buffer) => (err += d.toString()) && /^rnnlm: cpu/m.test(err) && resolve()));
    await new Promise((r) => setTimeout(r, 20 + ((i * 97) % 400)));
    const t0 = performance.now();
    child.kill(sig);
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const status = await exited;
    clearTimeout(watchdog);
    const seconds = (performance.now() - t0) / 1000;
    expect({ run: i, ...status }).toEqual({ run: i, code: null, signal: sig });
    expect(seconds).toBeLessThan(5);
    expect(err).toContain(`rnnlm: ${sig}: stopped; the training so far is saved in ${out} (continue with --resume)`);
    const model = await LanguageModel.load(out, { device: 'cpu' });
    model.dispose();
    const state = JSON.parse((await readSafetensorsFile(sidecarPath(out))).metadata.state) as { step: number; batch: number };
    expect(String(state.step)).toBe((await readSafetensorsFile(out)).metadata.trainStep);
    if (state.batch > 0) midEpoch++;
  }
  // Before, only finished epochs were ever saved (batch 0 of the next one).
  expect(midEpoch).toBeGreaterThan(0);
}, 240_000);

test('train --resume takes the model, tokenizer and training flags from the checkpoint, names a flag that disagrees, and says which learning rate it uses', async () => {
  const out = join(dir, 'resume.safetensors');
  const first = rnnlm('train', '--train', trainFile, '--out', out, '--tokenizer', 'char', '--cell', 'gru', ...tiny, '--lr', '0.01', '--lr-schedule', 'step', '--epochs', '1', '--train-seed', '5', '--keep-training-state');
  expect(first.code).toBe(0);
  const resume = (...args: string[]) => rnnlm('train', '--train', trainFile, '--out', out, '--resume', '--device', 'cpu', '--no-progress', '--epochs', '2', '--keep-training-state', ...args);
  for (const [args, message] of [
    [['--hidden-size', '32'], /--resume: --hidden-size 32 disagrees with the checkpoint's hiddenSize 16; leave it out/],
    [['--cell', 'lstm'], /--resume: --cell lstm disagrees with the checkpoint's cell gru; leave it out/],
    [['--tokenizer', 'word'], /--resume: --tokenizer word disagrees with the checkpoint's tokenizer char; leave it out/],
    [['--batch-size', '4'], /--resume: --batch-size 4 disagrees with the checkpoint's batchSize 8; leave it out/],
    [['--train-seed', '6'], /--resume: --train-seed 6 disagrees with the checkpoint's seed 5; leave it out/],
    [['--no-unk'], /--resume: --no-unk disagrees with the checkpoint's tokenizer, which has <unk>; leave it out/],
    [['--min-freq', '150'], /--resume: --min-freq gives a vocabulary of \d+ tokens on this text, the checkpoint's has \d+ \(a different one\); leave it out/],
  ] as [string[], RegExp][]) {
    const r = resume(...args);
    expect(r.code).toBe(1);
    expect(oneLine(r.err)).toMatch(/^rnnlm: ERR_INVALID_ARGUMENT: /);
    expect(r.err).toMatch(message);
  }
  // No model, tokenizer, batch or seed flag: all from the checkpoint. A different --lr is not taken
  // silently: one line says the checkpoint's rate is used (0.01 halved by the step schedule after epoch 1).
  const r = resume('--lr', '0.5', '--lr-schedule', 'step');
  expect(r.code).toBe(0);
  expect(r.out).not.toMatch(/epoch 1:/);
  expect(r.out).toMatch(/epoch 2:/);
  const rate = r.err.split('\n').filter((l) => /learning rate/.test(l));
  expect(rate).toHaveLength(1);
  expect(rate[0].replace(/step \d+/, 'step N')).toBe(`rnnlm: resuming ${out} at epoch 2, step N: learning rate 0.005 (the checkpoint's; --lr 0.5 is not used)`);
  // The epoch count is not in the checkpoint: a resume that trains no new epoch says so.
  const done = resume('--epochs', '1');
  expect(done.code).toBe(0);
  expect(done.err).toContain(`rnnlm: nothing to train: ${out} has finished 2 epochs; give a larger --epochs to train more`);
  expect(done.out).not.toMatch(/saved/);
  // Without --keep-training-state a finished run leaves the model only: --resume then says why it cannot.
  const plain = join(dir, 'plain.safetensors');
  expect(rnnlm('train', '--train', trainFile, '--out', plain, '--tokenizer', 'char', ...tiny, '--epochs', '1').code).toBe(0);
  const again = rnnlm('train', '--train', trainFile, '--out', plain, '--resume', '--device', 'cpu', '--no-progress', '--epochs', '2');
  expect(again.code).toBe(1);
  expect(oneLine(again.err)).toMatch(/^rnnlm: ERR_CHECKPOINT: .*has no training state beside it/);
  const m = await LanguageModel.load(out, { device: 'cpu' });
  try {
    expect(m.config).toMatchObject({ cell: 'gru', hiddenSize: 16, embeddingSize: 16, layers: 1 });
    expect(m.tokenizer?.kind).toBe('char');
  } finally {
    m.dispose();
  }
}, 60_000);

test('every training flag reaches create and fit: --dry-run prints the options it would pass, and a run with the same flags trains with them', async () => {
  const adam = ['--cell', 'gru', '--embedding-size', '8', '--hidden-size', '8', '--layers', '1', '--dropout', '0.1', '--tie-weights', '--seed', '3',
    '--lowercase', '--min-freq', '2', '--max-vocab', '10', '--epochs', '3', '--batch-size', '4', '--seq-length', '5', '--train-seed', '9',
    '--optimizer', 'adamw', '--lr', '0.002', '--beta1', '0.8', '--beta2', '0.99', '--eps', '1e-6', '--weight-decay', '0.05',
    '--lr-schedule', 'step', '--lr-factor', '0.7', '--lr-start', '2', '--lr-every', '3', '--clip-norm', '1', '--clip-value', '0.5',
    '--non-finite', 'skip', '--checkpoint-every', '7', '--keep-training-state', '--no-progress', '--device', 'cpu',
    '--dropout-output', '0.2', '--dropout-embedding', '0.05', '--locked-dropout', '--weight-drop', '0.3', '--ar', '2', '--tar', '1',
    '--average', 'nonmonotone', '--average-window', '3', '--variable-length', '--loss-scale', '1024'];
  const sgd = ['--tokenizer', 'char', '--no-unk', '--mode', 'sentences', '--no-shuffle', '--bucketing', '--hidden-size', '8', '--embedding-size', '8',
    '--layers', '1', '--adaptive-softmax', '4,9', '--div-value', '2', '--head-bias', '--epochs', '2', '--batch-size', '16', '--optimizer', 'sgd', '--momentum', '0.5', '--dampening', '0.1', '--nesterov',
    '--lr-schedule', 'plateau', '--lr-factor', '0.3', '--lr-patience', '2', '--lr-threshold', '0.01', '--keep-training-state', '--progress', '--device', 'cpu', '--loss-scale', 'off'];
  const dry = (out: string, flags: string[]) => {
    const r = rnnlm('train', '--train', trainFile, '--out', out, ...flags, '--dry-run');
    expect(r.code).toBe(0);
    expect(r.err).toContain('nothing was trained or written');
    return JSON.parse(r.out);
  };
  const outA = join(dir, 'flags-adam.safetensors'), outB = join(dir, 'flags-sgd.safetensors');
  expect(dry(outA, adam)).toEqual({
    model: {
      cell: 'gru', vocabSize: 10, embeddingSize: 8, hiddenSize: 8, layers: 1, dropout: 0.1, tieWeights: true, softmax: { type: 'full' }, seed: 3,
      dropoutOutput: 0.2, dropoutEmbedding: 0.05, lockedDropout: true, weightDrop: 0.3,
    },
    device: 'cpu',
    tokenizer: { kind: 'word', vocabSize: 10, unk: true },
    fit: {
      mode: 'stream', epochs: 3, batchSize: 4, seqLength: 5, variableLength: true, seed: 9, validation: true, resume: undefined,
      optimizer: { type: 'adamw', lr: 0.002, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.05 },
      lrSchedule: { type: 'step', factor: 0.7, start: 2, every: 3 },
      clipNorm: 1, clipValue: 0.5, ar: 2, tar: 1, average: { trigger: 'nonmonotone', window: 3 }, nonFinite: 'skip', lossScale: { initial: 1024 }, progress: false, checkpoint: { path: outA, every: 7, keepTrainingState: true },
    },
  });
  expect(dry(outB, sgd)).toMatchObject({
    model: { softmax: { type: 'adaptive', cutoffs: [4, 9], divValue: 2, headBias: true } },
    tokenizer: { kind: 'char', unk: false },
    fit: {
      mode: 'sentences', shuffle: false, bucketing: true, progress: true, lossScale: false,
      optimizer: { type: 'sgd', momentum: 0.5, dampening: 0.1, nesterov: true },
      lrSchedule: { type: 'plateau', factor: 0.3, patience: 2, threshold: 0.01 },
    },
  });
  expect(existsSync(outA) || existsSync(outB)).toBe(false);
  // The same flags train: fit takes the objects (it refuses unknown keys), and what the run
  // recorded shows them applied: the seed and batching, and the step schedule's rate per epoch.
  for (const [out, flags] of [[outA, adam], [outB, sgd]] as const) {
    const r = rnnlm('train', '--train', trainFile, '--out', out, ...flags);
    expect(r.err).not.toMatch(/ERR_/);
    expect(r.code).toBe(0);
  }
  const state = async (out: string) => JSON.parse((await readSafetensorsFile(sidecarPath(out))).metadata.state) as { fingerprint: string; history: { lr: number }[] };
  const a = await state(outA);
  expect(JSON.parse(a.fingerprint)).toMatchObject({ mode: 'stream', batchSize: 4, seqLength: 5, seed: 9, optimizer: 'adamw' });
  expect(a.history.map((h) => h.lr)).toEqual([0.002, 0.002, 0.002 * 0.7]);
  expect(JSON.parse((await state(outB)).fingerprint)).toMatchObject({ mode: 'sentences', batchSize: 16, seed: 1, optimizer: 'sgd' });
  const awd = await LanguageModel.load(outA, { device: 'cpu' });
  expect(awd.config).toMatchObject({ dropoutOutput: 0.2, dropoutEmbedding: 0.05, lockedDropout: true, weightDrop: 0.3 }); // the checkpoint keeps them
  awd.dispose();
  const m = await LanguageModel.load(outB, { device: 'cpu' });
  try {
    expect(m.tokenizer?.hasUnk).toBe(false);
    expect(m.config.softmax).toEqual({ type: 'adaptive', cutoffs: [4, 9], divValue: 2, headBias: true });
  } finally {
    m.dispose();
  }
}, 60_000);

test.each([
  [['--optimizer', 'sgd', '--beta1', '0.8'], '--beta1 is for --optimizer adam or adamw, not sgd'],
  [['--momentum', '0.9'], '--momentum is for --optimizer sgd, not adam'],
  [['--lr-factor', '0.5'], '--lr-factor is for --lr-schedule step or plateau'],
  [['--lr-schedule', 'plateau', '--lr-every', '2'], '--lr-every is for --lr-schedule step'],
  [['--no-unk'], '--no-unk is for --tokenizer char'],
  [['--div-value', '2'], '--div-value is for --adaptive-softmax'],
  [['--average-start', '2'], '--average-start is for --average epoch'],
  [['--adaptive-softmax', '3,2'], 'LanguageModel.create: softmax.cutoffs must be strictly increasing (cutoffs[1] = 2 after 3)'],
])('train %j: a flag of another optimizer, schedule or tokenizer is refused, not dropped', (flags, message) => {
  const r = rnnlm('train', '--train', trainFile, '--out', join(dir, 'refused.safetensors'), ...flags, '--dry-run');
  expect(r.code).toBe(1);
  expect(r.out).toBe('');
  expect(oneLine(r.err)).toContain(`rnnlm: ERR_INVALID_ARGUMENT: ${message}`);
});

test('a text that is not UTF-8 is refused with the count of its bad bytes; --lossy-utf8 reads it with a warning', () => {
  // 'café' in Latin-1: each é is one byte (0xE9) that starts no valid UTF-8 sequence.
  const text = corpus.replace(/cat/g, 'caf\u00e9');
  const bad = (text.match(/\u00e9/g) ?? []).length;
  const latin1 = join(dir, 'latin1.txt');
  writeFileSync(latin1, Buffer.from(text, 'latin1'));
  const first = Buffer.from(text, 'latin1').indexOf(0xe9);
  const r = rnnlm('train', '--train', latin1, '--out', join(dir, 'latin1.safetensors'), ...tiny);
  expect(r.code).toBe(1);
  expect(r.out).toBe('');
  expect(oneLine(r.err)).toBe(
    `rnnlm: ERR_INVALID_ARGUMENT: ${latin1} is not UTF-8 text: ${bad} bytes are not valid UTF-8 (the first at byte ${first}); convert it (e.g. iconv -f latin1 -t utf-8) or pass --lossy-utf8 to read them as U+FFFD`,
  );
  const lossy = rnnlm('train', '--train', latin1, '--out', join(dir, 'latin1.safetensors'), ...tiny, '--lossy-utf8');
  expect(lossy.code).toBe(0);
  expect(lossy.err).toContain(`rnnlm: warning: ${latin1}: ${bad} bytes are not valid UTF-8 (the first at byte ${first}); read as U+FFFD (--lossy-utf8)`);
  // eval reads its text the same way.
  const e = rnnlm('eval', join(dir, 'latin1.safetensors'), '--text', latin1, '--device', 'cpu');
  expect(e.code).toBe(1);
  expect(oneLine(e.err)).toMatch(/is not UTF-8 text: \d+ bytes are not valid UTF-8/);
  expect(rnnlm('eval', join(dir, 'latin1.safetensors'), '--text', latin1, '--device', 'cpu', '--lossy-utf8').code).toBe(0);
}, 60_000);

test.each([['1.5'], ['-1'], ['1'], ['NaN']])('train --valid-split %s is refused', (split) => {
  const r = rnnlm('train', '--train', trainFile, '--out', join(dir, 'split.safetensors'), ...tiny, '--valid-split', split);
  expect(r.code).not.toBe(0);
  expect(r.out).toBe('');
  expect(r.err).toMatch(/--valid-split must be a number in \[0, 1\)/);
});

test('train --max-vocab 0 is refused as the API refuses maxVocab 0', () => {
  const r = rnnlm('train', '--train', trainFile, '--out', join(dir, 'vocab.safetensors'), ...tiny, '--max-vocab', '0');
  expect(r.code).toBe(1);
  expect(r.out).toBe('');
  expect(oneLine(r.err)).toMatch(/^rnnlm: ERR_INVALID_ARGUMENT: WordTokenizer\.fit: maxVocab must be an integer >= 5 \(got 0\)/);
});

// ---- generate, summary --------------------------------------------------------------------------

test('generate without --prompt: a stream model asks for one in one line; a sentence model starts a sentence', () => {
  const stream = join(dir, 'stream.safetensors'), sentences = join(dir, 'sentences.safetensors');
  expect(rnnlm('train', '--train', trainFile, '--out', stream, ...tiny).code).toBe(0);
  expect(rnnlm('train', '--train', trainFile, '--out', sentences, ...tiny, '--mode', 'sentences').code).toBe(0);
  const s = rnnlm('generate', stream, '--max-tokens', '5', '--seed', '1');
  expect(s.code).toBe(1);
  expect(oneLine(s.err)).toMatch(/^rnnlm: ERR_INVALID_ARGUMENT: generate: .*stream mode.*pass --prompt/);
  const g = rnnlm('generate', sentences, '--max-tokens', '5', '--seed', '1');
  expect(g.code).toBe(0);
  expect(g.out.trim().length).toBeGreaterThan(0);
  expect(g.out).not.toMatch(/undefined/);
  // --no-stop-at-eos: the same draws go on through the sentence's end, up to --max-tokens.
  const one = rnnlm('generate', sentences, '--max-tokens', '40', '--seed', '2');
  const on = rnnlm('generate', sentences, '--max-tokens', '40', '--seed', '2', '--no-stop-at-eos');
  expect([one.code, on.code]).toEqual([0, 0]);
  expect(on.out.trim().startsWith(one.out.trim())).toBe(true);
  expect(on.out.trim().split(' ').length).toBeGreaterThan(one.out.trim().split(' ').length);
}, 60_000);

test('summary of a configuration too large to allocate prints its table, counted from the config', () => {
  const [V, E, H, L] = [1_000_000, 1024, 8192, 4];
  const r = rnnlm('summary', '--vocab-size', String(V), '--embedding-size', String(E), '--hidden-size', String(H), '--layers', String(L));
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  // PyTorch's count for an LSTM: 4H x (input + H) weights and two 4H biases per layer.
  let total = V * E + H * V + V;
  for (let l = 0; l < L; l++) total += 4 * H * ((l === 0 ? E : H) + H) + 8 * H;
  expect(r.out).toContain(`Total params: ${total.toLocaleString('en-US')}`);
  expect(r.out).toMatch(/rnn_l3 \(LSTM\)/);
});
