// Clients that misbehave at the HTTP level: a request that does not arrive in time (a body sent a
// byte at a time) and requests Node's parser refuses, answered in the server's JSON error shape.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LanguageModel } from '../../lib/model';
import { createServer, type RnnlmServer } from '../../lib/server/index';
import { charModel, eventually, tempDir } from './fixtures';

const dir = tempDir();
let model: LanguageModel;
let server: RnnlmServer;
let base = '';
/** The server's timeout, in seconds. */
const TIMEOUT = 2;
/** Generous bounds for what should take milliseconds to a second: the machine may be loaded. */
const PROMPTLY = 20_000;

beforeAll(async () => {
  model = await LanguageModel.load(await charModel(dir), { device: 'cpu' });
  server = createServer(model, { timeout: TIMEOUT });
  base = await server.listen({ host: '127.0.0.1', port: 0 });
}, 60_000);

afterAll(async () => {
  await server?.close({ timeout: 0 });
  model?.dispose();
});

/** A raw connection to the server: what it has received, and when it closed (ms since it was opened). */
function open(): { socket: Socket; received: () => string; closed: Promise<number> } {
  const { port } = new URL(base);
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
