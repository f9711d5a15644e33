// The limits of `rnnlm serve`: a bounded queue (503 + Retry-After beyond it), a per-request timeout
// (504; a stream ends with an error event), cancellation of a request whose client disconnects
// (499 in the metrics and the access log, its slot and batch row freed), and the access log.
//
// "Long" requests ask for 16 x 1,000,000 tokens: a tiny model draws ~70,000 tokens/s batched on
// two busy cores, so one would run for minutes — none ends by itself while a test waits on it,
// whatever the machine's speed within a factor of 10; each is cancelled (or times out) instead.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { charModel, eventually, events, expectError, kill, post, readUntil, scrape, serve, streamRequest, tempDir, type ServeProcess } from './fixtures';

const dir = tempDir();
/** One slot, one place in the queue, an access log. */
let a: ServeProcess;
/** A 1 s timeout, one slot. */
let b: ServeProcess;

const LONG = { prompt: 'the ', n: 16, max_tokens: 1_000_000, ignore_eos: true };
/** Generous bounds for what should take milliseconds: the machine may be loaded. */
const PROMPTLY = 20_000;

beforeAll(async () => {
  const model = await charModel(dir);
  [a, b] = await Promise.all([
    serve(model, '--max-concurrent', '1', '--max-queue', '1', '--max-tokens', '1000000', '--access-log'),
    serve(model, '--timeout', '1', '--max-concurrent', '1', '--max-tokens', '1000000'),
  ]);
  await Promise.all([a.ready, b.ready]);
}, 60_000);

afterAll(async () => {
  try {
    // Idle servers exit 0 at once on SIGTERM (30 s: far above the ~1 s it takes, for a loaded machine).
    for (const s of [a, b]) expect((await s.stop()).ms).toBeLessThan(30_000);
    // Cancelled, timed-out and refused requests are no server errors: nothing but the SIGTERM line on stderr.
    for (const s of [a, b]) expect(s.stderr).toBe('rnnlm serve: SIGTERM: stopping; requests in flight may finish (send it again to cancel them)\n');
  } finally {
    kill(a);
    kill(b);
  }
}, 60_000);

const at = (m: Map<string, number>, k: string) => m.get(k) ?? 0;
const requests = (status: number) => `rnnlm_requests_total{endpoint="/v1/completions",status="${status}"}`;

/** Waits until nothing computes or waits on `s`: its slot, queue and batch rows all back to 0. */
async function idle(s: ServeProcess, what: string): Promise<Map<string, number>> {
  let m = new Map<string, number>();
  await eventually(async () => {
    m = await scrape(s.base);
    return at(m, 'rnnlm_requests_active') === 0 && at(m, 'rnnlm_queue_depth') === 0 && at(m, 'rnnlm_batch_rows') === 0;
  }, PROMPTLY, what);
  return m;
}

/** The access-log lines of completions written on `s`'s stdout since `mark` (its length then). */
const logged = (s: ServeProcess, mark: number) => s.stdout.slice(mark).trim().split('\n').filter(Boolean)
  .map((l) => JSON.parse(l) as { path: string; status: number }).filter((l) => l.path === '/v1/completions');

/** A long request streamed, once its first token has arrived (so it holds the slot). */
async function streaming(s: ServeProcess) {
  const r = await streamRequest(s.base, '/v1/completions', { ...LONG, stream: true });
  expect(r.status).toBe(200);
  await readUntil(r.res, (t) => t.includes('\n\n'));
  return r;
}

describe('admission: --max-concurrent 1 --max-queue 1', () => {
  test('three long requests: one computes, one waits, the third is answered 503 with Retry-After at once', async () => {
    const before = await scrape(a.base);
    const mark = a.stdout.length;
    const first = await streaming(a);
    const ac = new AbortController();
    const second = fetch(`${a.base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(LONG), signal: ac.signal });
    second.catch(() => {});
    await eventually(async () => at(await scrape(a.base), 'rnnlm_queue_depth') === 1, PROMPTLY, 'the second request waits');
    const busy = await scrape(a.base);
    expect(at(busy, 'rnnlm_requests_active')).toBe(1);
    const third = await post(a.base, '/v1/completions', LONG, { signal: AbortSignal.timeout(PROMPTLY) });
    expectError(third, 503, 'overloaded', null);
    expect(third.headers.get('retry-after')).toBe('1');
    // Both others leave: the waiting one leaves the queue, the computing one is cancelled.
    ac.abort();
    first.destroy();
    const after = await idle(a, 'both cancelled');
    expect(at(after, requests(503)) - at(before, requests(503))).toBe(1);
    expect(at(after, requests(499)) - at(before, requests(499))).toBe(2);
    // The access log has them too (its pipe may lag behind the HTTP answers a little).
    await eventually(async () => logged(a, mark).length === 3, PROMPTLY, 'three access-log lines');
    expect(logged(a, mark).map((l) => l.status).sort()).toEqual([499, 499, 503]);
    expect((await post(a.base, '/v1/completions', { prompt: 'the ', max_tokens: 3 })).status).toBe(200);
  });
});

describe('a client that disconnects cancels its request', () => {
  test('mid-stream: the request stops (slot and batch row freed), 499 counted, the server answers on', async () => {
    const before = await scrape(a.base);
    const mark = a.stdout.length;
    const r = await streaming(a);
    expect(at(await scrape(a.base), 'rnnlm_requests_active')).toBe(1);
    r.destroy();
    // The slot is released only when the generation ends: it was cancelled, as it could not have finished.
    const after = await idle(a, 'the stream cancelled');
    expect(at(after, requests(499)) - at(before, requests(499))).toBe(1);
    await eventually(async () => logged(a, mark).length === 1, PROMPTLY, 'its access-log line');
    expect(logged(a, mark)).toMatchObject([{ status: 499, prompt_tokens: 4 }]);
    expect((await post(a.base, '/v1/completions', { prompt: 'the ', max_tokens: 3 })).status).toBe(200);
  });

  test('mid-request (not streamed): the same', async () => {
    const before = await scrape(a.base);
    const mark = a.stdout.length;
    const ac = new AbortController();
    const r = fetch(`${a.base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(LONG), signal: ac.signal });
    r.catch(() => {});
    await eventually(async () => at(await scrape(a.base), 'rnnlm_requests_active') === 1, PROMPTLY, 'the request computes');
    ac.abort();
    await expect(r).rejects.toThrow();
    const after = await idle(a, 'the request cancelled');
    expect(at(after, requests(499)) - at(before, requests(499))).toBe(1);
    await eventually(async () => logged(a, mark).length === 1, PROMPTLY, 'its access-log line');
    expect(logged(a, mark)).toMatchObject([{ status: 499, prompt_tokens: 4 }]);
    expect((await post(a.base, '/v1/completions', { prompt: 'the ', max_tokens: 3 })).status).toBe(200);
  });
});

describe('--timeout 1', () => {
  test('a long request: 504 timeout after 1 s; waiting in the queue counts', async () => {
    const t0 = performance.now();
    const bounded = { signal: AbortSignal.timeout(PROMPTLY) }; // fail, not hang, if no timeout comes
    const [x, y] = await Promise.all([post(b.base, '/v1/completions', LONG, bounded), post(b.base, '/v1/completions', LONG, bounded)]);
    const ms = performance.now() - t0;
    // One computed, the other waited for the slot: both ran out of time (measured from arrival).
    expectError(x, 504, 'timeout', null);
    expectError(y, 504, 'timeout', null);
    expect(x.body.error.message).toMatch(/1 s/);
    // The server counts from a request's arrival, after the client began it (900: timers may fire a ms early).
    expect(ms).toBeGreaterThanOrEqual(900);
    await idle(b, 'the timed-out requests end');
  });

  test('a stream that runs out of time ends with an error event, without [DONE]', async () => {
    const r = await streamRequest(b.base, '/v1/completions', { ...LONG, n: 1, stream: true });
    expect(r.status).toBe(200);
    const all = events(await readUntil(r.res));
    const last = all.at(-1) as any;
    expect(last.error.code).toBe('timeout');
    expect(Object.keys(last.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(all).not.toContain('[DONE]');
    expect(all.length).toBeGreaterThan(1); // tokens came before it
    for (const e of all.slice(0, -1) as any[]) expect(e.choices[0].finish_reason).toBeNull();
    const m = await idle(b, 'the stream ends');
    expect(at(m, 'rnnlm_requests_total{endpoint="/v1/completions",status="504"}')).toBe(2);
    expect(at(m, requests(200))).toBe(1); // the stream's status line went out before its time ran out
  });

  test('short requests are unaffected', async () => {
    expect((await post(b.base, '/v1/completions', { prompt: 'the ', max_tokens: 20 })).status).toBe(200);
  });
});

test('--access-log: one JSON line per request on stdout, with its status and tokens', async () => {
  const mark = a.stdout.length;
  const ok = await post(a.base, '/v1/completions', { prompt: 'the c', max_tokens: 4, ignore_eos: true, n: 2 });
  await post(a.base, '/v1/completions', { prompt: 'the', max_tokens: -1 });
  await eventually(async () => a.stdout.includes('"status":400'), PROMPTLY, 'the log line of the 400');
  await scrape(a.base);
  const lines = a.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^rnnlm serve: listening on /);
  expect(lines[1]).toMatch(/^rnnlm serve: ready: /);
  // Every line after those two is a request's.
  for (const l of lines.slice(2).map((x) => JSON.parse(x))) {
    expect(Object.keys(l).slice(0, 6)).toEqual(['time', 'remote', 'method', 'path', 'status', 'ms']);
    expect(new Date(l.time).toISOString()).toBe(l.time);
    expect(l.remote).toBe('127.0.0.1');
    expect(l.ms).toBeGreaterThanOrEqual(0);
  }
  const mine = a.stdout.slice(mark).trim().split('\n').map((x) => JSON.parse(x));
  expect(mine[0]).toMatchObject({ method: 'POST', path: '/v1/completions', status: 200, prompt_tokens: ok.body.usage.prompt_tokens, completion_tokens: 8 });
  // A request refused before it computes has no token counts.
  expect(mine[1]).toMatchObject({ method: 'POST', path: '/v1/completions', status: 400 });
  expect(mine[1].prompt_tokens).toBeUndefined();
  // The scrape's line has no tokens (it computes nothing); it is written once its answer is sent.
  await eventually(async () => a.stdout.slice(mark).includes('"/metrics"'), PROMPTLY, 'the log line of the scrape');
  const scraped = a.stdout.slice(mark).trim().split('\n').map((x) => JSON.parse(x)).find((l) => l.path === '/metrics');
  expect(scraped).toMatchObject({ method: 'GET', status: 200 });
  expect(scraped.prompt_tokens).toBeUndefined();
});
