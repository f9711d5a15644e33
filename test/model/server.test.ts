// The README's app example (examples/server.ts), tried as a user would: a Fastify server sharing
// one model answers 20 concurrent requests (before the runtime: 3 of 20, the others ERR_BUSY),
// streams tokens, keeps autocomplete sessions, reranks by score, turns bad input into a 400,
// frees a request whose client went away, and ends with code 0 on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';

const root = join(__dirname, '..', '..');
let server: ChildProcess;
let base = '';
let stderr = '';

beforeAll(async () => {
  server = spawn(process.execPath, ['--import', 'tsx', join(root, 'examples', 'server.ts'), '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr!.on('data', (d: Buffer) => void (stderr += d.toString()));
  base = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code, signal) => reject(new Error(`the server exited (${code ?? signal}) before listening: ${stderr}`)));
  });
}, 120_000);

afterAll(() => {
  if (server.exitCode === null) server.kill('SIGKILL');
});

const post = (path: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });

test('20 concurrent generate requests on one shared model are all answered, as each is alone', async () => {
  const bodies = Array.from({ length: 20 }, (_, i) => ({ prompt: i % 2 ? 'the cat' : 'a dog saw', maxTokens: 4 + i, seed: i, temperature: 1 }));
  const together = await Promise.all(bodies.map((b) => post('/generate', b)));
  expect(together.map((r) => r.status)).toEqual(new Array(20).fill(200));
  const texts = await Promise.all(together.map((r) => r.json() as Promise<{ text: string }>));
  for (const [i, b] of bodies.entries()) {
    const alone = (await (await post('/generate', b)).json()) as { text: string };
    expect(texts[i].text, `request ${i}`).toBe(alone.text);
  }
}, 60_000);

test('streaming, reranking, autocomplete sessions and bad input', async () => {
  const sse = await (await post('/generate', { prompt: 'the', maxTokens: 6, seed: 3, stream: true })).text();
  const events = sse.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
  expect(events.at(-1)).toBe('[DONE]');
  const tokens = events.slice(0, -1).map((e) => JSON.parse(e) as { text: string; id: number; logProb: number });
  const plain = (await (await post('/generate', { prompt: 'the', maxTokens: 6, seed: 3 })).json()) as { text: string };
  expect(tokens.map((t) => t.text).join('')).toBe(plain.text);
  for (const t of tokens) expect(t.logProb).toBeLessThanOrEqual(0);

  const scores = (await (await post('/score', { texts: ['the cat sat on the mat .', 'mat the on sat cat the .'] })).json()) as { logProb: number; tokens: number }[];
  expect(scores.map((s) => s.tokens)).toEqual([6, 6]);

  const { id } = (await (await post('/sessions', {})).json()) as { id: string };
  await post(`/sessions/${id}`, { append: 'the cat sat' });
  const viaSession = await (await post(`/sessions/${id}`, { append: ' on the', topK: 3 })).json();
  const whole = await (await post('/next', { context: 'the cat sat on the', topK: 3 })).json();
  expect(viaSession).toEqual(whole);
  const completed = (await (await post(`/sessions/${id}`, { prefix: 'm', topK: 3 })).json()) as { token: string }[];
  for (const p of completed) expect(p.token.startsWith('m')).toBe(true);
  expect((await fetch(`${base}/sessions/${id}`, { method: 'DELETE' })).status).toBe(200);
  expect((await post(`/sessions/${id}`, {})).status).toBe(404);

  const bad = await post('/next', { context: 'the', topK: 'many' });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: string }).error).toMatch(/topK must be an integer/);
}, 60_000);

test('a client that goes away cancels its request; the server still answers', async () => {
  const stdout: string[] = [];
  server.stdout!.on('data', (d: Buffer) => stdout.push(d.toString()));
  // A raw request whose socket is destroyed after the first tokens (fetch's abort may keep the connection).
  await new Promise<void>((resolve, reject) => {
    const req = request(`${base}/generate`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
    req.end(JSON.stringify({ prompt: 'the', maxTokens: 1_000_000, stopAtEos: false, stream: true, seed: 1 }));
  });
  // The server logs the cancellation (under load it may take a few seconds to see the socket close).
  const t0 = performance.now();
  while (performance.now() - t0 < 40_000 && !stdout.join('').includes('generate cancelled: client disconnected')) await new Promise((r) => setTimeout(r, 50));
  expect(stdout.join(''), `after ${Math.round(performance.now() - t0)} ms`).toContain('generate cancelled: client disconnected');
  const after = await post('/generate', { prompt: 'the cat', maxTokens: 3, seed: 1 });
  expect(after.status).toBe(200);
}, 60_000);

test('SIGTERM ends the streams in flight: the server closes, frees the model and exits with code 0', async () => {
  // A long stream still running when the signal comes.
  const stream = await post('/generate', { prompt: 'the', maxTokens: 1_000_000, stopAtEos: false, stream: true, seed: 2 });
  const reader = stream.body!.getReader();
  await reader.read();
  const t0 = performance.now();
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => server.on('exit', (code, signal) => resolve([code, signal])));
  server.kill('SIGTERM');
  const [code, signal] = await exited;
  expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
  expect(performance.now() - t0).toBeLessThan(10_000);
}, 30_000);
