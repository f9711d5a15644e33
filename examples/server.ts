/**
 * One model shared by every request of a Fastify server: concurrent calls are batched together
 * (continuous batching), autocomplete keeps a session per user, reranking scores candidates, and
 * generation streams tokens as server-sent events, cancelled when the client goes away.
 *
 *   node --import tsx examples/server.ts [model.safetensors] [--port 8080]
 *
 * Without a model file it trains a small one for a few seconds on a built-in text (for trying it).
 * Routes (JSON in and out):
 *   POST /generate        { prompt, maxTokens, temperature, topP, seed, stream }  -> { text } or text/event-stream
 *   POST /next            { context, topK, prefix }                              -> [{ token, probability }]
 *   POST /score           { texts: [...] }                                      -> [{ logProb, perplexity, ... }]
 *   POST /sessions        {}                                                    -> { id }
 *   POST /sessions/:id    { append, topK, prefix }                              -> [{ token, probability }] (autocomplete)
 *   DELETE /sessions/:id
 */
import Fastify from 'fastify';
import { randomUUID } from 'node:crypto';
import { LanguageModel, RnnlmError, WordTokenizer, type Session } from '../lib/index';

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
  const sessions = new Map<string, Session>();
  // On close, connections still open (idle keep-alive, or a client holding an ended stream) are closed too.
  const app = Fastify({ forceCloseConnections: true });
  /** The requests in flight, each cancelled when its client disconnects or the server shuts down. */
  const inFlight = new Set<AbortController>();
  /** Aborted when the client disconnects or the server shuts down: the request's batch row is freed at the next step. */
  const cancelled = (reply: { raw: NodeJS.EventEmitter }) => {
    const ac = new AbortController();
    inFlight.add(ac);
    // 'close' also comes after a complete answer, when aborting is a no-op (the call is over).
    reply.raw.once('close', () => {
      inFlight.delete(ac);
      ac.abort(new Error('client disconnected'));
    });
    return ac.signal;
  };

  /** Bad input from the client is a 400 with the library's message; anything else a 500. */
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const bad = err instanceof RnnlmError && (err.code === 'ERR_INVALID_ARGUMENT' || err.code === 'ERR_VOCAB');
    void reply.code(bad ? 400 : (err.statusCode ?? 500)).send({ error: err.message, code: err instanceof RnnlmError ? err.code : undefined });
  });

  app.post<{ Body: { prompt?: string; maxTokens?: number; temperature?: number; topP?: number; seed?: number; stopAtEos?: boolean; stream?: boolean } }>('/generate', async (req, reply) => {
    const { stream, ...options } = req.body ?? {};
    const signal = cancelled(reply);
    if (!stream) return { text: await model.generate({ ...options, signal }) };
    // Server-sent events on the raw response: Fastify is told it no longer sends this reply.
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    try {
      for await (const token of model.generateStream({ ...options, signal })) reply.raw.write(`data: ${JSON.stringify(token)}\n\n`);
      reply.raw.end('data: [DONE]\n\n');
    } catch (e) {
      // Ended either way: a shutdown must not leave the connection open (close() would wait for it).
      if (signal.aborted) console.log(`generate cancelled: ${(signal.reason as Error).message}`);
      reply.raw.end(signal.aborted ? undefined : `data: ${JSON.stringify({ error: (e as Error).message })}\n\n`);
    }
  });

  app.post<{ Body: { context?: string; topK?: number; prefix?: string } }>('/next', async (req, reply) => {
    const { context = '', ...options } = req.body ?? {};
    return model.predictNext(context, { ...options, signal: cancelled(reply) });
  });

  app.post<{ Body: { texts?: string[] } }>('/score', async (req, reply) => {
    return model.score(req.body?.texts ?? [], { signal: cancelled(reply) });
  });

  app.post('/sessions', async () => {
    const id = randomUUID();
    sessions.set(id, model.session());
    return { id };
  });

  app.post<{ Params: { id: string }; Body: { append?: string; topK?: number; prefix?: string } }>('/sessions/:id', async (req, reply) => {
    const session = sessions.get(req.params.id);
    if (!session) return reply.code(404).send({ error: 'no such session' });
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
      // Stop accepting, end the requests in flight, then free the model.
      for (const ac of inFlight) ac.abort(new Error('the server is shutting down'));
      void app.close().then(() => {
        model.dispose();
        process.exitCode = 0;
      });
    });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
