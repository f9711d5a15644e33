// The README's app example (examples/server.ts), tried as a user would: rnnlm/server's endpoints
// mounted in the app's own Fastify server beside its autocomplete sessions. 20 concurrent
// completions on one shared model are all answered, each as it is alone (before the runtime: 3
// of 20, the others ERR_BUSY); a session's autocomplete equals /v1/next on the whole context;
// bad input to the app's routes is a 400; SIGTERM with a stream in flight lets it finish and
// exits with code 0.
import { spawn, type ChildProcess } from 'node:child_process';
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

const post = (path: string, body: unknown) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
type Completion = { choices: { text: string; finish_reason: string }[] };

test('20 concurrent completions on one shared model are all answered, as each is alone', async () => {
  const bodies = Array.from({ length: 20 }, (_, i) => ({ model: 'demo', prompt: i % 2 ? 'the cat' : 'a dog saw', max_tokens: 4 + i, seed: i, ignore_eos: true }));
  const together = await Promise.all(bodies.map((b) => post('/v1/completions', b)));
  expect(together.map((r) => r.status)).toEqual(new Array(20).fill(200));
  const texts = await Promise.all(together.map((r) => r.json() as Promise<Completion>));
  for (const [i, b] of bodies.entries()) {
    const alone = (await (await post('/v1/completions', b)).json()) as Completion;
    expect(texts[i].choices[0].text, `request ${i}`).toBe(alone.choices[0].text);
  }
}, 60_000);

test("the app's autocomplete sessions beside the model's endpoints, and bad input", async () => {
  const { id } = (await (await post('/sessions', {})).json()) as { id: string };
  await post(`/sessions/${id}`, { append: 'the cat sat' });
  const viaSession = (await (await post(`/sessions/${id}`, { append: ' on the', topK: 3 })).json()) as { token: string; probability: number }[];
  const whole = (await (await post('/v1/next', { context: 'the cat sat on the', top_k: 3 })).json()) as { predictions: { token: string; probability: number }[] };
  expect(viaSession.map((p) => p.token)).toEqual(whole.predictions.map((p) => p.token));
  viaSession.forEach((p, i) => expect(p.probability).toBeCloseTo(whole.predictions[i].probability, 5));
  const completed = (await (await post(`/sessions/${id}`, { prefix: 'm', topK: 3 })).json()) as { token: string }[];
  for (const p of completed) expect(p.token.startsWith('m')).toBe(true);
  expect((await fetch(`${base}/sessions/${id}`, { method: 'DELETE' })).status).toBe(200);
  expect((await post(`/sessions/${id}`, {})).status).toBe(404);

  const bad = await post(`/sessions/${((await (await post('/sessions', {})).json()) as { id: string }).id}`, { topK: 'many' });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/topK must be an integer/);
  const badLm = await post('/v1/next', { context: 'the', top_k: 'many' });
  expect(badLm.status).toBe(400);
  expect(((await badLm.json()) as { error: { param: string } }).error.param).toBe('top_k');
}, 60_000);

test('SIGTERM with a stream in flight: the stream finishes, the process exits with code 0', async () => {
  const stream = await post('/v1/completions', { prompt: 'the', max_tokens: 400, ignore_eos: true, stream: true, seed: 2 });
  const reader = stream.body!.getReader();
  let text = new TextDecoder().decode((await reader.read()).value);
  const t0 = performance.now();
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => server.on('exit', (code, signal) => resolve([code, signal])));
  server.kill('SIGTERM');
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
  expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  const [code, signal] = await exited;
  expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
  // The default shutdownTimeout (10 s) bounds the drain; a generous margin for a loaded machine.
  expect(performance.now() - t0).toBeLessThan(20_000);
}, 40_000);
