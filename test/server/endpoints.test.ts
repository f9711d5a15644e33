// `rnnlm serve` answers every endpoint in the shape the contract gives (OpenAI's for completions),
// with what the library computes on the same checkpoint: a char model trained on a stream and a
// word model trained on sentences, each served by its own child process.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LanguageModel } from '../../lib/model';
import { charModel, events, get, kill, post, scrape, serve, tempDir, wordModel, type ServeProcess } from './fixtures';

const dir = tempDir();
let char: ServeProcess, word: ServeProcess;
/** The same checkpoints in this process: what the server must agree with. */
let charLib: LanguageModel, wordLib: LanguageModel;

beforeAll(async () => {
  const [c, w] = await Promise.all([charModel(dir), wordModel(dir)]);
  [char, word] = await Promise.all([serve(c), serve(w)]);
  [charLib, wordLib] = await Promise.all([LanguageModel.load(c, { device: 'cpu' }), LanguageModel.load(w, { device: 'cpu' })]);
  await Promise.all([char.ready, word.ready]);
}, 60_000);

afterAll(async () => {
  charLib?.dispose();
  wordLib?.dispose();
  try {
    // Both exit 0 on SIGTERM, at once when idle (30 s: far above the ~1 s it takes, for a loaded machine).
    for (const s of [char, word]) expect((await s.stop()).ms).toBeLessThan(30_000);
    // No access log by default: stdout holds the two startup lines only.
    for (const s of [char, word]) expect(s.stdout.trim().split('\n').map((l) => l.replace(/:.*/, ''))).toEqual(['rnnlm serve', 'rnnlm serve']);
  } finally {
    kill(char);
    kill(word);
  }
}, 60_000);

const completion = (s: ServeProcess, body: object) => post(s.base, '/v1/completions', body);

/** What the library generates for one choice (the server's choice j of a prompt uses seed + j). */
const generated = (m: LanguageModel, prompt: string | number[] | undefined, seed: number, more: object = {}) =>
  m.generate({ prompt, seed, details: true, maxTokens: 16, ...more });

function expectCompletionShape(body: any, model: string, choices: number): void {
  expect(Object.keys(body).sort()).toEqual(['choices', 'created', 'id', 'model', 'object', 'usage']);
  expect(body.id).toMatch(/^cmpl-/);
  expect(body.object).toBe('text_completion');
  expect(Math.abs(body.created - Date.now() / 1000)).toBeLessThan(120);
  expect(body.model).toBe(model);
  expect(body.choices.map((c: any) => c.index)).toEqual([...Array(choices).keys()]);
  for (const c of body.choices) {
    expect(Object.keys(c).sort()).toEqual(['finish_reason', 'index', 'logprobs', 'text']);
    expect(typeof c.text).toBe('string');
    expect(['stop', 'length']).toContain(c.finish_reason);
  }
  const u = body.usage;
  expect(u.total_tokens).toBe(u.prompt_tokens + u.completion_tokens);
}

describe('completions (char model, stream mode)', () => {
  test('one prompt: the library\'s text for the same seed, with usage', async () => {
    const a = await completion(char, { prompt: 'the ', max_tokens: 12, seed: 5, ignore_eos: true });
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toMatch(/^application\/json/);
    expectCompletionShape(a.body, 'char', 1);
    const g = await generated(charLib, 'the ', 5, { maxTokens: 12, stopAtEos: false });
    expect(a.body.choices[0]).toEqual({ index: 0, text: g.text, finish_reason: 'length', logprobs: null });
    expect(a.body.usage).toEqual({ prompt_tokens: charLib.tokenizer!.encode('the ').length, completion_tokens: 12, total_tokens: 16 });
  });

  test('n > 1, prompt arrays and token-id prompts: choice p * n + j is prompt p with seed + j', async () => {
    const prompts = ['the cat ', 'a bird', 'my fr'];
    const a = await completion(char, { prompt: prompts, n: 3, max_tokens: 10, seed: 40 });
    expect(a.status).toBe(200);
    expectCompletionShape(a.body, 'char', 9);
    for (const [p, prompt] of prompts.entries()) {
      for (let j = 0; j < 3; j++) {
        const g = await generated(charLib, prompt, 40 + j, { maxTokens: 10 });
        expect(a.body.choices[p * 3 + j].text, `prompt ${p}, choice ${j}`).toBe(g.text);
        expect(a.body.choices[p * 3 + j].finish_reason).toBe(g.finishReason === 'length' ? 'length' : 'stop');
      }
    }
    const promptTokens = prompts.reduce((s, p) => s + charLib.tokenizer!.encode(p).length, 0);
    expect(a.body.usage.prompt_tokens).toBe(promptTokens);
    // The same prompts as token ids (one list, and a list of lists): the same choices.
    const ids = prompts.map((p) => Array.from(charLib.tokenizer!.encode(p)));
    const byIds = await completion(char, { prompt: ids, n: 3, max_tokens: 10, seed: 40 });
    expect(byIds.body.choices).toEqual(a.body.choices);
    const one = await completion(char, { prompt: ids[0], max_tokens: 10, seed: 40 });
    expect(one.body.choices[0]).toEqual(a.body.choices[0]);
    expect(one.body.usage.prompt_tokens).toBe(ids[0].length);
  });

  test('the same seed draws the same text, batched with other requests or alone', async () => {
    const bodies = Array.from({ length: 8 }, (_, i) => ({ prompt: i % 2 ? 'the dog ' : 'a ', max_tokens: 8 + i, seed: 100 + i, temperature: 0.9 }));
    const together = await Promise.all(bodies.map((b) => completion(char, b)));
    for (const [i, b] of bodies.entries()) {
      const alone = await completion(char, b);
      expect(together[i].body.choices[0].text, `request ${i}`).toBe(alone.body.choices[0].text);
    }
    // A request without a seed draws a random one: two of them differ (16 characters: equal by chance with negligible odds).
    const [x, y] = await Promise.all([0, 1].map(() => completion(char, { prompt: 'the ', max_tokens: 16, ignore_eos: true, temperature: 2 })));
    expect(x.body.choices[0].text).not.toBe(y.body.choices[0].text);
  });

  test('echo: the prompt, then its continuation; max_tokens 0 echoes only', async () => {
    const plain = await completion(char, { prompt: 'the cat', max_tokens: 6, seed: 9 });
    const echoed = await completion(char, { prompt: 'the cat', max_tokens: 6, seed: 9, echo: true });
    expect(echoed.body.choices[0].text).toBe(`the cat${plain.body.choices[0].text}`);
    const only = await completion(char, { prompt: 'the cat', max_tokens: 0, echo: true });
    expect(only.body.choices[0]).toEqual({ index: 0, text: 'the cat', finish_reason: 'length', logprobs: null });
    expect(only.body.usage).toEqual({ prompt_tokens: 7, completion_tokens: 0, total_tokens: 7 });
  });

  test('logprobs: 0: each token\'s text, log-probability (the library\'s) and offset', async () => {
    const a = await completion(char, { prompt: 'the ', max_tokens: 10, seed: 3, logprobs: 0, ignore_eos: true });
    const c = a.body.choices[0];
    const lp = c.logprobs;
    expect(Object.keys(lp).sort()).toEqual(['text_offset', 'token_logprobs', 'tokens', 'top_logprobs']);
    expect(lp.tokens.join('')).toBe(c.text);
    expect(lp.top_logprobs).toBeNull();
    const g = await generated(charLib, 'the ', 3, { maxTokens: 10, stopAtEos: false });
    expect(lp.token_logprobs).toHaveLength(10);
    lp.token_logprobs.forEach((x: number, i: number) => expect(x).toBeCloseTo(g.logProbs[i], 5));
    expect(lp.text_offset).toEqual(lp.tokens.map((_: string, i: number) => lp.tokens.slice(0, i).join('').length));
    // With echo: the prompt's tokens first (the first has no log-probability: a stream model scores from the second), as model.score has them.
    const e = (await completion(char, { prompt: 'the ', max_tokens: 10, seed: 3, logprobs: 0, echo: true, ignore_eos: true })).body.choices[0];
    expect(e.logprobs.tokens.join('')).toBe(e.text);
    expect(e.logprobs.tokens.slice(0, 4)).toEqual(['t', 'h', 'e', ' ']);
    const s = await charLib.score('the ', { tokenLogProbs: true });
    expect(e.logprobs.token_logprobs[0]).toBeNull();
    e.logprobs.token_logprobs.slice(1, 4).forEach((x: number, i: number) => expect(x).toBeCloseTo(s.tokenLogProbs![i], 5));
    expect(e.logprobs.token_logprobs.slice(4)).toEqual(lp.token_logprobs);
  });

  test('logprobs: 2: the two most likely tokens at each step, with their log-probabilities', async () => {
    const a = await completion(char, { prompt: 'the ', max_tokens: 6, seed: 3, logprobs: 2, ignore_eos: true });
    expect(a.status).toBe(200);
    const lp = a.body.choices[0].logprobs;
    expect(lp.top_logprobs).toHaveLength(6);
    const context = Array.from(charLib.tokenizer!.encode('the '));
    for (const [i, top] of (lp.top_logprobs as Record<string, number>[]).entries()) {
      const p = await charLib.predictNext(context, { topK: 2 });
      expect(Object.keys(top)).toEqual(p.map((x) => x.token));
      Object.values(top).forEach((x, k) => expect(x).toBeCloseTo(Math.log(p[k].probability), 5));
      context.push(charLib.tokenizer!.encode(lp.tokens[i])[0]);
    }
  });

  test('stop strings: the text ends before the first one (left out), finish_reason "stop"', async () => {
    const full = (await completion(char, { prompt: 'the ', max_tokens: 40, seed: 11, ignore_eos: true })).body.choices[0].text as string;
    // Stop strings taken from the text itself (its 10th-11th characters, and one that never occurs).
    const stop = full.slice(10, 12);
    const a = await completion(char, { prompt: 'the ', max_tokens: 40, seed: 11, ignore_eos: true, stop: ['zzzzq', stop] });
    expect(a.body.choices[0]).toEqual({ index: 0, text: full.slice(0, full.indexOf(stop)), finish_reason: 'stop', logprobs: null });
    // The same, streamed: the stop string never shows in a chunk.
    const sse = await (await fetch(`${char.base}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'the ', max_tokens: 40, seed: 11, ignore_eos: true, stop, stream: true }),
    })).text();
    const chunks = events(sse).slice(0, -1) as any[];
    expect(chunks.map((c) => c.choices[0].text).join('')).toBe(a.body.choices[0].text);
    expect(chunks.at(-1).choices[0].finish_reason).toBe('stop');
  });

  test('streaming (SSE): chunks of the non-streamed text, a finish_reason chunk per choice, usage, [DONE]', async () => {
    const body = { prompt: ['the ', 'a bird '], n: 2, max_tokens: 12, seed: 21, stream_options: { include_usage: true } };
    const plain = await completion(char, body);
    const r = await fetch(`${char.base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const all = events(await r.text());
    expect(all.at(-1)).toBe('[DONE]');
    const chunks = all.slice(0, -1) as any[];
    const usage = chunks.at(-1);
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual(plain.body.usage);
    const ids = new Set(chunks.map((c) => c.id));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(/^cmpl-/);
    for (const c of chunks) {
      expect(c.object).toBe('text_completion');
      expect(c.model).toBe('char');
    }
    for (const choice of plain.body.choices) {
      const mine = chunks.slice(0, -1).filter((c) => c.choices[0].index === choice.index).map((c) => c.choices[0]);
      // Every chunk but the last carries text and no finish_reason; the last carries only the finish_reason.
      expect(mine.slice(0, -1).every((c) => c.finish_reason === null && c.text !== '')).toBe(true);
      expect(mine.at(-1)).toEqual({ index: choice.index, text: '', finish_reason: choice.finish_reason, logprobs: null });
      expect(mine.map((c) => c.text).join('')).toBe(choice.text);
    }
    // Without include_usage: no usage chunk.
    const bare = events(await (await fetch(`${char.base}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'the ', max_tokens: 3, stream: true }),
    })).text());
    expect(bare.at(-1)).toBe('[DONE]');
    expect((bare.slice(0, -1) as any[]).every((c) => c.choices.length === 1 && c.usage === undefined)).toBe(true);
  });

  // What the official `openai` SDK sends and parses (checked by hand with it; this keeps it without the dependency).
  test('as the OpenAI SDK speaks it: its headers accepted, one `data:` line per event, errors it reads code and param from', async () => {
    const sdk = { 'content-type': 'application/json', accept: 'application/json', authorization: 'Bearer sk-anything', 'x-stainless-lang': 'js', 'x-stainless-retry-count': '0' };
    const r = await fetch(`${char.base}/v1/completions`, { method: 'POST', headers: sdk, body: JSON.stringify({ model: 'char', prompt: 'the ', max_tokens: 3, stream: true }) });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    // The SDK's decoder splits events at blank lines and reads `data:` fields; no `event:`, no CR.
    expect(await r.text()).toMatch(/^(data: \{[^\n\r]*\}\n\n)+data: \[DONE\]\n\n$/);
    const e = await post(char.base, '/v1/completions', { model: 'char', prompt: 'the ', max_tokens: -1 }, { headers: sdk });
    expect(e.status).toBe(400);
    expect(e.body.error).toMatchObject({ code: 'invalid_value', param: 'max_tokens', type: 'invalid_request_error' });
  });

  test('a stream model needs a prompt', async () => {
    const a = await completion(char, { max_tokens: 3 });
    expect(a.status).toBe(400);
    expect(a.body.error.code).toBe('missing_field');
    expect(a.body.error.param).toBe('prompt');
  });
});

describe('completions (word model, sentences mode)', () => {
  const tokenizer = () => wordLib.tokenizer!;
  const idOf = (w: string) => tokenizer().idOf(w)!;

  test('prompt + text reads right: a space before a word, none before punctuation', async () => {
    for (const [prompt, next] of [['the cat sees the ball', '.'], ['the cat sees the ball', ','], ['the cat sees', 'the'], ['my friend finds', 'a']]) {
      // logit_bias forces the first token, whatever the model would draw.
      const a = await completion(word, { prompt, max_tokens: 1, logit_bias: { [idOf(next)]: 100 }, seed: 1 });
      expect(a.status).toBe(200);
      const text = a.body.choices[0].text;
      expect(prompt + text).toBe(tokenizer().decode([...tokenizer().encode(prompt), idOf(next)]));
      expect(text).toBe(/^\w/.test(next) ? ` ${next}` : next);
    }
    // Longer generations, plain and streamed: the prompt's tokens and the drawn ones, decoded together.
    for (const seed of [1, 2, 3, 4]) {
      const prompt = 'the dog likes';
      const g = await generated(wordLib, prompt, seed, { maxTokens: 8 });
      const a = await completion(word, { prompt, max_tokens: 8, seed });
      expect(prompt + a.body.choices[0].text).toBe(tokenizer().decode([...tokenizer().encode(prompt), ...g.ids]));
      const streamed = events(await (await fetch(`${word.base}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: 8, seed, stream: true }),
      })).text()).slice(0, -1) as any[];
      expect(streamed.map((c) => c.choices[0].text).join('')).toBe(a.body.choices[0].text);
    }
  });

  test('no prompt starts a sentence; <eos> finishes with "stop"', async () => {
    const a = await completion(word, { max_tokens: 30, seed: 8 });
    expect(a.status).toBe(200);
    expectCompletionShape(a.body, 'word', 1);
    const g = await generated(wordLib, undefined, 8, { maxTokens: 30 });
    expect(a.body.choices[0].text).toBe(g.text);
    expect(a.body.usage.prompt_tokens).toBe(0);
    const eos = await completion(word, { prompt: 'the cat', max_tokens: 5, logit_bias: { [idOf('<eos>')]: 100 } });
    expect(eos.body.choices[0]).toEqual({ index: 0, text: '', finish_reason: 'stop', logprobs: null });
    expect(eos.body.usage.completion_tokens).toBe(0);
    // ignore_eos: it goes on through sentence ends, for max_tokens tokens.
    const on = await completion(word, { prompt: 'the cat', max_tokens: 5, ignore_eos: true, logit_bias: { [idOf('<eos>')]: 100 } });
    expect(on.body.choices[0].finish_reason).toBe('length');
    expect(on.body.usage.completion_tokens).toBe(5);
  });
});

describe('the other endpoints', () => {
  test('/v1/next: the library\'s predictions, by text or token ids, with a prefix', async () => {
    const a = await post(char.base, '/v1/next', { context: 'the ca', top_k: 4 });
    expect(a.status).toBe(200);
    expect(Object.keys(a.body).sort()).toEqual(['model', 'predictions']);
    expect(a.body.model).toBe('char');
    const lib = await charLib.predictNext('the ca', { topK: 4 });
    expect(a.body.predictions.map((p: any) => [p.token, p.id])).toEqual(lib.map((p) => [p.token, p.id]));
    a.body.predictions.forEach((p: any, i: number) => {
      expect(Object.keys(p).sort()).toEqual(['id', 'logprob', 'probability', 'token']);
      expect(p.probability).toBeCloseTo(lib[i].probability, 6);
      expect(p.logprob).toBeCloseTo(Math.log(lib[i].probability), 5);
    });
    const byIds = await post(char.base, '/v1/next', { context: Array.from(charLib.tokenizer!.encode('the ca')), top_k: 4 });
    expect(byIds.body).toEqual(a.body);
    // The default top_k is 5; a prefix keeps the tokens that start with it.
    expect((await post(char.base, '/v1/next', { context: 'the ' })).body.predictions).toHaveLength(5);
    const t = await post(word.base, '/v1/next', { context: 'the cat', prefix: 's', top_k: 3 });
    const libT = await wordLib.predictNext('the cat', { prefix: 's', topK: 3 });
    expect(t.body.predictions.map((p: any) => p.token)).toEqual(libT.map((p) => p.token));
    for (const p of t.body.predictions) expect(p.token.startsWith('s')).toBe(true);
  });

  test('/v1/score: model.score on the same checkpoint (one input, several, token ids)', async () => {
    for (const [s, lib] of [[char, charLib], [word, wordLib]] as const) {
      const inputs = ['the cat sees the ball .', 'a bird finds a door, then sleeps .', 'my friend likes the cake .'];
      const a = await post(s.base, '/v1/score', { input: inputs, token_logprobs: true });
      expect(a.status).toBe(200);
      expect(Object.keys(a.body).sort()).toEqual(['data', 'model', 'usage']);
      const want = await lib.score(inputs, { tokenLogProbs: true });
      expect(a.body.data).toHaveLength(3);
      a.body.data.forEach((d: any, i: number) => {
        expect(Object.keys(d).sort()).toEqual(['index', 'logprob', 'perplexity', 'token_logprobs', 'tokens', 'unknown']);
        expect(d.index).toBe(i);
        expect(d.logprob).toBeCloseTo(want[i].logProb, 3);
        expect(d.perplexity).toBeCloseTo(want[i].perplexity, 3);
        expect(d.tokens).toBe(want[i].tokens);
        expect(d.unknown).toBe(want[i].unknown);
        d.token_logprobs.forEach((x: number, k: number) => expect(x).toBeCloseTo(want[i].tokenLogProbs![k], 4));
      });
      expect(a.body.usage).toEqual({ prompt_tokens: inputs.reduce((n, t) => n + lib.tokenizer!.encode(t).length, 0) });
      // One input: one result, without token_logprobs unless asked; token ids score the same.
      const one = await post(s.base, '/v1/score', { input: Array.from(lib.tokenizer!.encode(inputs[0])) });
      expect(one.body.data).toHaveLength(1);
      expect(one.body.data[0].token_logprobs).toBeUndefined();
      expect(one.body.data[0].logprob).toBeCloseTo(want[0].logProb, 3);
    }
  });

  test('/v1/models: the served model and its configuration', async () => {
    for (const [s, lib, id, mode, kind] of [[char, charLib, 'char', 'stream', 'char'], [word, wordLib, 'word', 'sentences', 'word']] as const) {
      const a = await get(s.base, '/v1/models');
      expect(a.status).toBe(200);
      expect(a.body.object).toBe('list');
      expect(a.body.data).toHaveLength(1);
      const c = lib.config;
      expect(a.body.data[0]).toMatchObject({
        id, object: 'model', owned_by: 'rnnlm', cell: c.cell, layers: c.layers, hidden_size: c.hiddenSize, vocab_size: c.vocabSize,
        parameters: lib.parameterCount, mode, tokenizer: kind, device: 'cpu',
      });
      expect(Number.isInteger(a.body.data[0].created)).toBe(true);
    }
  });

  test('/health', async () => {
    const a = await get(char.base, '/health');
    expect(a.status).toBe(200);
    expect(a.body).toEqual({ status: 'ok' });
  });

  test('/metrics: Prometheus text with the named metrics; the counters move with each request', async () => {
    const before = await scrape(char.base);
    for (const name of ['rnnlm_tokens_generated_total', 'rnnlm_prompt_tokens_total', 'rnnlm_queue_depth', 'rnnlm_requests_active', 'rnnlm_batch_rows', 'process_resident_memory_bytes']) {
      expect(before.has(name), name).toBe(true);
    }
    const a = await completion(char, { prompt: 'the dog', max_tokens: 7, ignore_eos: true });
    await post(char.base, '/v1/completions', { prompt: 'the', max_tokens: -1 });
    const after = await scrape(char.base);
    const at = (m: Map<string, number>, k: string) => m.get(k) ?? 0;
    const ok = 'rnnlm_requests_total{endpoint="/v1/completions",status="200"}';
    const bad = 'rnnlm_requests_total{endpoint="/v1/completions",status="400"}';
    expect(at(after, ok) - at(before, ok)).toBe(1);
    expect(at(after, bad) - at(before, bad)).toBe(1);
    expect(at(after, 'rnnlm_tokens_generated_total') - at(before, 'rnnlm_tokens_generated_total')).toBe(a.body.usage.completion_tokens);
    expect(at(after, 'rnnlm_prompt_tokens_total') - at(before, 'rnnlm_prompt_tokens_total')).toBe(a.body.usage.prompt_tokens);
    const count = 'rnnlm_request_duration_seconds_count{endpoint="/v1/completions"}';
    expect(at(after, count) - at(before, count)).toBe(2);
    expect(after.get('rnnlm_request_duration_seconds_bucket{le="+Inf",endpoint="/v1/completions"}')).toBe(after.get(count));
    // The previous scrape is counted too (its answer was complete before this one began).
    expect(after.get('rnnlm_requests_total{endpoint="/metrics",status="200"}')).toBeGreaterThanOrEqual(1);
    for (const g of ['rnnlm_queue_depth', 'rnnlm_requests_active', 'rnnlm_batch_rows']) expect(after.get(g), g).toBe(0);
  });
});
