/**
 * The text fields of requests (`prompt`, `input`, `context`): a text, texts, token ids or lists of
 * token ids, each encoded here — so that a character the vocabulary lacks is a 400 naming the
 * item before any work starts, and the token counts (usage) are known.
 */
import { RnnlmError } from '../errors';
import type { LanguageModel } from '../model';
import { badType, badValue, HttpError } from './errors';

/** One item of a text field, encoded. */
export interface Encoded {
  ids: Int32Array;
  /** Where it was in the request: 'prompt' or 'prompt[2]'. */
  param: string;
}

/** Encodes a text field: one item (`many: false`) or a list of at most `max`. */
export function encodeField(model: LanguageModel, field: string, value: unknown, max: number): { many: boolean; items: Encoded[] } {
  const expected = `a string, an array of strings, an array of token ids, or an array of arrays of token ids`;
  if (typeof value === 'string') return { many: false, items: [encodeOne(model, field, value)] };
  if (!Array.isArray(value)) return fail(badType(field, `${field} must be ${expected}`));
  if (value.length === 0) return fail(badValue(field, `${field} is empty`));
  if (value.every((v) => typeof v === 'number')) return { many: false, items: [encodeOne(model, field, value)] };
  if (value.length > max) return fail(badValue(field, `${field} has ${value.length} items; at most ${max}`));
  if (value.every((v) => typeof v === 'string') || value.every((v) => Array.isArray(v))) {
    return { many: true, items: value.map((v, i) => encodeOne(model, `${field}[${i}]`, v)) };
  }
  return fail(badType(field, `${field} must be ${expected} (not a mix)`));
}

const fail = (e: HttpError): never => {
  throw e;
};

function encodeOne(model: LanguageModel, param: string, value: unknown): Encoded {
  const vocabSize = model.config.vocabSize;
  if (typeof value === 'string') {
    if (value.length === 0) fail(badValue(param, `${param} is empty`));
    const tokenizer = model.tokenizer;
    if (!tokenizer) fail(badType(param, `${param}: this model has no tokenizer; send token ids (integers in [0, ${vocabSize}))`));
    let ids: Int32Array;
    try {
      ids = tokenizer!.encode(value);
    } catch (e) {
      if (e instanceof RnnlmError && e.code === 'ERR_VOCAB') throw new HttpError(400, 'vocabulary', `${param}: ${e.message}`, param);
      if (e instanceof RnnlmError) throw badValue(param, `${param}: ${e.message}`);
      throw e;
    }
    if (ids.length === 0) fail(badValue(param, `${param} has no tokens (the tokenizer finds no word in it)`));
    return { ids, param };
  }
  if (!Array.isArray(value) || value.length === 0) fail(badValue(param, `${param} must be a non-empty string or array of token ids`));
  const ids = new Int32Array((value as unknown[]).length);
  (value as unknown[]).forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= vocabSize) {
      fail(badValue(`${param}[${i}]`, `${param}[${i}] must be a token id: an integer in [0, ${vocabSize}) (got ${briefly(v)})`));
    }
    ids[i] = v as number;
  });
  return { ids, param };
}

/** A value from a request, shown in a message: numbers as they are, nothing long or nested (a body may nest 100,000 deep). */
function briefly(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (typeof v === 'string') return v.length > 20 ? `${JSON.stringify(v.slice(0, 20))}...` : JSON.stringify(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}
