// Hostile bodies: a seeded fuzz posts random requests to /v1/completions, /v1/next and /v1/score of
// two servers (a char model on a stream, a word model on sentences) — random JSON values, requests
// with random field values and types, random bytes, truncated JSON, huge numbers, deep nesting,
// unicode, prototype-pollution keys, odd content types. Every answer must be a success of the
// endpoint's shape or a 4xx JSON error; nothing may be a 5xx, and both servers answer /health after.
// SERVER_FUZZ_CASES scales it; SERVER_FUZZ_SEED repeats a run (its seed is printed).
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Random } from '../../lib/util/random';
import { CHAR_TEXT, charModel, get, kill, rawRequest, serve, tempDir, wordModel, type ServeProcess } from './fixtures';

const cases = Number(process.env.SERVER_FUZZ_CASES ?? 2000);
const seed = Number(process.env.SERVER_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const dir = tempDir();
const MAX_BODY = 65_536;
let servers: { s: ServeProcess; vocabSize: number }[] = [];

beforeAll(async () => {
  const paths = await Promise.all([charModel(dir), wordModel(dir)]);
  const started = await Promise.all(paths.map((p) => serve(p, '--max-tokens', '32', '--max-body-bytes', String(MAX_BODY))));
  await Promise.all(started.map((s) => s.ready));
  servers = await Promise.all(started.map(async (s) => ({ s, vocabSize: (await get(s.base, '/v1/models')).body.data[0].vocab_size as number })));
}, 60_000);

afterAll(async () => {
  try {
    for (const { s } of servers) expect((await s.stop()).ms).toBeLessThan(30_000); // idle: at once; 30 s for a loaded machine
  } finally {
    servers.forEach(({ s }) => kill(s));
  }
}, 60_000);

/** Random requests, all drawn from one seeded generator. */
class Gen {
  constructor(private readonly rng: Random, private readonly vocabSize: number) {}

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rng.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.rng.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rng.next() * items.length)];
  }

  number(): number {
    return this.pick([
      () => 0, () => -0, () => 1, () => -1, () => 0.5, () => 2, () => 16, () => 17, () => 64, () => 65, () => 100, () => 101,
      () => 2 ** 31 - 1, () => 2 ** 31, () => 2 ** 53 + 2, () => 1e308, () => -1e308, () => 5e-324, () => this.int(-10, 40),
      () => this.rng.uniform(-3, 3), () => this.vocabSize, () => this.vocabSize - 1,
    ])();
  }

  string(): string {
    return this.pick([
      () => '', () => 'the', () => 'the cat ', () => CHAR_TEXT.slice(this.int(0, 100), this.int(100, 400)),
      () => CHAR_TEXT.slice(0, this.int(500, 3000)), () => 'the Q\u0000\uD800 \u202E\u{1F600}é',
      () => Array.from({ length: this.int(1, 40) }, () => String.fromCodePoint(this.pick([this.int(0, 0x7f), this.int(0x80, 0xffff), this.int(0x10000, 0x10ffff)]))).join('').replace(/[\uD800-\uDFFF]/g, '\uFFFD'),
      () => this.pick(['__proto__', 'constructor', 'prototype', 'toString', '<eos>', '<unk>', '<sos>', '<pad>', '.', ',']),
    ])();
  }

  ids(): number[] {
    return Array.from({ length: this.int(0, 12) }, () => (this.chance(0.9) ? this.int(0, this.vocabSize - 1) : this.number()));
  }

  /** Any JSON value, nested up to `depth`. */
  value(depth = 3): unknown {
    const kinds = depth > 0 ? 7 : 4;
    switch (this.int(0, kinds - 1)) {
      case 0: return null;
      case 1: return this.chance(0.5);
      case 2: return this.number();
      case 3: return this.string();
      case 4: return Array.from({ length: this.int(0, 5) }, () => this.value(depth - 1));
      case 5: return this.ids();
      default: return Object.fromEntries(Array.from({ length: this.int(0, 4) }, () => [this.key(), this.value(depth - 1)]));
    }
  }

  key(): string {
    return this.pick([...FIELDS.completions, ...FIELDS.next, ...FIELDS.score, 'foo', '', 'constructor', 'prototype', 'toString', 'hasOwnProperty']);
  }

  /** A value a field might plausibly hold (often valid, often just out of range or of a near type). */
  field(name: string): unknown {
    if (this.chance(0.15)) return this.value(2);
    const valid = this.chance(0.7);
    switch (name) {
      case 'prompt': case 'input': case 'context':
        return this.pick([() => this.string(), () => Array.from({ length: this.int(0, 70) }, () => this.string()), () => this.ids(), () => Array.from({ length: this.int(0, 5) }, () => this.ids())])();
      case 'stop': return this.pick([() => this.string(), () => Array.from({ length: this.int(0, 6) }, () => this.string()), () => null])();
      case 'logit_bias': return Object.fromEntries(Array.from({ length: this.int(0, 3) }, () => [String(this.pick([this.int(0, this.vocabSize + 2), this.number()])), this.number()]));
      case 'stream_options': return this.pick([null, { include_usage: this.chance(0.5) }, { include_usage: 1 }, { other: true }]);
      case 'model': return this.pick(['char', 'word', 'char', 'word', 'rnnlm', '', 'gpt-4']);
      case 'stream': case 'echo': case 'ignore_eos': case 'token_logprobs': return this.chance(0.8) ? this.chance(0.5) : this.value(0);
      case 'prefix': case 'user': return this.string();
      case 'suffix': return valid ? null : this.string();
      case 'logprobs': return this.pick([null, 0, 0, 0, 1, 5, 6, -1]);
      case 'max_tokens': return valid ? this.int(0, 8) : this.number();
      case 'temperature': return valid ? this.rng.uniform(0, 2) : this.number();
      case 'top_p': return valid ? this.rng.uniform(0.01, 1) : this.number();
      case 'top_k': return valid ? this.int(0, 10) : this.number();
      case 'n': case 'best_of': return valid ? this.int(1, 4) : this.number();
      case 'seed': return valid ? this.int(0, 2 ** 31 - 1) : this.number();
      case 'presence_penalty': case 'frequency_penalty': return valid ? 0 : this.number();
      default: return this.number();
    }
  }

  /** A request of the endpoint's fields: mostly valid values, some not, some fields unknown or missing. */
  request(endpoint: Endpoint): Record<string, unknown> {
    const fields = FIELDS[endpoint];
    const body: Record<string, unknown> = {};
    if (endpoint !== 'completions' || this.chance(0.8)) body[fields[0]] = this.field(fields[0]);
    for (const f of fields.slice(1)) if (this.chance(0.25)) body[f] = this.field(f);
    if (this.chance(0.1)) body[this.key()] = this.value(2);
    return body;
  }

  /** Text of a body: JSON of a request or value, or something that is not quite JSON. */
  body(endpoint: Endpoint): string | Buffer {
    const json = () => JSON.stringify(this.chance(0.8) ? this.request(endpoint) : this.value());
    switch (this.int(0, 19)) {
      case 0: return Buffer.from(Array.from({ length: this.int(0, 200) }, () => this.int(0, 255)));
      case 1: { const t = json(); return t.slice(0, this.int(0, t.length - 1)); }
      case 2: return `{"__proto__": ${JSON.stringify(this.value(1))}, ${json().slice(1)}`;
      case 3: return `{"constructor": {"prototype": {"polluted": true}}, ${json().slice(1)}`;
      case 4: { const d = this.pick([100, 1000, 20_000, 40_000]); return `{"${FIELDS[endpoint][0]}": ${'['.repeat(d)}${']'.repeat(d)}}`; }
      case 5: { const d = this.pick([100, 5000]); return `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`; }
      case 6: return `{"max_tokens": ${this.pick(['1e999', '-1e999', '123456789012345678901234567890', '1.0', '-0', '0e5'])}, "prompt": "the", "n": ${this.pick(['1e400', '1', '2.0'])}}`;
      case 7: return `{"${FIELDS[endpoint][0]}": "the", "${FIELDS[endpoint][0]}": 5}`;
      case 8: return `{"${FIELDS[endpoint][0]}": "the\\ud800 \\u0000 \\u202e"}`;
      case 9: return 'x'.repeat(this.pick([10, MAX_BODY + 1]));
      default: return json();
    }
  }

  contentType(): string | undefined {
    return this.chance(0.9) ? 'application/json' : this.pick(['application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', undefined, 'application/jsonx', 'APPLICATION/JSON']);
  }
}

const FIELDS = {
  completions: ['prompt', 'max_tokens', 'temperature', 'top_p', 'top_k', 'n', 'stop', 'seed', 'stream', 'stream_options', 'logprobs', 'echo', 'logit_bias', 'ignore_eos', 'model', 'user', 'presence_penalty', 'frequency_penalty', 'best_of', 'suffix'],
  next: ['context', 'top_k', 'prefix', 'model'],
  score: ['input', 'token_logprobs', 'model'],
} as const;
type Endpoint = keyof typeof FIELDS;

const CODES = ['invalid_json', 'missing_field', 'unknown_field', 'invalid_type', 'invalid_value', 'vocabulary', 'not_found', 'model_not_found', 'body_too_large', 'unsupported_media_type'];

/** What is wrong with an answer (its status, headers and text), or null. */
function problem(endpoint: Endpoint, status: number, type: string, text: string): string | null {
  if (status >= 500) return `status ${status}`;
  if (status === 200 && type.startsWith('text/event-stream')) {
    if (endpoint !== 'completions') return 'a stream from another endpoint';
    if (!text.endsWith('data: [DONE]\n\n')) return 'a stream that does not end with [DONE]';
    for (const e of text.slice(0, -2).split('\n\n').slice(0, -1)) {
      if (!e.startsWith('data: ')) return `an event that is not data: ${e.slice(0, 80)}`;
      const c = JSON.parse(e.slice(6));
      if (c.object !== 'text_completion' || !Array.isArray(c.choices)) return `a chunk of another shape: ${e.slice(0, 200)}`;
    }
    return null;
  }
  if (!type.startsWith('application/json')) return `content-type ${type}`;
  let b: any;
  try {
    b = JSON.parse(text);
  } catch {
    return 'an answer that is not JSON';
  }
  if (status === 200) {
    const ok = endpoint === 'completions' ? b.object === 'text_completion' && Array.isArray(b.choices) && b.choices.every((c: any) => typeof c.text === 'string') && Number.isInteger(b.usage?.total_tokens)
      : endpoint === 'next' ? Array.isArray(b.predictions) && b.predictions.every((p: any) => typeof p.token === 'string' && p.probability >= 0 && p.probability <= 1)
        : Array.isArray(b.data) && b.data.every((d: any) => typeof d.logprob === 'number') && Number.isInteger(b.usage?.prompt_tokens);
    return ok ? null : `a success of another shape: ${text.slice(0, 200)}`;
  }
  if (![400, 404, 413, 415].includes(status)) return `status ${status}`;
  const e = b?.error;
  const shaped = Object.keys(b).length === 1 && e && Object.keys(e).sort().join() === 'code,message,param,type' && CODES.includes(e.code)
    && typeof e.message === 'string' && e.message !== '' && (e.param === null || typeof e.param === 'string') && typeof e.type === 'string';
  return shaped ? null : `an error of another shape: ${text.slice(0, 200)}`;
}

test(`${cases} random bodies: every answer a success or a 4xx JSON error; the servers live on`, async () => {
  console.log(`server fuzz: ${cases} cases, seed ${seed} (SERVER_FUZZ_SEED=${seed} repeats them)`);
  const rng = new Random(seed);
  // One generator per server (vocabulary sizes differ); the cases are drawn in order, then sent 8 at a time.
  const gens = servers.map(({ vocabSize }) => new Gen(rng, vocabSize));
  const all = Array.from({ length: cases }, (_, i) => {
    const k = rng.next() < 0.5 ? 0 : 1;
    const endpoint = gens[k].pick(['completions', 'completions', 'next', 'score'] as const);
    return { i, k, endpoint, body: gens[k].body(endpoint), type: gens[k].contentType() };
  });
  const failures: string[] = [];
  const counts = new Map<number, number>();
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < all.length) {
      const c = all[next++];
      const r = await rawRequest(servers[c.k].s.base, 'POST', `/v1/${c.endpoint}`, c.body, c.type ? { 'content-type': c.type } : {});
      counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
      const p = problem(c.endpoint, r.status, String(r.headers['content-type'] ?? ''), r.text);
      if (p) failures.push(`case ${c.i} (${['char', 'word'][c.k]} /v1/${c.endpoint}, ${c.type}): ${p}; body: ${String(c.body).slice(0, 300)}`);
    }
  }));
  console.log(`server fuzz: answers by status: ${JSON.stringify(Object.fromEntries([...counts].sort()))}`);
  expect(failures.slice(0, 10), `${failures.length} bad answers (seed ${seed})`).toEqual([]);
  // Successes and several kinds of refusal were exercised, not just one.
  expect(counts.get(200) ?? 0).toBeGreaterThan(cases / 20);
  for (const status of [400, 415]) expect(counts.get(status) ?? 0, `status ${status}`).toBeGreaterThan(0);
  for (const { s } of servers) {
    expect(s.child.exitCode).toBeNull();
    expect((await get(s.base, '/health')).body).toEqual({ status: 'ok' });
    // No request was an internal error (those are logged on stderr).
    expect(s.stderr).toBe('');
  }
}, 120_000);
