/**
 * User data -> token ids, validated before any work: text through the model's tokenizer, token
 * ids checked against the vocabulary. Token ids are taken as they are: no id is special, none is
 * added (a sentence of ids keeps exactly its ids) and none is left out of the loss.
 */
import { RnnlmError, invalidArgument, plural } from './errors';
import { EOS_ID, SOS_ID, type Tokenizer } from './tokenizers';

/** 'stream': one text, batchified into columns; 'sentences': independent sequences, padded in batches. */
export type DataMode = 'stream' | 'sentences';
/** Token ids, as accepted at run time (a Buffer or another typed array is refused with a reason). */
export type TokenIds = readonly number[] | Int32Array | Uint32Array | Uint16Array;
/** Text for stream mode, or sentences; token ids are accepted wherever text is. */
export type TextInput = string | string[] | TokenIds | TokenIds[];

export function isIdArray(v: unknown): v is TokenIds {
  return v instanceof Int32Array || v instanceof Uint32Array || v instanceof Uint16Array || (Array.isArray(v) && (v.length === 0 || typeof v[0] === 'number'));
}

/** Why `v`, array-like but not TokenIds, is refused; undefined when it is nothing of the kind. */
function refusedIds(v: unknown): string | undefined {
  if (Buffer.isBuffer(v)) return "got a Buffer, which holds bytes, not token ids: decode it to a string first (buffer.toString('utf8'))";
  if (ArrayBuffer.isView(v)) return `got a ${v.constructor.name}; token ids are a number[], Int32Array, Uint32Array or Uint16Array`;
  return undefined;
}

/** The data checks of one model (its tokenizer, if any, and its vocabulary size). */
export class Inputs {
  constructor(
    readonly tokenizer: Tokenizer | undefined,
    readonly vocabSize: number,
  ) {}

  requireTokenizer(what: string): Tokenizer {
    if (!this.tokenizer) throw invalidArgument(`${what}: text needs a tokenizer; create the model with one, or pass token ids`);
    return this.tokenizer;
  }

  /** Text -> ids; a tokenizer's error says which data it is about. */
  encodeText(text: string, what: string): Int32Array {
    const tokenizer = this.requireTokenizer(what);
    try {
      return tokenizer.encode(text);
    } catch (e) {
      throw e instanceof RnnlmError ? new RnnlmError(e.code, `${what}: ${e.message}`) : e;
    }
  }

  checkIds(data: ArrayLike<number>, what: string): Int32Array {
    const V = this.vocabSize;
    const ids = new Int32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        throw new RnnlmError('ERR_VOCAB', `${what}: token id ${String(v)} at index ${i} is not an integer`);
      }
      if (v < 0 || v >= V) throw new RnnlmError('ERR_VOCAB', `${what}: token id ${v} at index ${i} is not in [0, ${V}) (the vocabulary size)`);
      ids[i] = v;
    }
    return ids;
  }

  /** A text's ids (through the tokenizer), or token ids checked against the vocabulary; undefined for anything else. */
  private idsOf(data: unknown, what: string): Int32Array | undefined {
    if (typeof data === 'string') return this.encodeText(data, what);
    return isIdArray(data) ? this.checkIds(data, what) : undefined;
  }

  /** A prompt or context: a text or token ids (none for undefined or ''). */
  prompt(data: unknown, what: string): Int32Array {
    if (data === undefined || data === '') return new Int32Array(0);
    const ids = this.idsOf(data, what);
    if (!ids) {
      const why = refusedIds(data);
      throw invalidArgument(`${what} must be a string or an array of token ids${why ? ` (${why})` : ''}`);
    }
    return ids;
  }

  /** Token ids of a text, or of token ids given directly (stream mode). */
  stream(data: unknown, what: string): Int32Array {
    const ids = this.idsOf(data, what);
    if (!ids) {
      const why = refusedIds(data);
      throw invalidArgument(
        `${what} must be a string or an array of token ids in stream mode${why ? ` (${why})` : " (for sentences, pass an array of strings and mode: 'sentences')"}`,
      );
    }
    if (ids.length === 0) throw invalidArgument(`${what} is empty: it has no tokens`);
    return ids;
  }

  /** Sentences: a string becomes <sos> ... <eos> (the tokenizer's); an array of ids is used as it is. */
  sentences(data: unknown, what: string): Int32Array[] {
    if (!Array.isArray(data) || data.length === 0) {
      throw invalidArgument(`${what} must be a non-empty array of sentences (strings or token id arrays) in sentences mode`);
    }
    return data.map((s, i) => {
      const ids = this.idsOf(s, `${what}[${i}]`);
      if (!ids) {
        const why = refusedIds(s);
        throw invalidArgument(`${what}[${i}] must be a string or an array of token ids${why ? ` (${why})` : ''}`);
      }
      if (typeof s === 'string') {
        const out = new Int32Array(ids.length + 2);
        out[0] = SOS_ID;
        out.set(ids, 1);
        out[ids.length + 1] = EOS_ID;
        return out;
      }
      if (ids.length < 2) {
        throw invalidArgument(
          `${what}[${i}] has ${plural(ids.length, 'token id')}; a sentence of ids is used as it is (no <sos> or <eos> is added) and needs at least 2: the first is context, each later one a target`,
        );
      }
      return ids;
    });
  }

  /** stream for a string or id array, sentences for an array of strings / id arrays. */
  inferMode(data: unknown): DataMode {
    return Array.isArray(data) && data.length > 0 && (typeof data[0] === 'string' || isIdArray(data[0])) ? 'sentences' : 'stream';
  }
}
