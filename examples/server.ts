/**
 * An app that serves a model beside its own routes: rnnlm/server's endpoints (OpenAI-style
 * /v1/completions with streaming, /v1/next, /v1/score, /v1/models, /health, /metrics) mounted in
 * the app's Fastify server, plus per-user autocomplete sessions of the app's own. Every request of
 * both shares one model, batched together. (`npx rnnlm serve model.safetensors` runs the
 * endpoints alone.)
 *
 *   node --import tsx examples/server.ts [model.safetensors] [--port 8080]
 *
 * Without a model file it trains a small one for a few seconds on a built-in text (for trying it).
 *   POST /sessions          {}                         -> { id }
 *   POST /sessions/:id      { append, topK, prefix }   -> [{ token, probability }] (autocomplete)
 *   DELETE /sessions/:id
 */
import Fastify from 'fastify';
import { randomUUID } from 'node:crypto';
import { createServer as httpServer } from 'node:http';
import { LanguageModel, RnnlmError, WordTokenizer, type Session } from '../lib/index';
import { createServer } from '../lib/server/index'; // in an app: from 'rnnlm/server'

const args = process.argv.slice(2);
const portAt = args.indexOf('--port');
const port = portAt >= 0 ? Number(args[portAt + 1]) : 8080;
const file = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--port');

async function loadModel(): Promise<LanguageModel> {
  if (file) return LanguageModel.load(file);
  const text = 'the cat sat on the mat . the dog sat on the log . a cat saw a dog . the dog saw the cat on the mat . '.repeat(50);
  const model = await LanguageModel.create({ tokenizer: WordTokenizer.fit(text), embeddingSize: 32, hiddenSize: 32, layers: 1 });
  await model.fit(text, { epochs: 3, batchSize: 8, seqLength: 16, progress: false });
  return model;
}

async function main(): Promise<void> {
  const model = await loadModel();
  const lm = createServer(model, { modelId: 'demo', maxTokens: 512 });
  // One HTTP server: the model's endpoints go to rnnlm's handler, everything else to the app.
  const app = Fastify({
    serverFactory: (appHandler) =>
      httpServer((req, res) => (/^\/(v1\/|health|metrics)/.test(req.url ?? '') ? lm.handler(req, res) : appHandler(req, res))),
  });

  // Bad input to the app's routes is a 400 with the library's message.
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const bad = err instanceof RnnlmError && (err.code === 'ERR_INVALID_ARGUMENT' || err.code === 'ERR_VOCAB');
    void reply.code(bad ? 400 : (err.statusCode ?? 500)).send({ error: { code: bad ? 'invalid_value' : 'internal_error', message: err.message } });
  });

  const sessions = new Map<string, Session>();
  app.post('/sessions', async () => {
    const id = randomUUID();
    sessions.set(id, model.session());
    return { id };
  });
  app.post<{ Params: { id: string }; Body: { append?: string; topK?: number; prefix?: string } }>('/sessions/:id', async (req, reply) => {
    const session = sessions.get(req.params.id);
    if (!session) return reply.code(404).send({ error: { code: 'not_found', message: 'no such session' } });
    const { append, ...options } = req.body ?? {};
    // Only the new text is fed: each keystroke costs its own tokens, not the whole context again.
    if (append) await session.append(append);
    return session.predictNext(options);
  });
  app.delete<{ Params: { id: string } }>('/sessions/:id', async (req) => {
    sessions.get(req.params.id)?.dispose();
    return { deleted: sessions.delete(req.params.id) };
  });

  const address = await app.listen({ port, host: '127.0.0.1' });
  console.log(`listening on ${address}`);

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // Requests in flight finish (within the server's shutdownTimeout), then the app closes and the model is freed.
      void lm
        .close()
        .then(() => app.close())
        .then(() => model.dispose());
    });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
