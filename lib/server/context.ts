/** What the routes share of a server: its settings, its admission, and the model once loaded. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { LanguageModel } from '../model';
import { ClientGone, type Admission, type Work } from './admission';
import { HttpError } from './errors';
import type { ServerSettings } from './options';

export class Served {
  /** The model once loaded; `failed` if loading failed. */
  loaded?: LanguageModel;
  failed?: unknown;
  closing = false;
  /** Each computing request's Work, by its raw request (the access log and metrics read its tokens). */
  readonly works = new WeakMap<object, Work>();

  constructor(
    readonly settings: ServerSettings,
    readonly admission: Admission,
  ) {}

  /** The model, or 503 while it loads. */
  model(): LanguageModel {
    if (this.loaded) return this.loaded;
    if (this.failed) throw new HttpError(503, 'loading', 'the model failed to load; see the server log', null, 5);
    throw new HttpError(503, 'loading', 'the model is loading; retry shortly', null, 1);
  }

  /** A request's `model` field, if given, must name the served model. */
  checkModelName(name: unknown): void {
    if (name !== undefined && name !== this.settings.modelId) {
      throw new HttpError(404, 'model_not_found', `the model '${String(name)}' is not served here; this server serves '${this.settings.modelId}' (GET /v1/models)`, 'model');
    }
  }

  /**
   * Runs a computing request: its Work (timeout, cancellation when its client disconnects) and,
   * inside `job`, a slot of the admission. The Work ends when the job does.
   */
  async compute<T>(request: FastifyRequest, reply: FastifyReply, job: (work: Work) => Promise<T>): Promise<T> {
    const work = this.admission.begin();
    this.works.set(request.raw, work);
    // 'close' before the answer is complete: the client left (for a stream, the hijacked response).
    const onClose = () => {
      if (!reply.raw.writableEnded) work.abort(new ClientGone());
    };
    reply.raw.once('close', onClose);
    try {
      return await job(work);
    } finally {
      work.end();
    }
  }
}
