// Bad requests to `rnnlm serve`: each kind is answered with its status and one JSON shape,
// `{ error: { code, message, param, type } }`, whose param (and message) names the field — and
// the server goes on answering.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { charModel, expectError, get, kill, post, rawRequest, serve, tempDir, type ServeProcess } from './fixtures';

const dir = tempDir();
let s: ServeProcess;
const MAX_BODY = 4096, MAX_TOKENS = 64;
let vocabSize = 0;

beforeAll(async () => {
  s = await serve(await charModel(dir), '--max-body-bytes', String(MAX_BODY), '--max-tokens', String(MAX_TOKENS));
  await s.ready;
  vocabSize = (await get(s.base, '/v1/models')).body.data[0].vocab_size;
}, 60_000);

afterAll(async () => {
  try {
    expect((await s.stop()).ms).toBeLessThan(30_000); // idle: it exits at once; 30 s for a loaded machine
    expect(s.stderr).toBe('rnnlm serve: SIGTERM: stopping; requests in flight may finish (send it again to cancel them)\n');
  } finally {
    kill(s);
  }
}, 60_000);

const completion = (body: unknown) => post(s.base, '/v1/completions', body);

/** A raw request (any method, content type and body bytes); its answer parsed as JSON. */
async function raw(method: string, path: string, body: string | undefined, headers: Record<string, string>) {
  const r = await rawRequest(s.base, method, path, body, headers);
  return { status: r.status, headers: new Headers(r.headers as Record<string, string>), body: JSON.parse(r.text) };
}

describe('the body', () => {
  test.each([
    ['truncated', '{"prompt": "the"'],
    ['not JSON', 'prompt=the'],
    ['a trailing comma', '{"prompt": "the",}'],
    ['empty', ''],
  ])('invalid JSON (%s): 400 invalid_json', async (_, body) => {
    expectError(await raw('POST', '/v1/completions', body, { 'content-type': 'application/json' }), 400, 'invalid_json', 'body');
  });

  test.each([['[1, 2]'], ['"the"'], ['42'], ['null'], ['true']])('not an object (%s): 400 invalid_type', async (body) => {
    expectError(await completion(body), 400, 'invalid_type', 'body');
  });

  test.each([
    ['text/plain', 'text/plain'],
    ['form data', 'application/x-www-form-urlencoded'],
    ['no content type', undefined],
  ])('%s: 415 unsupported_media_type', async (_, type) => {
    const a = await raw('POST', '/v1/completions', '{"prompt": "the"}', type ? { 'content-type': type } : {});
    expectError(a, 415, 'unsupported_media_type', 'content-type');
  });

  test('a body over --max-body-bytes: 413 body_too_large (and one just under is read)', async () => {
    const pad = (n: number) => JSON.stringify({ prompt: 'the', user: 'x'.repeat(n) });
    const over = pad(MAX_BODY);
    expect(Buffer.byteLength(over)).toBeGreaterThan(MAX_BODY);
    expectError(await completion(over), 413, 'body_too_large', 'body');
    // Sent without a content-length (chunked), it is refused the same way.
    expectError(await raw('POST', '/v1/completions', over, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }), 413, 'body_too_large', 'body');
    const under = pad(MAX_BODY - 100);
    expect(Buffer.byteLength(under)).toBeLessThanOrEqual(MAX_BODY);
    expect((await completion(under)).status).toBe(200);
  });

  test('keys that could pollute prototypes are refused (400), and pollute nothing', async () => {
    // Fastify's JSON parser refuses them outright; a plain `constructor` key is an unknown field.
    for (const body of ['{"prompt": "the", "__proto__": {"max_tokens": 1000}}', '{"prompt": "the", "constructor": {"prototype": {"x": 1}}}',
      '{"prompt": "the", "stream_options": {"__proto__": {"include_usage": true}}}']) {
      expectError(await completion(body), 400, 'invalid_json', 'body');
    }
    expectError(await completion('{"prompt": "the", "constructor": 1}'), 400, 'unknown_field', 'constructor');
    expectError(await completion('{"prompt": "the", "prototype": {}}'), 400, 'unknown_field', 'prototype');
    expect((await completion({ prompt: 'the', max_tokens: 2 })).body.usage.completion_tokens).toBeLessThanOrEqual(2);
  });
});

describe('fields of /v1/completions', () => {
  test.each([
    // [what, body, status, code, param]
    ['an unknown field', { prompt: 'the', foo: 1 }, 'unknown_field', 'foo'],
    ['an unknown field inside stream_options', { prompt: 'the', stream_options: { include_usage: true, x: 1 } }, 'unknown_field', 'stream_options.x'],
    ['max_tokens as a string', { prompt: 'the', max_tokens: '5' }, 'invalid_type', 'max_tokens'],
    ['max_tokens not an integer', { prompt: 'the', max_tokens: 1.5 }, 'invalid_type', 'max_tokens'],
    ['max_tokens < 0', { prompt: 'the', max_tokens: -1 }, 'invalid_value', 'max_tokens'],
    ['max_tokens over --max-tokens', { prompt: 'the', max_tokens: MAX_TOKENS + 1 }, 'invalid_value', 'max_tokens'],
    ['a huge max_tokens', { prompt: 'the', max_tokens: 1e300 }, 'invalid_value', 'max_tokens'],
    ['temperature as a string', { prompt: 'the', temperature: '1' }, 'invalid_type', 'temperature'],
    ['temperature > 2', { prompt: 'the', temperature: 2.5 }, 'invalid_value', 'temperature'],
    ['top_p 0', { prompt: 'the', top_p: 0 }, 'invalid_value', 'top_p'],
    ['top_p > 1', { prompt: 'the', top_p: 1.01 }, 'invalid_value', 'top_p'],
    ['top_k < 0', { prompt: 'the', top_k: -1 }, 'invalid_value', 'top_k'],
    ['top_k over the vocabulary', { prompt: 'the', top_k: 100_000 }, 'invalid_value', 'top_k'],
    ['n 0', { prompt: 'the', n: 0 }, 'invalid_value', 'n'],
    ['n 17', { prompt: 'the', n: 17 }, 'invalid_value', 'n'],
    ['prompts x n over 64', { prompt: ['a', 'b', 'c', 'd', 'e'], n: 16 }, 'invalid_value', 'n'],
    ['seed < 0', { prompt: 'the', seed: -1 }, 'invalid_value', 'seed'],
    ['seed >= 2^31', { prompt: 'the', seed: 2 ** 31 }, 'invalid_value', 'seed'],
    ['seed not an integer', { prompt: 'the', seed: 0.5 }, 'invalid_type', 'seed'],
    ['stream as a string', { prompt: 'the', stream: 'yes' }, 'invalid_type', 'stream'],
    ['stream_options as an array', { prompt: 'the', stream_options: [] }, 'invalid_type', 'stream_options'],
    ['logprobs 6', { prompt: 'the', logprobs: 6 }, 'invalid_value', 'logprobs'],
    ['logprobs true', { prompt: 'the', logprobs: true }, 'invalid_type', 'logprobs'],
    ['echo as a number', { prompt: 'the', echo: 1 }, 'invalid_type', 'echo'],
    ['logit_bias not an object', { prompt: 'the', logit_bias: [1] }, 'invalid_type', 'logit_bias'],
    ['logit_bias keyed by a word', { prompt: 'the', logit_bias: { the: 1 } }, 'invalid_value', 'logit_bias'],
    ['logit_bias over 100', { prompt: 'the', logit_bias: { 5: 101 } }, 'invalid_value', 'logit_bias[5]'],
    ['logit_bias for a token id out of range', { prompt: 'the', logit_bias: { 99999: 1 } }, 'invalid_value', 'logit_bias[99999]'],
    ['presence_penalty', { prompt: 'the', presence_penalty: 0.5 }, 'invalid_value', 'presence_penalty'],
    ['frequency_penalty', { prompt: 'the', frequency_penalty: -1 }, 'invalid_value', 'frequency_penalty'],
    ['best_of other than n', { prompt: 'the', best_of: 2 }, 'invalid_value', 'best_of'],
    ['suffix', { prompt: 'the', suffix: 'x' }, 'invalid_type', 'suffix'],
    ['user as a number', { prompt: 'the', user: 5 }, 'invalid_type', 'user'],
    ['model as a number', { prompt: 'the', model: 5 }, 'invalid_type', 'model'],
    ['stop as a number', { prompt: 'the', stop: 5 }, 'invalid_type', 'stop'],
    ['stop[1] empty', { prompt: 'the', stop: ['a', ''] }, 'invalid_value', 'stop[1]'],
    ['stop[1] a number', { prompt: 'the', stop: ['a', 7] }, 'invalid_type', 'stop[1]'],
    ['stop "" ', { prompt: 'the', stop: '' }, 'invalid_value', 'stop'],
    ['five stop strings', { prompt: 'the', stop: ['a', 'b', 'c', 'd', 'e'] }, 'invalid_value', 'stop'],
  ] as [string, object, string, string][])('%s: 400 %s', async (_, body, code, param) => {
    expectError(await completion(body), 400, code, param);
    // The same request streamed is refused the same way, before any event.
    expectError(await completion({ stream: true, ...body }), 400, code, param);
  });

  test.each([
    ['missing (a stream model continues a prompt)', {}, 'missing_field', 'prompt'],
    ['empty', { prompt: '' }, 'invalid_value', 'prompt'],
    ['an empty array', { prompt: [] }, 'invalid_value', 'prompt'],
    ['a number', { prompt: 5 }, 'invalid_type', 'prompt'],
    ['an object', { prompt: { text: 'the' } }, 'invalid_type', 'prompt'],
    ['null', { prompt: null }, 'invalid_type', 'prompt'],
    ['strings and ids mixed', { prompt: ['the', 5] }, 'invalid_type', 'prompt'],
    ['an empty string in a list', { prompt: ['the', 'a', ''] }, 'invalid_value', 'prompt[2]'],
    ['65 prompts', { prompt: Array(65).fill('the') }, 'invalid_value', 'prompt'],
    ['a character the vocabulary lacks', { prompt: 'the Zebra' }, 'vocabulary', 'prompt'],
    ['such a character in prompt[2]', { prompt: ['the', 'a', 'a cat\u{1F600}'] }, 'vocabulary', 'prompt[2]'],
    ['a token id out of range', { prompt: [1, 2, 1e6] }, 'invalid_value', 'prompt[2]'],
    ['a negative token id', { prompt: [[1, 2], [3, -1]] }, 'invalid_value', 'prompt[1][1]'],
    ['a fractional token id', { prompt: [1.5] }, 'invalid_value', 'prompt[0]'],
    ['an empty list of ids', { prompt: [[1], []] }, 'invalid_value', 'prompt[1]'],
  ] as [string, object, string, string][])('prompt %s: 400 %s', async (_, body, code, param) => {
    expectError(await completion(body), 400, code, param);
  });

  test('a token id = the vocabulary size is out of range; one below is fine', async () => {
    expectError(await completion({ prompt: [vocabSize] }), 400, 'invalid_value', 'prompt[0]');
    expect((await completion({ prompt: [vocabSize - 1], max_tokens: 1 })).status).toBe(200);
  });

  test('`model` naming another model: 404 model_not_found; the served id is fine', async () => {
    expectError(await completion({ model: 'gpt-4', prompt: 'the' }), 404, 'model_not_found', 'model');
    expectError(await post(s.base, '/v1/next', { model: 'gpt-4', context: 'the' }), 404, 'model_not_found', 'model');
    expectError(await post(s.base, '/v1/score', { model: 'gpt-4', input: 'the' }), 404, 'model_not_found', 'model');
    expect((await completion({ model: 'char', prompt: 'the', max_tokens: 1 })).status).toBe(200);
  });
});

describe('fields of /v1/next and /v1/score', () => {
  test.each([
    ['/v1/next', {}, 'missing_field', 'context'],
    ['/v1/next', { context: 5 }, 'invalid_type', 'context'],
    ['/v1/next', { context: ['the', 'a'] }, 'invalid_value', 'context'],
    ['/v1/next', { context: 'the', top_k: 0 }, 'invalid_value', 'top_k'],
    ['/v1/next', { context: 'the', top_k: 101 }, 'invalid_value', 'top_k'],
    ['/v1/next', { context: 'the', top_k: '3' }, 'invalid_type', 'top_k'],
    ['/v1/next', { context: 'the', prefix: '' }, 'invalid_value', 'prefix'],
    ['/v1/next', { context: 'the', prefix: 'Q' }, 'invalid_value', 'prefix'], // no token starts with it
    ['/v1/next', { context: 'the Q' }, 'vocabulary', 'context'],
    ['/v1/next', { context: [0, 1e6] }, 'invalid_value', 'context[1]'],
    ['/v1/next', { context: 'the', extra: true }, 'unknown_field', 'extra'],
    ['/v1/score', {}, 'missing_field', 'input'],
    ['/v1/score', { input: '' }, 'invalid_value', 'input'],
    ['/v1/score', { input: [] }, 'invalid_value', 'input'],
    ['/v1/score', { input: Array(257).fill('the') }, 'invalid_value', 'input'],
    ['/v1/score', { input: ['the cat', 'the Q'] }, 'vocabulary', 'input[1]'],
    ['/v1/score', { input: [[1, 2], [1e6]] }, 'invalid_value', 'input[1][0]'],
    ['/v1/score', { input: 'the', token_logprobs: 'yes' }, 'invalid_type', 'token_logprobs'],
    ['/v1/score', { input: 'the', tokens: true }, 'unknown_field', 'tokens'],
  ] as [string, object, string, string][])('%s %j: 400 %s', async (path, body, code, param) => {
    expectError(await post(s.base, path, body), 400, code, param);
  });
});

describe('routes', () => {
  test.each([
    ['GET', '/nope'],
    ['POST', '/v1/chat/completions'],
    ['GET', '/v1/completions'],
    ['DELETE', '/v1/models'],
    ['GET', '/v1/models/char/extra?x=1'],
  ])('%s %s: 404 not_found', async (method, path) => {
    const a = await raw(method, path, method === 'POST' ? '{}' : undefined, method === 'POST' ? { 'content-type': 'application/json' } : {});
    expectError(a, 404, 'not_found', null);
    expect(a.body.error.message).toContain(path.split('?')[0]);
  });
});

test('after all of that, the server still answers', async () => {
  expect((await get(s.base, '/health')).body).toEqual({ status: 'ok' });
  expect((await completion({ prompt: 'the', max_tokens: 3 })).status).toBe(200);
});
