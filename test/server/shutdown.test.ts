// How `rnnlm serve` ends: SIGTERM / SIGINT stop new connections, let the requests in flight (and
// queued) finish within --shutdown-timeout, cancel the rest, and exit 0; a second signal cancels
// at once; a checkpoint that fails to load is one stderr line and exit 1. And in-process, a server
// whose model is still loading answers 503.
import { writeFileSync } from 'node:fs';
import { createServer as httpServer } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LanguageModel } from '../../lib/model';
import { createServer } from '../../lib/server/index';
import { charModel, eventually, events, expectError, get, kill, post, readUntil, serve, streamRequest, tempDir, type ServeProcess } from './fixtures';

const dir = tempDir();
let model = '';
const started: ServeProcess[] = [];
/** Generous bounds for what should take milliseconds to a second: the machine may be loaded. */
const PROMPTLY = 20_000;
/** 16 x 1,000,000 tokens: minutes of work for a tiny model (~70,000 tokens/s batched) — it never ends by itself here. */
const LONG = { prompt: 'the ', n: 16, max_tokens: 1_000_000, ignore_eos: true, stream: true };

beforeAll(async () => {
  model = await charModel(dir);
}, 60_000);

afterAll(() => started.forEach(kill));

async function start(...args: string[]): Promise<ServeProcess> {
  const s = await serve(model, '--max-tokens', '1000000', ...args);
  started.push(s);
  await s.ready;
  return s;
}

/** Resolves when `s` has written `line` on stderr (the signal handler runs in the same turn as the close it announces). */
const said = (s: ServeProcess, line: RegExp) => eventually(async () => line.test(s.stderr), PROMPTLY, `stderr: ${line}`);

/** Whether a new TCP connection to the server is refused. */
function refused(base: string): Promise<boolean> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/** A long stream once its first token has arrived: the request is in flight. */
async function inFlight(s: ServeProcess, body: object = LONG) {
  const r = await streamRequest(s.base, '/v1/completions', body);
  expect(r.status).toBe(200);
  let ended = false;
  const first = new Promise((resolve) => r.res.once('data', resolve));
  const text = readUntil(r.res).then((t) => {
    ended = true;
    return t;
  });
  await first;
  return { text, ended: () => ended, res: r.res };
}

/** Tokens per second of one streamed request on `s`, to size a stream that takes a few seconds. */
async function tokensPerSecond(s: ServeProcess): Promise<number> {
  const t0 = performance.now();
  const r = await streamRequest(s.base, '/v1/completions', { prompt: 'the ', max_tokens: 20_000, ignore_eos: true, stream: true });
  await readUntil(r.res);
  return 20_000 / ((performance.now() - t0) / 1000);
}
let rate = 0;

describe.each(['SIGTERM', 'SIGINT'] as const)('%s', (signal) => {
  test('new connections are refused; the stream in flight and the request queued finish; exit 0', async () => {
    const s = await start('--shutdown-timeout', '60', '--max-concurrent', '1');
    rate ||= await tokensPerSecond(s);
    // About 4 s of tokens: still streaming when the refusal is checked (a few ms after the signal),
    // and far within the 60 s allowed (the machine would have to slow down 15 times).
    const tokens = Math.max(2_000, Math.round(rate * 4));
    const stream = await inFlight(s, { prompt: 'the ', max_tokens: tokens, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    const queued = post(s.base, '/v1/completions', { prompt: 'a ', max_tokens: 5, ignore_eos: true });
    await eventually(async () => (await get(s.base, '/metrics')).body.includes('rnnlm_queue_depth 1'), PROMPTLY, 'the second request waits');
    const t0 = performance.now();
    s.child.kill(signal);
    await said(s, new RegExp(`^rnnlm serve: ${signal}: stopping`, 'm'));
    expect(await refused(s.base)).toBe(true);
    expect(stream.ended(), `the stream (${tokens} tokens) ended before the refusal was checked`).toBe(false);
    const all = events(await stream.text);
    expect(all.at(-1)).toBe('[DONE]');
    expect((all.at(-2) as any).usage.completion_tokens).toBe(tokens);
    const q = await queued;
    expect(q.status).toBe(200);
    expect(q.body.usage.completion_tokens).toBe(5);
    const e = await s.exited;
    expect({ code: e.code, signal: e.signal }, s.stderr).toEqual({ code: 0, signal: null });
    expect(performance.now() - t0).toBeLessThan(60_000);
    expect(s.stderr.trim().split('\n')).toHaveLength(1);
  }, 90_000);
});

test('a short --shutdown-timeout: the request in flight is cancelled (an error event, no [DONE]), and it exits 0 promptly', async () => {
  const s = await start('--shutdown-timeout', '0.5');
  const stream = await inFlight(s);
  const t0 = performance.now();
  s.child.kill('SIGTERM');
  const all = events(await stream.text);
  expect(all).not.toContain('[DONE]');
  expect((all.at(-1) as any).error.code).toBe('shutting_down');
  const e = await s.exited;
  const ms = performance.now() - t0;
  expect({ code: e.code, signal: e.signal }, s.stderr).toEqual({ code: 0, signal: null });
  // It waited the 0.5 s (a 50 ms slack for timers), then cancelled: the request alone would run for minutes.
  expect(ms).toBeGreaterThanOrEqual(450);
  expect(ms).toBeLessThan(PROMPTLY);
}, 60_000);

test('a reader that pauses while the server shuts down still gets the end of its stream (the error event), then exit 0', async () => {
  const s = await start('--shutdown-timeout', '0.5');
  const stream = await inFlight(s);
  const r = stream.res;
  // Not reading for 1.5 s (under the server's 2 s stall limit) from the signal on: the request is
  // cancelled at 0.5 s, and its last events wait in the server's buffers behind a full socket.
  r.pause();
  s.child.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  r.resume();
  const all = events(await stream.text);
  expect(all).not.toContain('[DONE]');
  expect((all.at(-1) as any).error.code).toBe('shutting_down');
  const e = await s.exited;
  expect({ code: e.code, signal: e.signal }, s.stderr).toEqual({ code: 0, signal: null });
}, 60_000);

test('a second signal cancels the requests in flight at once; exit 0', async () => {
  const s = await start('--shutdown-timeout', '60');
  const stream = await inFlight(s);
  s.child.kill('SIGTERM');
  await said(s, /SIGTERM: stopping/);
  expect(stream.ended()).toBe(false);
  const t0 = performance.now();
  s.child.kill('SIGINT');
  await said(s, /SIGINT: cancelling/);
  const all = events(await stream.text);
  expect(all).not.toContain('[DONE]');
  expect((all.at(-1) as any).error.code).toBe('shutting_down');
  const e = await s.exited;
  expect({ code: e.code, signal: e.signal }, s.stderr).toEqual({ code: 0, signal: null });
  // Well before the 60 s the first signal allowed.
  expect(performance.now() - t0).toBeLessThan(PROMPTLY);
}, 60_000);

test.each([
  ['a file that is not a checkpoint', 'garbage.safetensors', /^rnnlm: ERR_CHECKPOINT: /],
  ['a missing file', 'missing.safetensors', /^rnnlm: ERR_CHECKPOINT: .*missing\.safetensors/],
])('%s: it listens, then prints one stderr line and exits 1', async (_, name, line) => {
  const path = `${dir}/${name}`;
  if (name.startsWith('garbage')) writeFileSync(path, Buffer.alloc(4096, 7));
  const s = await serve(path);
  started.push(s);
  const e = await s.exited;
  expect({ code: e.code, signal: e.signal }).toEqual({ code: 1, signal: null });
  expect(e.ms).toBeLessThan(60_000);
  expect(s.stdout).toMatch(/^rnnlm serve: listening on http:\/\/127\.0\.0\.1:\d+\n$/);
  const lines = s.stderr.trim().split('\n');
  expect(lines, s.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(line);
}, 60_000);

describe('in-process (createServer)', () => {
  test('while its model loads, and once closed: /health and every computing endpoint answer 503 with Retry-After; in between, 200', async () => {
    let resolve!: (m: LanguageModel) => void;
    const server = createServer(new Promise<LanguageModel>((r) => (resolve = r)), { modelId: 'm' });
    let loaded: LanguageModel | undefined;
    const base = await server.listen({ host: '127.0.0.1', port: 0 });
    try {
      const h = await get(base, '/health');
      expect(h.status).toBe(503);
      expect(h.body).toEqual({ status: 'loading' });
      expect(h.headers.get('retry-after')).toBe('1');
      for (const [path, body] of [['/v1/completions', { prompt: 'the' }], ['/v1/next', { context: 'the' }], ['/v1/score', { input: 'the' }]] as const) {
        const a = await post(base, path, body);
        expectError(a, 503, 'loading', null);
        expect(a.headers.get('retry-after')).toBe('1');
      }
      expectError(await get(base, '/v1/models'), 503, 'loading', null);
      loaded = await LanguageModel.load(model, { device: 'cpu' });
      resolve(loaded);
      await server.ready;
      expect((await get(base, '/health')).body).toEqual({ status: 'ok' });
      expect((await post(base, '/v1/completions', { prompt: 'the', max_tokens: 2 })).status).toBe(200);
      // Its handler, mounted in an app's own server, answers the same.
      const own = httpServer(server.handler);
      await new Promise<void>((r) => own.listen(0, '127.0.0.1', r));
      const port = (own.address() as { port: number }).port;
      const mounted = `http://127.0.0.1:${port}`;
      expect((await get(mounted, '/health')).body).toEqual({ status: 'ok' });
      // Once closed, its own listener is gone; the mounted handler answers 503 shutting_down.
      await server.close();
      expect(await refused(base)).toBe(true);
      const h2 = await get(mounted, '/health');
      expect([h2.status, h2.body]).toEqual([503, { status: 'shutting_down' }]);
      const c = await post(mounted, '/v1/completions', { prompt: 'the', max_tokens: 2 });
      expectError(c, 503, 'shutting_down', null);
      expect(c.headers.get('retry-after')).toBe('1');
      own.closeAllConnections();
      await new Promise((r) => own.close(r));
    } finally {
      await server.close();
      loaded?.dispose(); // the server does not own it
    }
  }, 60_000);

  test('a model that fails to load: ready rejects, requests are answered 503, nothing crashes', async () => {
    const server = createServer(Promise.reject(new Error('no such checkpoint')));
    const base = await server.listen({ host: '127.0.0.1', port: 0 });
    try {
      await expect(server.ready).rejects.toThrow('no such checkpoint');
      expect((await get(base, '/health')).status).toBe(503);
      expectError(await post(base, '/v1/completions', { prompt: 'the' }), 503, 'loading', null);
    } finally {
      await server.close();
    }
  });
});
