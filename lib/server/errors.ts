/**
 * The server's errors: every answer that is not a success is `{ error: { code, message, param,
 * type } }` (OpenAI's shape) with an HTTP status, whatever raised it — a schema check, Fastify's
 * body parser, the library, or the server's own limits.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { RnnlmError } from '../errors';

export type ErrorCode =
  | 'invalid_json' | 'missing_field' | 'unknown_field' | 'invalid_type' | 'invalid_value' | 'vocabulary'
  | 'not_found' | 'model_not_found' | 'body_too_large' | 'headers_too_large' | 'unsupported_media_type'
  | 'loading' | 'overloaded' | 'shutting_down' | 'timeout' | 'internal_error';

const TYPES: Record<number, string> = {
  400: 'invalid_request_error', 404: 'invalid_request_error', 413: 'invalid_request_error', 415: 'invalid_request_error',
  431: 'invalid_request_error', 503: 'server_unavailable', 408: 'timeout_error', 504: 'timeout_error', 500: 'server_error',
};

export interface ErrorBody {
  error: { code: ErrorCode; message: string; param: string | null; type: string };
}

/** An answer the server gives on purpose; `retryAfter` (seconds) is sent as Retry-After. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly param: string | null = null,
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  body(): ErrorBody {
    return { error: { code: this.code, message: this.message, param: this.param, type: TYPES[this.status] ?? 'server_error' } };
  }
}

export const badValue = (param: string, message: string) => new HttpError(400, 'invalid_value', message, param);
export const badType = (param: string, message: string) => new HttpError(400, 'invalid_type', message, param);

/** An ajv error as Fastify hands it over (the first one: allErrors is off). */
interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** '/stop/1' -> 'stop[1]'. */
function fieldOf(path: string): string {
  return path
    .split('/')
    .slice(1)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : `${i > 0 ? '.' : ''}${p}`))
    .join('');
}

function fromSchema(e: SchemaError): HttpError {
  const at = fieldOf(e.instancePath);
  const field = (name: string) => (at ? `${at}.${name}` : name);
  switch (e.keyword) {
    case 'required':
      return new HttpError(400, 'missing_field', `missing field '${field(String(e.params.missingProperty))}'`, field(String(e.params.missingProperty)));
    case 'additionalProperties': {
      const name = field(String(e.params.additionalProperty));
      return new HttpError(400, 'unknown_field', `unknown field '${name}'`, name);
    }
    case 'type':
      return at ? badType(at, `${at} ${e.message}`) : badType('body', `the body ${e.message} (a JSON object)`);
    default:
      return badValue(at || 'body', `${at || 'the body'} ${e.message}`);
  }
}

/** Fastify's own errors (body parsing, routing) by their codes. */
const FASTIFY: Record<string, (e: Error) => HttpError> = {
  // Fastify's parser also refuses keys that could pollute prototypes, without saying which.
  FST_ERR_CTP_INVALID_JSON_BODY: () => new HttpError(400, 'invalid_json', 'the body is not valid JSON (or has a key __proto__ or constructor.prototype, refused)', 'body'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new HttpError(400, 'invalid_json', 'the body is empty; send a JSON object', 'body'),
  FST_ERR_CTP_BODY_TOO_LARGE: () => new HttpError(413, 'body_too_large', 'the body is larger than the server accepts (--max-body-bytes)', 'body'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => new HttpError(400, 'invalid_json', 'the body does not match its content-length', 'body'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new HttpError(415, 'unsupported_media_type', 'send the body as JSON, with content-type: application/json', 'content-type'),
};

/** Any error thrown while answering, as the answer to give. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  const err = e as Error & { code?: string; validation?: SchemaError[]; statusCode?: number };
  if (err?.validation?.length) return fromSchema(err.validation[0]);
  if (err?.code && FASTIFY[err.code]) return FASTIFY[err.code](err);
  if (e instanceof RnnlmError && e.code === 'ERR_VOCAB') return new HttpError(400, 'vocabulary', e.message);
  if (e instanceof RnnlmError && e.code === 'ERR_INVALID_ARGUMENT') return badValue('body', e.message);
  if (e instanceof RnnlmError && e.code === 'ERR_DISPOSED') return new HttpError(503, 'shutting_down', 'the model was disposed', null, 1);
  // A client error Fastify raised that is not listed above (a malformed request line, say).
  if (typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new HttpError(400, 'invalid_value', err.message ?? 'bad request', null);
  }
  return new HttpError(500, 'internal_error', 'the server failed to answer; the error is in its log');
}

/** What Node's HTTP parser refuses, by its error code (anything else it refuses is malformed HTTP). */
const PARSER: Record<string, () => HttpError> = {
  ERR_HTTP_REQUEST_TIMEOUT: () => new HttpError(408, 'timeout', "the request did not arrive within the server's limit (--timeout)"),
  HPE_HEADER_OVERFLOW: () => new HttpError(431, 'headers_too_large', "the request's headers are larger than Node accepts (--max-http-header-size)"),
  HPE_CHUNK_EXTENSIONS_OVERFLOW: () => new HttpError(413, 'body_too_large', "the body's chunk extensions are larger than Node accepts"),
};

/**
 * Fastify's clientErrorHandler: a request Node refuses before Fastify sees it (malformed, headers
 * too large, not all arrived in time) is answered in the same JSON shape as every other error
 * (Fastify's default writes a shape of its own), then its connection is closed.
 */
export function clientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const e = PARSER[err.code ?? '']?.() ?? new HttpError(400, 'invalid_value', `the request is not valid HTTP (${err.code ?? err.message})`);
  // As Node does: no answer in the middle of one already begun on this connection (a stream).
  const current = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (socket.writable && !current?.headersSent) {
    const body = JSON.stringify(e.body());
    socket.write(`HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\ncontent-type: application/json; charset=utf-8\r\n`
      + `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}
