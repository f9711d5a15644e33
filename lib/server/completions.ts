/**
 * POST /v1/completions, in the shape of OpenAI's Completions API: prompts x n choices, each a
 * generation of the model batched with every other request, answered at once or streamed as
 * server-sent events (one chunk per token, as soon as it is safe to show).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GeneratedToken, LanguageModel } from '../model';
import { sentenceModel, textOf } from '../inference/host';
import { TokenText } from '../inference/text';
import { ClientGone, type Work } from './admission';
import type { Served } from './context';
import { HttpError, badType, badValue, toHttpError } from './errors';
import { encodeField, type Encoded } from './inputs';

/** Prompts in one request, choices per prompt, and both together at most. */
const MAX_PROMPTS = 64, MAX_N = 16, MAX_CHOICES = 64;
/** OpenAI's limit of `logprobs` (top alternatives per token). */
const MAX_LOGPROBS = 5;
/**
 * A stream's client that takes nothing for STALL_MS while more than MAX_UNSENT bytes wait for it is
 * dropped as gone (499): the generation does not wait for its reader, so one that stopped reading
 * would have all of it held in memory. (Not a cap alone: an iteration of the batch can write ~1 MB
 * at once, more than a fresh connection's kernel buffers take, to a client that reads at once.)
 */
const MAX_UNSENT = 1 << 20, STALL_MS = 2000;

export interface CompletionRequest {
  model?: string;
  prompt?: unknown;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  n?: number;
  stop?: unknown;
  seed?: number;
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  logprobs?: number | null;
  echo?: boolean;
  logit_bias?: Record<string, number> | null;
  ignore_eos?: boolean;
  user?: string;
  presence_penalty?: number;
  frequency_penalty?: number;
  best_of?: number;
  suffix?: null;
}

/** The body's JSON schema: types, ranges and known fields (the rest is checked in code, below). */
export const completionSchema = (maxTokens: number) => ({
  type: 'object',
  additionalProperties: false,
  properties: {
    model: { type: 'string' },
    prompt: {},
    max_tokens: { type: 'integer', minimum: 0, maximum: maxTokens },
    temperature: { type: 'number', minimum: 0, maximum: 2 },
    top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    top_k: { type: 'integer', minimum: 0 },
    n: { type: 'integer', minimum: 1, maximum: MAX_N },
    stop: {},
    seed: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 },
    stream: { type: 'boolean' },
    stream_options: { type: ['object', 'null'], additionalProperties: false, properties: { include_usage: { type: 'boolean' } } },
    logprobs: { type: ['integer', 'null'], minimum: 0, maximum: MAX_LOGPROBS },
    echo: { type: 'boolean' },
    logit_bias: {
      type: ['object', 'null'], propertyNames: { pattern: '^[0-9]{1,9}$' },
      additionalProperties: { type: 'number', minimum: -100, maximum: 100 },
    },
    ignore_eos: { type: 'boolean' },
    user: { type: 'string' },
    presence_penalty: { type: 'number' },
    frequency_penalty: { type: 'number' },
    best_of: { type: 'integer', minimum: 1 },
    suffix: { type: 'null' },
  },
});

interface Choice {
  index: number;
  prompt: Encoded | null;
  seed?: number;
}

interface Logprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[] | null;
  text_offset: number[];
}

interface ChoiceResult {
  index: number;
  text: string;
  finish_reason: 'stop' | 'length';
  logprobs: Logprobs | null;
  /** Tokens drawn. */
  tokens: number;
}

/** What the checks make of a request: its choices and the generation options they share. */
interface Plan {
  choices: Choice[];
  promptTokens: number;
  maxTokens: number;
  logprobs: number | null;
  echo: boolean;
  options: {
    temperature?: number; topP?: number; topK?: number; stop?: string[]; stopAtEos: boolean;
    logitBias?: Map<number, number>;
  };
}

function plan(model: LanguageModel, b: CompletionRequest): Plan {
  const n = b.n ?? 1;
  if (b.best_of !== undefined && b.best_of !== n) throw badValue('best_of', `best_of must equal n (${n}): rnnlm returns every choice it draws`);
  for (const k of ['presence_penalty', 'frequency_penalty'] as const) {
    if (b[k] !== undefined && b[k] !== 0) throw badValue(k, `${k} is not supported (only 0)`);
  }
  let prompts: (Encoded | null)[];
  if (b.prompt === undefined) {
    if (!sentenceModel(model)) {
      throw new HttpError(400, 'missing_field', "missing field 'prompt': this model was trained on a stream of text and continues a prompt", 'prompt');
    }
    prompts = [null]; // a sentence model starts a sentence
  } else {
    prompts = encodeField(model, 'prompt', b.prompt, MAX_PROMPTS).items;
  }
  if (prompts.length * n > MAX_CHOICES) throw badValue('n', `${prompts.length} prompts x n = ${n} is ${prompts.length * n} choices; at most ${MAX_CHOICES}`);
  const vocabSize = model.config.vocabSize;
  if (b.top_k !== undefined && b.top_k > vocabSize) throw badValue('top_k', `top_k must be <= the vocabulary size, ${vocabSize} (got ${b.top_k})`);
  let logitBias: Map<number, number> | undefined;
  if (b.logit_bias) {
    logitBias = new Map();
    for (const [key, bias] of Object.entries(b.logit_bias)) {
      const id = Number(key);
      // Named as the schema's errors name its keys (errors.ts, fieldOf).
      if (id >= vocabSize) throw badValue(`logit_bias[${key}]`, `logit_bias[${key}]: ${key} is not a token id in [0, ${vocabSize})`);
      logitBias.set(id, bias);
    }
  }
  const choices: Choice[] = [];
  prompts.forEach((prompt, p) => {
    for (let j = 0; j < n; j++) choices.push({ index: p * n + j, prompt, seed: b.seed === undefined ? undefined : (b.seed + j) % 2 ** 31 });
  });
  return {
    choices,
    promptTokens: prompts.reduce((s, p) => s + (p?.ids.length ?? 0), 0),
    maxTokens: b.max_tokens ?? 16,
    logprobs: b.logprobs ?? null,
    echo: b.echo ?? false,
    options: { temperature: b.temperature, topP: b.top_p, topK: b.top_k, stop: stopsOf(b.stop), stopAtEos: !(b.ignore_eos ?? false), logitBias },
  };
}

function stopsOf(stop: unknown): string[] | undefined {
  if (stop === undefined || stop === null) return undefined;
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list)) throw badType('stop', 'stop must be a string, an array of at most 4 strings, or null');
  if (list.length > 4) throw badValue('stop', `stop has ${list.length} strings; at most 4`);
  list.forEach((s, i) => {
    const param = typeof stop === 'string' ? 'stop' : `stop[${i}]`;
    if (typeof s !== 'string') throw badType(param, `${param} must be a string`);
    if (s.length === 0) throw badValue(param, `${param} must be a non-empty string`);
  });
  return list.length > 0 ? (list as string[]) : undefined;
}

/** The text a tokenizer puts between the prompt and the first generated token (a space between words, none before punctuation). */
function joiner(model: LanguageModel, prompt: Encoded | null, first: number): string {
  if (!prompt || prompt.ids.length === 0) return '';
  const decode = (ids: number[]) => textOf(model.tokenizer, ids);
  const a = decode([prompt.ids[prompt.ids.length - 1]]), b = decode([first]), ab = decode([prompt.ids[prompt.ids.length - 1], first]);
  return ab.startsWith(a) && ab.endsWith(b) ? ab.slice(a.length, ab.length - b.length) : '';
}

/** Logprobs of tokens as shown: their text, log-probabilities, alternatives and offsets in the choice's text. */
class LogprobsBuilder {
  readonly out: Logprobs;
  private at = 0;
  constructor(private readonly top: boolean) {
    this.out = { tokens: [], token_logprobs: [], top_logprobs: top ? [] : null, text_offset: [] };
  }

  add(text: string, logProb: number | null, top?: { token: string; logProb: number }[] | null): void {
    this.out.tokens.push(text);
    this.out.token_logprobs.push(logProb);
    this.out.text_offset.push(this.at);
    this.at += text.length;
    if (this.top) this.out.top_logprobs!.push(top ? Object.fromEntries(top.map((t) => [t.token, t.logProb])) : null);
  }
}

/** The echoed prompt: its text as the model reads it, and (with logprobs) each token's log-probability. */
async function echoOf(model: LanguageModel, prompt: Encoded | null, work: Work, lp: LogprobsBuilder | null): Promise<string> {
  if (!prompt) return '';
  const text = new TokenText([], (ids) => textOf(model.tokenizer, ids));
  const pieces = Array.from(prompt.ids, (id) => text.push(id, 0)[0]?.text ?? '');
  if (lp) {
    const s = await model.score(prompt.ids, { tokenLogProbs: true, signal: work.signal });
    const scored = s.tokenLogProbs!;
    // A sentence model scores every token after <sos> (and <eos>, left out); any other model every token after the first.
    const sentence = sentenceModel(model);
    pieces.forEach((piece, i) => lp.add(piece, sentence ? scored[i] : i === 0 ? null : scored[i - 1], null));
  }
  return pieces.join('');
}

/** Runs one choice; `onText` receives its text as it is produced (streaming). */
async function runChoice(
  model: LanguageModel, p: Plan, c: Choice, work: Work, onText?: (text: string, lp: Logprobs | null) => void,
): Promise<ChoiceResult> {
  const lp = p.logprobs === null ? null : new LogprobsBuilder(p.logprobs > 0);
  let text = p.echo ? await echoOf(model, c.prompt, work, lp) : '';
  if (text && onText) onText(text, lp && { ...lp.out });
  if (p.maxTokens === 0) return { index: c.index, text, finish_reason: 'length', logprobs: lp?.out ?? null, tokens: 0 };
  let sep: string | null = null;
  let shownFrom = lp ? lp.out.tokens.length : 0;
  const g = await model.generate({
    ...p.options, prompt: c.prompt?.ids, maxTokens: p.maxTokens, seed: c.seed, signal: work.signal, details: true,
    topLogProbs: p.logprobs ?? 0,
    onToken: (t: GeneratedToken) => {
      let piece = t.text;
      if (piece && sep === null) piece = (sep = joiner(model, c.prompt, t.id)) + piece;
      text += piece;
      lp?.add(piece, t.logProb, t.top ?? null);
      if (onText && piece) {
        onText(piece, lp && sliceLogprobs(lp.out, shownFrom));
        shownFrom = lp ? lp.out.tokens.length : 0;
      }
    },
  });
  return { index: c.index, text, finish_reason: g.finishReason === 'length' ? 'length' : 'stop', logprobs: lp?.out ?? null, tokens: g.ids.length };
}

const sliceLogprobs = (l: Logprobs, from: number): Logprobs => ({
  tokens: l.tokens.slice(from), token_logprobs: l.token_logprobs.slice(from),
  top_logprobs: l.top_logprobs?.slice(from) ?? null, text_offset: l.text_offset.slice(from),
});

export async function completions(served: Served, request: FastifyRequest<{ Body: CompletionRequest }>, reply: FastifyReply): Promise<unknown> {
  const model = served.model();
  const body = request.body;
  served.checkModelName(body.model);
  const p = plan(model, body);
  const head = { id: `cmpl-${randomUUID()}`, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: served.settings.modelId };
  return served.compute(request, reply, async (work) => {
    work.promptTokens = p.promptTokens;
    if (!body.stream) {
      const results = await served.admission.run(work, () => Promise.all(p.choices.map((c) => runChoice(model, p, c, work))));
      work.completionTokens = results.reduce((s, r) => s + r.tokens, 0);
      return {
        ...head,
        choices: results.map(({ tokens: _, ...r }) => r),
        usage: usage(p.promptTokens, work.completionTokens),
      };
    }
    await served.admission.run(work, async () => {
      // The slot is held: from here the answer is a stream (errors become an error event).
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      let taken = performance.now(); // when the client last took a chunk
      const took = () => void (taken = performance.now());
      const send = (data: unknown) => {
        res.write(`data: ${JSON.stringify(data)}\n\n`, took);
        if (res.writableLength > MAX_UNSENT && performance.now() - taken > STALL_MS && !work.signal.aborted) {
          work.abort(new ClientGone());
          res.destroy();
        }
      };
      try {
        const results = await Promise.all(p.choices.map((c) =>
          runChoice(model, p, c, work, (text, logprobs) => send({ ...head, choices: [{ index: c.index, text, finish_reason: null, logprobs }] }))
            .then((r) => {
              send({ ...head, choices: [{ index: r.index, text: '', finish_reason: r.finish_reason, logprobs: null }] });
              return r;
            })));
        work.completionTokens = results.reduce((s, r) => s + r.tokens, 0);
        if (body.stream_options?.include_usage) send({ ...head, choices: [], usage: usage(p.promptTokens, work.completionTokens) });
        res.end('data: [DONE]\n\n');
      } catch (e) {
        if (!work.gone) send(toHttpError(e).body());
        res.end();
      }
      await flushed(res, () => taken, () => work.abort(new ClientGone()));
    });
    return reply;
  });
}

/**
 * Resolves once an ended stream has been handed to the connection ('finish') or the connection
 * closed: the request is answered only then, so a shutdown that closes the connections after the
 * requests (server/index.ts) never cuts a stream's last events. A client that takes nothing for
 * STALL_MS (`taken()`: when it last took a chunk) is gone (499: `gone()` marks it) and loses its
 * connection, as during the stream.
 */
function flushed(res: import('node:http').ServerResponse, taken: () => number, gone: () => void): Promise<void> {
  if (res.writableFinished || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout;
    const check = () => {
      if (performance.now() - taken() > STALL_MS) {
        gone();
        res.destroy();
      } else timer = setTimeout(check, STALL_MS);
    };
    timer = setTimeout(check, STALL_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    res.once('finish', done);
    res.once('close', done);
  });
}

const usage = (prompt: number, completion: number) => ({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion });
