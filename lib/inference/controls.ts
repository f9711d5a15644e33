/**
 * Token controls of an inference call: which tokens may come next and how likely. A ban list,
 * a logit bias (added to the log-probabilities before temperature and sampling) and a prefix
 * (only tokens whose text starts with it: completing a partly typed word), on top of the model's
 * special ids (a tokenizer's <pad> and <sos> are never predicted).
 *
 * Without bias and prefix, and with few excluded ids, a draw runs on the device (the native
 * sampler's exclude list); otherwise on the host, from the row of log-probabilities.
 */
import { invalidArgument } from '../errors';
import type { Options } from '../options';
import { EOS_ID, PAD_ID, SOS_ID, type Tokenizer } from '../tokenizers';

/** Options every call that predicts or draws tokens accepts. */
export interface TokenControls {
  /** Tokens (strings, for a tokenizer model) or ids never predicted or drawn. */
  ban?: ReadonlyArray<string | number>;
  /**
   * Added to tokens' log-probabilities before sampling: `{ token: bias }` (ids as keys for a model
   * of token ids) or a Map from token or id. Finite numbers; -Infinity is a ban.
   */
  logitBias?: Readonly<Record<string, number>> | ReadonlyMap<string | number, number>;
  /** Only tokens whose text starts with this (a partly typed word); tokenizer models only. */
  prefix?: string;
}
export const CONTROL_KEYS = ['ban', 'logitBias', 'prefix'] as const;

/** The native sampler's exclude list holds at most this many ids (native/common/sample.h). */
const DEVICE_EXCLUDE = 16;

export interface Vocabulary {
  readonly tokenizer?: Tokenizer;
  readonly vocabSize: number;
}
/** The vocabulary of a model's network and tokenizer. */
export const vocabulary = (host: { tokenizer?: Tokenizer; network: { config: { vocabSize: number } } }): Vocabulary => ({
  tokenizer: host.tokenizer,
  vocabSize: host.network.config.vocabSize,
});

/** The special ids of a model: with a tokenizer <pad> and <sos> are never predicted and <eos> ends a sentence. */
export function specials(v: { tokenizer?: Tokenizer }): { exclude: number[]; eos?: number } {
  return v.tokenizer ? { exclude: [PAD_ID, SOS_ID], eos: EOS_ID } : { exclude: [] };
}

export class Controls {
  /** Never chosen (specials and bans). */
  readonly exclude: Set<number>;
  private readonly bias = new Map<number, number>();
  /** Only these, when a prefix is given. */
  private readonly allowed: Set<number> | null = null;

  constructor(o: Options, private readonly v: Vocabulary) {
    this.exclude = new Set(specials(v).exclude);
    const where = o.where;
    const ban = o.raw('ban');
    if (ban !== undefined) {
      if (!Array.isArray(ban)) throw invalidArgument(`${where}: ban must be an array of tokens or token ids`);
      ban.forEach((t, i) => this.exclude.add(this.idOf(t, `ban[${i}]`, where)));
    }
    const lb = o.raw('logitBias');
    if (lb !== undefined) {
      let entries: [unknown, unknown][];
      if (lb instanceof Map) entries = [...lb.entries()];
      else if (typeof lb === 'object' && lb !== null && !Array.isArray(lb)) entries = Object.entries(lb);
      else throw invalidArgument(`${where}: logitBias must be an object { token: bias } or a Map`);
      for (const [key, value] of entries) {
        const k = typeof key === 'string' && !v.tokenizer && /^\d+$/.test(key) ? Number(key) : key;
        const id = this.idOf(k, `logitBias key ${JSON.stringify(key)}`, where);
        if (value === -Infinity) this.exclude.add(id);
        else if (typeof value !== 'number' || !Number.isFinite(value)) {
          throw invalidArgument(`${where}: logitBias for ${JSON.stringify(key)} must be a finite number or -Infinity (got ${String(value)})`);
        } else if (value !== 0) this.bias.set(id, value);
      }
    }
    const prefix = o.raw('prefix');
    if (prefix !== undefined) {
      if (typeof prefix !== 'string' || prefix.length === 0) throw invalidArgument(`${where}: prefix must be a non-empty string`);
      if (!v.tokenizer) throw invalidArgument(`${where}: prefix needs a tokenizer model (a model of token ids has no token text)`);
      const tk = v.tokenizer;
      const allowed = new Set<number>();
      for (let id = 0; id < v.vocabSize; id++) if (id !== EOS_ID && !this.exclude.has(id) && tk.tokenOf(id).startsWith(prefix)) allowed.add(id);
      if (allowed.size === 0) throw invalidArgument(`${where}: no token of the vocabulary starts with prefix ${JSON.stringify(prefix)}`);
      this.allowed = allowed;
    }
    if (this.exclude.size >= v.vocabSize) throw invalidArgument(`${where}: ban excludes every token of the vocabulary`);
  }

  private idOf(t: unknown, what: string, where: string): number {
    if (typeof t === 'number') {
      if (!Number.isInteger(t) || t < 0 || t >= this.v.vocabSize) throw invalidArgument(`${where}: ${what} = ${t} is not a token id in [0, ${this.v.vocabSize})`);
      return t;
    }
    if (typeof t === 'string' && this.v.tokenizer) {
      const id = this.v.tokenizer.idOf(t);
      if (id === undefined) throw invalidArgument(`${where}: ${what}: ${JSON.stringify(t)} is not a token of the vocabulary`);
      return id;
    }
    throw invalidArgument(`${where}: ${what} must be ${this.v.tokenizer ? 'a token (string) or ' : ''}a token id (got ${typeof t})`);
  }

  /** The ids for the device sampler's exclude list, or null when this draw must run on the host. */
  deviceExclude(first: boolean): Int32Array | null {
    if (this.bias.size > 0 || (first && this.allowed) || this.exclude.size > DEVICE_EXCLUDE) return null;
    return Int32Array.from(this.exclude);
  }

  /**
   * Log-probabilities adjusted by the controls (a copy): bias added, excluded and (for the first
   * token) not-allowed ids at -Infinity. Without bias and prefix, the row as it is: its readers
   * (topTokens, sampleToken) skip `exclude` themselves.
   */
  adjust(logProbs: ArrayLike<number>, first: boolean): ArrayLike<number> {
    // Nothing to change: the row itself (the excluded ids are skipped by whoever reads it).
    if (this.bias.size === 0 && !(first && this.allowed)) return logProbs;
    const out = Float64Array.from(logProbs);
    for (const [id, b] of this.bias) out[id] += b;
    for (const id of this.exclude) out[id] = -Infinity;
    if (first && this.allowed) for (let id = 0; id < out.length; id++) if (!this.allowed.has(id)) out[id] = -Infinity;
    return out;
  }
}
