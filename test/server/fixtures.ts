// Shared by the server tests: tiny checkpoints (a char model trained on a stream, a word model
// trained on sentences), `rnnlm serve` started as a child process on a loopback port, and
// clients of its answers (JSON, server-sent events, Prometheus text).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { LanguageModel } from '../../lib/model';
import { CharTokenizer, WordTokenizer } from '../../lib/tokenizers';

const root = join(__dirname, '..', '..');
const cli = join(root, 'lib', 'cli.ts');

const SUBJECTS = ['the cat', 'the dog', 'a bird', 'my friend'];
const VERBS = ['sees', 'likes', 'chases', 'finds'];
const OBJECTS = ['the ball', 'a tree', 'the cake', 'a door'];
/** Sentences of a toy grammar, some with punctuation inside (the word model's text must join it right). */
export const SENTENCES = Array.from({ length: 120 }, (_, i) =>
  `${SUBJECTS[i % 4]} ${VERBS[(i >> 2) % 4]} ${OBJECTS[(i >> 4) % 4]}${i % 3 === 0 ? ', then sleeps' : ''} .`);
/** The char model's text: its vocabulary is these characters only. */
export const CHAR_TEXT = SENTENCES.join(' ');

/** A directory removed when the test process exits. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rnnlm-server-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Saves a char model trained for one short epoch on CHAR_TEXT (stream mode); returns its path. */
export async function charModel(dir: string, name = 'char'): Promise<string> {
  const m = await LanguageModel.create({ tokenizer: CharTokenizer.fit(CHAR_TEXT), embeddingSize: 8, hiddenSize: 16, layers: 1, device: 'cpu', seed: 1 });
  await m.fit(CHAR_TEXT, { epochs: 1, batchSize: 8, seqLength: 16, progress: false, optimizer: { type: 'adam', lr: 0.01 } });
  const path = join(dir, `${name}.safetensors`);
  await m.save(path);
  m.dispose();
  return path;
}

/** Saves a word model trained for one short epoch on SENTENCES (sentences mode); returns its path. */
export async function wordModel(dir: string, name = 'word'): Promise<string> {
  const m = await LanguageModel.create({ tokenizer: WordTokenizer.fit(SENTENCES), embeddingSize: 8, hiddenSize: 16, layers: 1, device: 'cpu', seed: 2 });
  await m.fit(SENTENCES, { epochs: 1, batchSize: 16, progress: false, optimizer: { type: 'adam', lr: 0.01 } });
  const path = join(dir, `${name}.safetensors`);
  await m.save(path);
  m.dispose();
  return path;
}

/** A running `rnnlm serve`: its address, its output so far, and how it ended. */
export interface ServeProcess {
  child: ChildProcess;
  readonly base: string;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when the process has exited: its code, signal and ms since it was spawned. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** Resolves once the model is loaded (the `ready:` line). */
  ready: Promise<void>;
  /** Sends a signal and waits for the exit; it must be code 0 and no signal. */
  stop(signal?: NodeJS.Signals): Promise<{ ms: number }>;
}

/** Starts `rnnlm serve MODEL --port 0 ...args` and resolves when it listens (not yet loaded: await `ready`). */
export function serve(model: string, ...args: string[]): Promise<ServeProcess> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', model, '--port', '0', '--device', 'cpu', ...args], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '', stderr = '';
  child.stderr!.on('data', (d: Buffer) => void (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) =>
    // 'close': the process exited and its output is all read.
    child.once('close', (code, signal) => resolve({ code, signal, ms: performance.now() - t0 })));
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  const readyOrExit = Promise.race([ready, exited.then((e) => Promise.reject(new Error(`rnnlm serve exited (${e.code ?? e.signal}) before it was ready: ${stderr}`)))]);
  readyOrExit.catch(() => {}); // a failure to load is what some tests want: it rejects only for those who await it
  return new Promise<ServeProcess>((resolve, reject) => {
    let base = '', loaded = false;
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /^rnnlm serve: listening on (http:\/\/\S+)$/m.exec(stdout);
      if (m && !base) {
        base = m[1];
        resolve(served);
      }
      if (!loaded && /^rnnlm serve: ready: /m.test(stdout)) {
        loaded = true;
        onReady();
      }
    });
    void exited.then((e) => {
      if (!base) reject(new Error(`rnnlm serve exited (${e.code ?? e.signal}) before listening: ${stderr}`));
    });
    const served: ServeProcess = {
      child,
      get base() {
        return base;
      },
      get stdout() {
        return stdout;
      },
      get stderr() {
        return stderr;
      },
      exited,
      ready: readyOrExit,
      async stop(signal: NodeJS.Signals = 'SIGTERM') {
        const t = performance.now();
        child.kill(signal);
        const e = await exited;
        expect({ code: e.code, signal: e.signal }, stderr).toEqual({ code: 0, signal: null });
        return { ms: performance.now() - t };
      },
    };
  });
}

/** Kills a server still running (a failed test's), so that no child outlives the file. */
export function kill(s: ServeProcess | undefined): void {
  if (s && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
}

export interface Answer<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** POSTs `body` (JSON-encoded unless a string) and parses the JSON answer. */
export async function post<T = any>(base: string, path: string, body: unknown, init: RequestInit = {}): Promise<Answer<T>> {
  const r = await fetch(`${base}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body), ...init,
  });
  const text = await r.text();
  let parsed: T;
  try {
    parsed = JSON.parse(text) as T;
  } catch {
    throw new Error(`${path}: not JSON (${r.status}): ${text.slice(0, 200)}`);
  }
  return { status: r.status, headers: r.headers, body: parsed };
}

export async function get<T = any>(base: string, path: string): Promise<Answer<T>> {
  const r = await fetch(`${base}${path}`);
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: (r.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text };
}

/** A request of any method, content type (none if absent) and body bytes; its answer as text. */
export function rawRequest(base: string, method: string, path: string, body: string | Buffer | undefined, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders; text: string }>((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Checks an error answer: its status, code and param, and the shape every error has. */
export function expectError(a: Answer, status: number, code: string, param?: string | null): void {
  expect(a.status, JSON.stringify(a.body)).toBe(status);
  expect(Object.keys(a.body)).toEqual(['error']);
  const e = a.body.error;
  expect(Object.keys(e).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(e.code).toBe(code);
  expect(typeof e.message).toBe('string');
  expect(e.message.length).toBeGreaterThan(0);
  expect(typeof e.type).toBe('string');
  if (param !== undefined) {
    expect(e.param).toBe(param);
    // The message names the field too.
    if (param !== null && param !== 'body') expect(e.message).toContain(param);
  }
}

/** The events of a server-sent event stream (`data:` payloads; '[DONE]' kept as a string). */
export function events(sse: string): unknown[] {
  expect(sse.endsWith('\n\n'), sse.slice(-200)).toBe(true);
  return sse.slice(0, -2).split('\n\n').map((e) => {
    expect(e.startsWith('data: '), e).toBe(true);
    const data = e.slice('data: '.length);
    return data === '[DONE]' ? data : JSON.parse(data);
  });
}

/** POSTs a streaming request; resolves when its headers are in, with the raw response (node:http, for disconnects). */
export function streamRequest(base: string, path: string, body: unknown): Promise<{ status: number; res: import('node:http').IncomingMessage; destroy: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) =>
      resolve({ status: res.statusCode!, res, destroy: () => req.destroy() }));
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Reads a response until `until` holds for the text so far (or it ends); resolves with the text. */
export function readUntil(res: import('node:http').IncomingMessage, until: (text: string) => boolean = () => false): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = () => {
      res.off('data', onData);
      resolve(text);
    };
    const onData = (d: Buffer) => {
      text += d.toString();
      if (until(text)) done();
    };
    res.on('data', onData);
    res.once('end', done);
    res.once('error', reject);
  });
}

/** Prometheus text as samples: `name{labels}` -> value (labels as written, sorted by the server). */
export function metrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      if (line.startsWith('#')) expect(line, 'a comment line').toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    expect(m, `a sample line: ${line}`).not.toBeNull();
    // Go's ParseFloat (Prometheus) reads NaN and Inf in any case; prom-client writes 'Nan'.
    const special = /^(nan|[+-]?inf)$/i.exec(m![2]);
    const value = special ? Number(m![2].replace(/inf/i, 'Infinity').replace(/nan/i, 'NaN')) : Number(m![2]);
    expect(Number.isNaN(value) && !special, line).toBe(false);
    out.set(m![1], value);
  }
  return out;
}

export async function scrape(base: string): Promise<Map<string, number>> {
  const r = await get<string>(base, '/metrics');
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return metrics(r.body);
}

/** Polls `check` every 50 ms until it returns true; fails after `ms` (a bound far above the wait expected, for loaded machines). */
export async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
