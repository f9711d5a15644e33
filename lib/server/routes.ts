/** The endpoints besides completions: next-token predictions, scoring, the model list, health and metrics. */
import type { FastifyInstance } from 'fastify';
import { RnnlmError } from '../errors';
import type { Served } from './context';
import { badValue } from './errors';
import { encodeField } from './inputs';
import type { Metrics } from './metrics';

/** Inputs scored in one request at most. */
const MAX_INPUTS = 256;

const nextSchema = {
  type: 'object', additionalProperties: false, required: ['context'],
  properties: { model: { type: 'string' }, context: {}, top_k: { type: 'integer', minimum: 1, maximum: 100 }, prefix: { type: 'string', minLength: 1 } },
};
const scoreSchema = {
  type: 'object', additionalProperties: false, required: ['input'],
  properties: { model: { type: 'string' }, input: {}, token_logprobs: { type: 'boolean' } },
};

/** A library error about one field's value, as a 400 naming that field. */
function about(param: string) {
  return (e: unknown): never => {
    if (e instanceof RnnlmError && e.code === 'ERR_INVALID_ARGUMENT') throw badValue(param, e.message);
    throw e;
  };
}

export function routes(app: FastifyInstance, served: Served, metrics: Metrics): void {
  app.post<{ Body: { model?: string; context: unknown; top_k?: number; prefix?: string } }>('/v1/next', { schema: { body: nextSchema } }, async (request, reply) => {
    const model = served.model();
    const b = request.body;
    served.checkModelName(b.model);
    // An empty context asks for the model's first token (after <sos> for a sentence model).
    const empty = b.context === '' || (Array.isArray(b.context) && b.context.length === 0);
    // At most one item: a list of texts is refused by encodeField.
    const context = empty ? new Int32Array(0) : encodeField(model, 'context', b.context, 1).items[0].ids;
    if (b.top_k !== undefined && b.top_k > model.config.vocabSize) throw badValue('top_k', `top_k must be <= the vocabulary size, ${model.config.vocabSize}`);
    return served.compute(request, reply, async (work) => {
      work.promptTokens = context.length;
      const predictions = await served.admission.run(work, () =>
        model.predictNext(context, { topK: b.top_k ?? 5, prefix: b.prefix, signal: work.signal }).catch(about(b.prefix !== undefined ? 'prefix' : 'context')));
      return { model: served.settings.modelId, predictions: predictions.map((p) => ({ ...p, logprob: Math.log(p.probability) })) };
    });
  });

  app.post<{ Body: { model?: string; input: unknown; token_logprobs?: boolean } }>('/v1/score', { schema: { body: scoreSchema } }, async (request, reply) => {
    const model = served.model();
    const b = request.body;
    served.checkModelName(b.model);
    const { items } = encodeField(model, 'input', b.input, MAX_INPUTS);
    return served.compute(request, reply, async (work) => {
      work.promptTokens = items.reduce((s, i) => s + i.ids.length, 0);
      const scores = await served.admission.run(work, () =>
        model.score(items.map((i) => i.ids), { tokenLogProbs: b.token_logprobs ?? false, signal: work.signal }).catch(about('input')));
      return {
        model: served.settings.modelId,
        data: scores.map((s, index) => ({
          index, logprob: s.logProb, tokens: s.tokens, perplexity: s.perplexity, unknown: s.unknown,
          ...(s.tokenLogProbs ? { token_logprobs: s.tokenLogProbs } : {}),
        })),
        usage: { prompt_tokens: work.promptTokens },
      };
    });
  });

  const created = Math.floor(Date.now() / 1000);
  app.get('/v1/models', async () => {
    const model = served.model();
    const c = model.config;
    return {
      object: 'list',
      data: [{
        id: served.settings.modelId, object: 'model', created, owned_by: 'rnnlm',
        cell: c.cell, layers: c.layers, hidden_size: c.hiddenSize, embedding_size: c.embeddingSize, vocab_size: c.vocabSize,
        parameters: model.parameterCount, mode: model.mode ?? null, tokenizer: model.tokenizer?.kind ?? null, device: model.device,
      }],
    };
  });

  app.get('/health', async (_request, reply) => {
    const status = served.closing ? 'shutting_down' : served.loaded ? 'ok' : served.failed ? 'failed' : 'loading';
    if (status !== 'ok') void reply.code(503).header('retry-after', '1');
    return { status };
  });

  app.get('/metrics', async (_request, reply) => {
    void reply.header('content-type', metrics.contentType);
    return metrics.text();
  });
}

