/**
 * An HTTP server for a model: OpenAI-style completions (streamed as server-sent events), next-token
 * predictions, scoring, the model list, health and Prometheus metrics — every computing request a
 * row in the model's continuous batch. `rnnlm serve` runs it; apps create it in-process:
 *
 *   import { createServer } from 'rnnlm/server';
 *   const server = createServer(model, { maxTokens: 512 });
 *   await server.listen({ port: 8080 });            // or mount server.handler in your own server
 *   process.once('SIGTERM', () => server.close());   // stop accepting, finish what is in flight
 *
 * Fastify is the HTTP layer: its JSON schemas (ajv, strict: no coercion, unknown fields refused)
 * check every body, its parser limits size and content type; errors of all kinds leave as one
 * JSON shape (errors.ts). Admission (admission.ts) bounds the work and the queue.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { createServer as httpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { invalidArgument } from '../errors';
import { LanguageModel } from '../model';
import { Admission, ClientGone } from './admission';
import { completions, completionSchema, type CompletionRequest } from './completions';
import { Served } from './context';
import { HttpError, clientError, toHttpError } from './errors';
import { Metrics } from './metrics';
import { parseServerOptions, type ServerOptions } from './options';
import { routes } from './routes';

export type { ServerOptions } from './options';
export type { ErrorBody, ErrorCode } from './errors';

export interface RnnlmServer {
  /** Resolves when the model is loaded (rejects if loading failed); until then requests are answered 503. */
  readonly ready: Promise<void>;
  /** Listens on its own HTTP server; resolves with its address (`http://127.0.0.1:8080`). Port 0: any free port. */
  listen(options?: { host?: string; port?: number }): Promise<string>;
  /** The request handler, to mount in an app's own server (node:http, or routed to from a framework before its body parser: it reads the body itself). */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Stops: new requests are refused (503, and the listener closes), requests in flight finish
   * within `timeout` seconds (default: the server's shutdownTimeout) and are then cancelled. A
   * later call may shorten the wait (`{ timeout: 0 }`: cancel now). Does not dispose the model
   * (its owner does).
   */
  close(options?: { timeout?: number }): Promise<void>;
}

/** An HTTP server answering with `model` (or the model a promise resolves with: until then, 503 loading). */
export function createServer(model: LanguageModel | Promise<LanguageModel>, options: ServerOptions = {}): RnnlmServer {
  if (!(model instanceof LanguageModel) && !(model instanceof Promise)) {
    throw invalidArgument('createServer: model must be a LanguageModel (or a promise of one, served once it resolves)');
  }
  const settings = parseServerOptions(options);
  const admission = new Admission(settings.maxConcurrent, settings.maxQueue, settings.timeoutMs);
  const served = new Served(settings, admission);
  const metrics = new Metrics({
    queued: () => admission.queued + (served.loaded?.runtimeStats.queued ?? 0),
    active: () => admission.running,
    rows: () => served.loaded?.runtimeStats.rows ?? 0,
  });

  let handle!: (req: IncomingMessage, res: ServerResponse) => void;
  const app: FastifyInstance = Fastify({
    bodyLimit: settings.maxBodyBytes,
    logger: false,
    return503OnClosing: false,
    forceCloseConnections: false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    serverFactory: (h) => {
      handle = h;
      // A request must arrive (headers and body) within its time too: by Node's default (5 minutes)
      // a body sent a byte at a time holds its connection and buffered bytes that long. Late: 408.
      const requestTimeout = Math.ceil(settings.timeoutMs);
      return httpServer({ requestTimeout, connectionsCheckingInterval: Math.min(30_000, requestTimeout) }, h);
    },
    clientErrorHandler: clientError,
  });
  // JSON only: a text/plain body is a 415 like any other type.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (request, reply) => {
    const t0 = performance.now();
    const remote = request.ip; // read now: once the socket is gone, so is its address
    // An answer its client does not read would hold its memory and connection for ever: once it is
    // all written, the client has `timeout` seconds to take it. (An answer ended after its
    // connection closed, its client gone, has nothing to wait for.)
    let closed = false, unread = false, late: NodeJS.Timeout | undefined;
    reply.raw.once('prefinish', () => {
      if (closed) return;
      late = setTimeout(() => {
        unread = true;
        reply.raw.destroy();
      }, settings.timeoutMs).unref();
    });
    reply.raw.once('close', () => {
      closed = true;
      clearTimeout(late);
      const work = served.works.get(request.raw);
      // Closed before the answer ended, or before it was read: its client left (this listener runs before the one that marks its Work gone).
      const status = work?.gone || unread || !reply.raw.writableEnded ? 499 : reply.raw.statusCode;
      const endpoint = request.routeOptions.url ?? 'other';
      const ms = performance.now() - t0;
      metrics.record(endpoint, status, ms / 1000, work?.promptTokens ?? 0, work?.completionTokens ?? 0);
      settings.accessLog?.(JSON.stringify({
        time: new Date().toISOString(), remote, method: request.method, path: request.url, status, ms: Math.round(ms * 10) / 10,
        ...(work ? { prompt_tokens: work.promptTokens, completion_tokens: work.completionTokens } : {}),
      }));
    });
    if (served.closing && request.url !== '/health') {
      void reply.header('connection', 'close');
      throw new HttpError(503, 'shutting_down', 'the server is shutting down', null, 1);
    }
  });

  app.setErrorHandler((err, request, reply) => {
    // Its client left: no one to answer, nothing to log (counted as 499 when the connection closed).
    if (err instanceof ClientGone) return void reply.code(499).send();
    const e = toHttpError(err);
    if (e.status === 500) console.error(`rnnlm serve: ${request.method} ${request.url}:`, err);
    if (e.retryAfter !== undefined) void reply.header('retry-after', String(e.retryAfter));
    void reply.code(e.status).send(e.body());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(new HttpError(404, 'not_found', `no endpoint ${request.method} ${request.url.split('?')[0]}`).body());
  });

  app.post<{ Body: CompletionRequest }>('/v1/completions', { schema: { body: completionSchema(settings.maxTokens) } }, (request, reply) =>
    completions(served, request, reply));
  routes(app, served, metrics);

  const ready = Promise.resolve(model).then(
    (m) => void (served.loaded = m),
    (e) => {
      served.failed = e;
      throw e;
    },
  );
  ready.catch(() => {}); // a caller that never awaits ready sees 503s, not an unhandled rejection
  const booted = app.ready();

  let closing: Promise<void> | undefined;
  /** Ends the wait for requests in flight at once (a later close() with a shorter timeout). */
  let hurry = () => {};
  return {
    ready,
    async listen({ host = '127.0.0.1', port = 8080 } = {}) {
      await booted;
      return app.listen({ host, port });
    },
    handler: (req, res) => void booted.then(() => handle(req, res)),
    close({ timeout = settings.shutdownMs / 1000 } = {}) {
      if (!(typeof timeout === 'number' && timeout >= 0)) throw invalidArgument(`close: timeout must be a number of seconds >= 0 (got ${String(timeout)})`);
      if (closing) {
        setTimeout(() => hurry(), timeout * 1000).unref();
        return closing;
      }
      closing = (async () => {
        served.closing = true;
        const server: Server = app.server;
        const stopped = server.listening ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
        server.closeIdleConnections();
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<boolean>((r) => {
          hurry = () => r(true);
          timer = setTimeout(hurry, timeout * 1000);
        });
        const overdue = await Promise.race([admission.settled().then(() => false), late]);
        clearTimeout(timer);
        if (overdue) {
          for (const w of admission.inFlight) w.abort(new HttpError(503, 'shutting_down', 'the server shut down before this request finished', null, 1));
          await admission.settled();
        }
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}
