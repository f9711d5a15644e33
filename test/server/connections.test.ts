// Clients that misbehave at the HTTP level: a request that does not arrive in time (a body sent a
// byte at a time), requests Node's parser refuses (answered in the server's JSON error shape), and
// clients that never read their answer — a stream is cancelled once over 1 MiB of it waits and the
// client takes none for 2 s, and an answer left unread is dropped `timeout` seconds after it is
// written — so none of them holds a connection, a slot or memory for long.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { DEFAULTS } from '../../lib/defaults';
import { LanguageModel } from '../../lib/model';
import { createServer, type RnnlmServer } from '../../lib/server/index';
import { SENTENCES, charModel, eventually, post, scrape, tempDir } from './fixtures';

const dir = tempDir();
let model: LanguageModel;
/** A server with a 2 s timeout (TIMEOUT), and one with the default (60 s). */
let server: RnnlmServer, patient: RnnlmServer;
let base = '', patientBase = '';
/** The access log's lines. */
const log: { path: string; status: number; ms: number }[] = [];
/** The server's timeout, in seconds. */
const TIMEOUT = 2;
/** Generous bounds for what should take milliseconds to a second: the machine may be loaded. */
const PROMPTLY = 20_000;

beforeAll(async () => {
  model = await LanguageModel.load(await charModel(dir), { device: 'cpu' });
  const accessLog = (line: string) => void log.push(JSON.parse(line));
  server = createServer(model, { timeout: TIMEOUT, accessLog });
  patient = createServer(model, { accessLog });
  [base, patientBase] = await Promise.all([server.listen({ host: '127.0.0.1', port: 0 }), patient.listen({ host: '127.0.0.1', port: 0 })]);
}, 60_000);

afterAll(async () => {
  await Promise.all([server?.close({ timeout: 0 }), patient?.close({ timeout: 0 })]);
  model?.dispose();
});

/** A raw connection to the server: what it has received, and when it closed (ms since it was opened). */
function open(where = base): { socket: Socket; received: () => string; closed: Promise<number> } {
  const { port } = new URL(where);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  let text = '';
  socket.on('data', (d: Buffer) => void (text += d.toString()));
  const t0 = performance.now();
  const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now() - t0)));
  return { socket, received: () => text, closed };
}

/** A raw HTTP answer: its status and its JSON body. */
function parsed(raw: string): { status: number; body: any } {
  const [head, body] = raw.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]), body: JSON.parse(body) };
}

const at = (m: Map<string, number>, k: string) => m.get(k) ?? 0;

/** Waits until nothing computes on the server at `where`: slots and batch rows back to 0. */
const idle = (where: string, what: string) => eventually(async () => {
  const m = await scrape(where);
  return at(m, 'rnnlm_requests_active') === 0 && at(m, 'rnnlm_batch_rows') === 0;
}, PROMPTLY, what);

/** 64 choices of 2,048 tokens with their 5 best alternatives each: ~80 MB of events if all were sent. */
const BIG = { prompt: ['the ', 'a ', 'my ', 'the c'], n: 16, max_tokens: 2048, ignore_eos: true, logprobs: 5 };

describe('requests Node refuses are answered in the JSON error shape, and the connection closed', () => {
  test.each([
    ['headers over Node\'s limit', 431, 'headers_too_large', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
    ['a malformed request line', 400, 'invalid_value', 'NOT HTTP\r\n\r\n'],
    ['a malformed chunked body', 400, 'invalid_value', 'POST /v1/next HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n'],
  ])('%s: %i %s', async (_what, status, code, request) => {
    const c = open();
    c.socket.write(request);
    await c.closed;
    const a = parsed(c.received());
    expect(a.status).toBe(status);
    expect(Object.keys(a.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(a.body.error.code).toBe(code);
  });
});

describe(`a request must arrive within the server's timeout (${TIMEOUT} s)`, () => {
  test('a body sent a byte at a time: 408 timeout, the connection closed', async () => {
    const c = open();
    c.socket.write('POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"input": "');
    // Never idle: each byte restarts an idle timer, not this one.
    const drip = setInterval(() => c.socket.write('a'), 100);
    const ms = await Promise.race([c.closed, new Promise<number>((r) => setTimeout(() => r(Infinity), PROMPTLY))]);
    clearInterval(drip);
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT * 1000 - 100);
    expect(ms).toBeLessThan(PROMPTLY);
    const a = parsed(c.received());
    expect(a.status).toBe(408);
    expect(a.body.error.code).toBe('timeout');
    c.socket.destroy();
  }, PROMPTLY + 5_000);

  test('a kept-alive connection idle between requests for longer than that is no late request', async () => {
    const c = open();
    const ask = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';
    c.socket.write(ask);
    await eventually(async () => c.received().includes('{"status":"ok"}'), PROMPTLY, 'the first answer');
    // Longer than the timeout, shorter than Node's keep-alive timeout (5 s).
    await new Promise((r) => setTimeout(r, TIMEOUT * 1000 + 1000));
    c.socket.write(ask);
    await eventually(async () => c.received().split('{"status":"ok"}').length === 3, PROMPTLY, 'the second answer');
    c.socket.destroy();
  }, PROMPTLY + 10_000);
});

describe('a client that does not read its answer', () => {
  // On the server with a 60 s timeout: cancelled long before it, and long before all is generated.
  test('a stream is cancelled once over 1 MiB waits unsent and none is taken for 2 s: 499, its slot and rows freed', async () => {
    const mark = log.length;
    const c = open(patientBase);
    c.socket.pause(); // reads nothing: the kernel's buffers fill, then the server's
    const body = JSON.stringify({ ...BIG, stream: true });
    c.socket.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await eventually(async () => log.length > mark, PROMPTLY, 'the request ends while its client reads nothing');
    expect(log.slice(mark)).toMatchObject([{ path: '/v1/completions', status: 499 }]);
    await idle(patientBase, 'the stream cancelled');
    c.socket.destroy();
  }, PROMPTLY + 5_000);

  test(`an answer written but not read: the connection is closed ${TIMEOUT} s later (499)`, async () => {
    const mark = log.length;
    const c = open();
    c.socket.pause();
    // ~5 MB of JSON (more than the kernel's buffers take), computed well within the timeout.
    const body = JSON.stringify({ input: Array(256).fill(SENTENCES[0].repeat(40)), token_logprobs: true });
    c.socket.write(`POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await eventually(async () => log.length > mark, PROMPTLY, 'the unread answer dropped');
    const [line] = log.slice(mark);
    expect(line).toMatchObject({ path: '/v1/score', status: 499 });
    expect(line.ms).toBeGreaterThanOrEqual(TIMEOUT * 1000 - 100);
    c.socket.destroy();
  }, PROMPTLY + 5_000);

  test('requests whose clients left keep no timer (the unread-answer deadline is only for answers still to be read)', async () => {
    // The server's timers of its timeout (60 s here) still pending, watched from the outside.
    const ms = DEFAULTS.serve.timeout * 1000;
    const pending = new Set<unknown>();
    const set = globalThis.setTimeout, clear = globalThis.clearTimeout;
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((f: () => void, delay: number) => {
      const t = set(() => {
        pending.delete(t);
        f();
      }, delay);
      if (delay === ms) pending.add(t);
      return t;
    }) as typeof setTimeout);
    vi.spyOn(globalThis, 'clearTimeout').mockImplementation((t) => {
      pending.delete(t);
      clear(t);
    });
    try {
      const N = 20;
      const body = JSON.stringify({ ...BIG, n: 1, prompt: 'the ' });
      await Promise.all(Array.from({ length: N }, async (_, i) => {
        const c = open(patientBase);
        c.socket.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        await new Promise((r) => set(r, 100 + i * 10)); // mid-computation
        c.socket.destroy();
        await c.closed;
      }));
      await idle(patientBase, 'the requests cancelled');
      expect(pending.size).toBe(0);
    } finally {
      vi.restoreAllMocks();
    }
  }, PROMPTLY);

  test('a client that reads gets the whole stream', async () => {
    const r = await fetch(`${patientBase}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...BIG, max_tokens: 100, stream: true }),
    });
    const text = await r.text();
    expect(text.length).toBeGreaterThan(1 << 20);
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect((await post(patientBase, '/v1/completions', { prompt: 'the', max_tokens: 2 })).status).toBe(200);
  }, PROMPTLY);
});
