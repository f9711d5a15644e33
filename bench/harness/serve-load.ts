/**
 * One load run of the server benchmark: autocannon (keep-alive connections, one request in
 * flight on each) against one endpoint for a number of seconds. Each request is its own: a
 * completion of a fresh 4-word prompt with its own seed, or the predictions after a fresh 8-word
 * context. Every answer is counted by status and timed (from its request's setup, just before it
 * is written, to its last byte: autocannon's own histogram keeps whole milliseconds, too coarse
 * for /v1/next); every completion's body is parsed (its tokens are usage.completion_tokens) and
 * every 16th /v1/next body is checked.
 */
import autocannon from 'autocannon';
import { Random } from '../../lib/util/random';
import { COMPLETION_TOKENS, CONTEXT_WORDS, NEXT_TOP_K, PROMPT_WORDS, type Endpoint, type ErrorCounts, type ServeRun } from './serve';
import { quantile } from './stats';

/** One /v1/next answer in this many is parsed and checked (parsing them all would take the server's CPU). */
const CHECK_EVERY = 16;
const SAMPLE_CHARS = 300;

export interface LoadSpec {
  url: string;
  endpoint: Endpoint;
  connections: number;
  seconds: number;
  /** Seconds without an answer before a request counts as a timeout. */
  clientTimeout: number;
  /** The model's words (requests are made of them). */
  words: string[];
  /** Seeds the prompts and contexts, and the completions' first seed. */
  seed: number;
}

export type LoadResult = Pick<ServeRun, 'seconds' | 'answered' | 'tokens' | 'shortCompletions' | 'latencyMs' | 'errors'>;

/** What is wrong with a 2xx body of the endpoint, or undefined; completions also return their tokens. */
function check(endpoint: Endpoint, body: string): { wrong?: string; tokens?: number } {
  let b: Record<string, unknown>;
  try {
    b = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return { wrong: 'not JSON' };
  }
  if (endpoint === '/v1/completions') {
    const choices = b.choices as { text?: unknown }[] | undefined;
    const tokens = (b.usage as { completion_tokens?: unknown } | undefined)?.completion_tokens;
    if (b.object !== 'text_completion' || !Array.isArray(choices) || choices.length !== 1 || typeof choices[0].text !== 'string') return { wrong: 'not one text_completion choice' };
    if (!Number.isInteger(tokens)) return { wrong: 'no usage.completion_tokens' };
    return { tokens: tokens as number };
  }
  const p = b.predictions as { token?: unknown; id?: unknown; probability?: unknown }[] | undefined;
  if (!Array.isArray(p) || p.length !== NEXT_TOP_K) return { wrong: `not ${NEXT_TOP_K} predictions` };
  const bad = p.find((x) => typeof x.token !== 'string' || !Number.isInteger(x.id) || !(typeof x.probability === 'number' && x.probability > 0 && x.probability <= 1));
  return bad ? { wrong: `a prediction is not { token, id, probability }: ${JSON.stringify(bad)}` } : {};
}

const r2 = (x: number) => Math.round(x * 100) / 100;

/** Percentiles of the answers' latencies as measured here, and autocannon's histogram (whole milliseconds) beside them. */
function latencyOf(ms: number[], histogram: autocannon.Histogram): NonNullable<LoadResult['latencyMs']> {
  const sorted = Float64Array.from(ms).sort();
  return {
    p50: r2(quantile(sorted, 0.5)), p99: r2(quantile(sorted, 0.99)), max: r2(sorted[sorted.length - 1]), mean: r2(sorted.reduce((a, b) => a + b, 0) / sorted.length),
    histogram: { p50: histogram.p50, p99: histogram.p99 },
  };
}

/** Runs the load; rejects only if autocannon itself fails. */
export async function load(spec: LoadSpec): Promise<LoadResult> {
  const rng = new Random(spec.seed);
  const text = (n: number) => Array.from({ length: n }, () => spec.words[Math.floor(rng.next() * spec.words.length)]).join(' ');
  let k = 0;
  const body = spec.endpoint === '/v1/completions'
    ? () => JSON.stringify({ prompt: text(PROMPT_WORDS), max_tokens: COMPLETION_TOKENS, ignore_eos: true, seed: (spec.seed + k++) % 2 ** 31 })
    : () => JSON.stringify({ context: text(CONTEXT_WORDS), top_k: NEXT_TOP_K });
  const errors: ErrorCounts = { status: {}, timeouts: 0, connection: 0, badBodies: 0, checkedBodies: 0, samples: {} };
  let tokens = 0, short = 0, answers = 0;
  const latencies: number[] = [];
  // Each connection has one request in flight and its own context, which the answer's callback
  // is given before the connection's next request is set up.
  const setupRequest = (req: autocannon.Request, context: Record<string, unknown>) => {
    context.sent = performance.now();
    return { ...req, body: body() };
  };
  const onResponse = (status: number, text: string, context: Record<string, unknown>) => {
    if (status < 200 || status >= 300) {
      errors.samples![status] ??= text.slice(0, SAMPLE_CHARS);
      return;
    }
    latencies.push(performance.now() - (context.sent as number));
    if (spec.endpoint === '/v1/next' && answers++ % CHECK_EVERY !== 0) return;
    errors.checkedBodies++;
    const c = check(spec.endpoint, text);
    if (c.wrong) {
      errors.badBodies++;
      errors.samples!.bad ??= `${c.wrong}: ${text.slice(0, SAMPLE_CHARS)}`;
    }
    if (c.tokens !== undefined) {
      tokens += c.tokens;
      if (c.tokens !== COMPLETION_TOKENS) short++;
    }
  };
  const r = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.seconds,
    timeout: spec.clientTimeout,
    excludeErrorStats: true,
    requests: [{
      method: 'POST', path: spec.endpoint, headers: { 'content-type': 'application/json' },
      setupRequest,
      onResponse,
    }],
  });
  for (const [status, { count }] of Object.entries(r.statusCodeStats)) if (!status.startsWith('2')) errors.status[status] = count;
  errors.timeouts = r.timeouts;
  errors.connection = r.errors - r.timeouts;
  if (Object.keys(errors.samples!).length === 0) delete errors.samples;
  const answered = r['2xx'];
  return {
    seconds: r.duration,
    answered,
    ...(spec.endpoint === '/v1/completions' ? { tokens, shortCompletions: short } : {}),
    ...(latencies.length > 0 ? { latencyMs: latencyOf(latencies, r.latency) } : {}),
    errors,
  };
}
