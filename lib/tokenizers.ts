/**
 * Tokenizers: text <-> token ids. Every vocabulary starts with the four special tokens
 * <pad> = 0, <unk> = 1, <sos> = 2, <eos> = 3; both tokenizers serialise to JSON for
 * checkpoints, and tokenizerFromJSON validates untrusted JSON before use.
 */
import { RnnlmError, invalidArgument } from './errors';
import { Options } from './options';

export const PAD_ID = 0;
export const UNK_ID = 1;
export const SOS_ID = 2;
export const EOS_ID = 3;
export const SPECIAL_TOKENS = ['<pad>', '<unk>', '<sos>', '<eos>'] as const;

export interface TokenizerJSON {
  type: 'word' | 'char';
  version: 1;
  tokens: string[];
  options: Record<string, unknown>;
}

export interface Tokenizer {
  readonly kind: 'word' | 'char';
  readonly vocabSize: number;
  /** Whether unknown text maps to <unk> (else encode throws ERR_VOCAB). */
  readonly hasUnk: boolean;
  tokens(): readonly string[];
  idOf(token: string): number | undefined;
  tokenOf(id: number): string;
  /** Text -> token strings (no vocabulary lookup). */
  split(text: string): string[];
  /** Text -> ids (no <sos>/<eos> added). */
  encode(text: string): Int32Array;
  /** Ids -> text; special tokens are left out unless skipSpecial is false. */
  decode(ids: ArrayLike<number>, options?: { skipSpecial?: boolean }): string;
  toJSON(): TokenizerJSON;
}

abstract class Base implements Tokenizer {
  abstract readonly kind: 'word' | 'char';
  protected readonly index: Map<string, number>;
  constructor(
    protected readonly vocab: readonly string[],
    readonly hasUnk: boolean,
  ) {
    this.index = new Map(vocab.map((t, i) => [t, i]));
  }
  get vocabSize(): number {
    return this.vocab.length;
  }
  tokens(): readonly string[] {
    return this.vocab;
  }
  idOf(token: string): number | undefined {
    return this.index.get(token);
  }
  tokenOf(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.length) {
      throw invalidArgument(`token id ${id} is not in [0, ${this.vocab.length})`);
    }
    return this.vocab[id];
  }
  abstract split(text: string): string[];
  abstract encode(text: string): Int32Array;
  abstract decode(ids: ArrayLike<number>, options?: { skipSpecial?: boolean }): string;
  abstract toJSON(): TokenizerJSON;
  protected pieces(ids: ArrayLike<number>, options: { skipSpecial?: boolean } = {}): string[] {
    const skip = new Options('decode', options, ['skipSpecial']).boolean('skipSpecial', true);
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (skip && id >= 0 && id < SPECIAL_TOKENS.length && id !== UNK_ID) continue;
      out.push(this.tokenOf(id));
    }
    return out;
  }
}

/** Counts -> vocabulary: specials, then by descending count, ties by first occurrence. */
function buildVocab(counts: Map<string, number>, minFreq: number, maxVocab: number | undefined): string[] {
  const specials = new Set<string>(SPECIAL_TOKENS);
  const kept = [...counts].filter(([t, c]) => c >= minFreq && !specials.has(t));
  kept.sort((a, b) => b[1] - a[1]); // stable: Map order = first occurrence breaks ties
  const vocab = [...SPECIAL_TOKENS, ...kept.map(([t]) => t)];
  return maxVocab !== undefined ? vocab.slice(0, maxVocab) : vocab;
}

// A word: letters/digits/marks with internal apostrophes, hyphens or decimal points
// (don't, term-end, 3.14); a special token like <unk>; or any other single non-space character.
const WORD = /<(?:pad|unk|sos|eos)>|[\p{L}\p{N}\p{M}]+(?:['’.\-][\p{L}\p{N}\p{M}]+)*|[^\s]/gu;
const NO_SPACE_BEFORE = new Set([',', '.', '!', '?', ';', ':', ')', ']', '}', "'", '”', '%']);
const NO_SPACE_AFTER = new Set(['(', '[', '{', '“']);

/** Words and punctuation marks as tokens. */
export class WordTokenizer extends Base {
  readonly kind = 'word' as const;
  private constructor(
    vocab: readonly string[],
    private readonly lowercase: boolean,
  ) {
    super(vocab, true);
  }

  static fit(text: string | string[], options: { minFreq?: number; maxVocab?: number; lowercase?: boolean } = {}): WordTokenizer {
    const o = new Options('WordTokenizer.fit', options, ['minFreq', 'maxVocab', 'lowercase']);
    const minFreq = o.integer('minFreq', 1, { min: 1 });
    const maxVocab = o.optionalInteger('maxVocab', { min: SPECIAL_TOKENS.length + 1 });
    const lowercase = o.boolean('lowercase', false);
    const texts = typeof text === 'string' ? [text] : text;
    if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) {
      throw invalidArgument('WordTokenizer.fit: text must be a string or an array of strings');
    }
    const t = new WordTokenizer([], lowercase);
    const counts = new Map<string, number>();
    for (const s of texts) for (const w of t.split(s)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const vocab = buildVocab(counts, minFreq, maxVocab);
    if (vocab.length === SPECIAL_TOKENS.length) {
      throw new RnnlmError('ERR_VOCAB', `WordTokenizer.fit: the text yields no words${counts.size ? ` seen at least minFreq = ${minFreq} times` : ' (it is empty)'}`);
    }
    return new WordTokenizer(vocab, lowercase);
  }

  split(text: string): string[] {
    return (this.lowercase ? text.toLowerCase() : text).match(WORD) ?? [];
  }

  encode(text: string): Int32Array {
    const words = this.split(text);
    const ids = new Int32Array(words.length);
    for (let i = 0; i < words.length; i++) ids[i] = this.index.get(words[i]) ?? UNK_ID;
    return ids;
  }

  /** Words joined by spaces, without a space before closing or after opening punctuation. */
  decode(ids: ArrayLike<number>, options?: { skipSpecial?: boolean }): string {
    let out = '';
    let prev = '';
    for (const w of this.pieces(ids, options)) {
      if (out && !NO_SPACE_BEFORE.has(w) && !NO_SPACE_AFTER.has(prev)) out += ' ';
      out += w;
      prev = w;
    }
    return out;
  }

  toJSON(): TokenizerJSON {
    return { type: 'word', version: 1, tokens: [...this.vocab], options: { lowercase: this.lowercase } };
  }

  /** @internal */
  static restore(tokens: string[], lowercase: boolean): WordTokenizer {
    return new WordTokenizer(tokens, lowercase);
  }
}

/** Unicode code points as tokens. */
export class CharTokenizer extends Base {
  readonly kind = 'char' as const;
  private constructor(vocab: readonly string[], unk: boolean) {
    super(vocab, unk);
  }

  static fit(text: string, options: { minFreq?: number; maxVocab?: number; unk?: boolean } = {}): CharTokenizer {
    const o = new Options('CharTokenizer.fit', options, ['minFreq', 'maxVocab', 'unk']);
    const minFreq = o.integer('minFreq', 1, { min: 1 });
    const maxVocab = o.optionalInteger('maxVocab', { min: SPECIAL_TOKENS.length + 1 });
    const unk = o.boolean('unk', false);
    if (typeof text !== 'string') throw invalidArgument('CharTokenizer.fit: text must be a string');
    const counts = new Map<string, number>();
    for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    // Characters by descending count, ties by code point: deterministic.
    const sorted = new Map([...counts].sort((a, b) => b[1] - a[1] || a[0].codePointAt(0)! - b[0].codePointAt(0)!));
    if (!unk && (minFreq > 1 || maxVocab !== undefined)) {
      const vocab = buildVocab(sorted, minFreq, maxVocab);
      if (vocab.length - SPECIAL_TOKENS.length < counts.size) {
        throw invalidArgument('CharTokenizer.fit: minFreq and maxVocab drop characters, which needs unk: true (dropped characters become <unk>)');
      }
    }
    const vocab = buildVocab(sorted, minFreq, maxVocab);
    if (vocab.length === SPECIAL_TOKENS.length) throw new RnnlmError('ERR_VOCAB', 'CharTokenizer.fit: the text is empty');
    return new CharTokenizer(vocab, unk);
  }

  split(text: string): string[] {
    return Array.from(text);
  }

  encode(text: string): Int32Array {
    const chars = Array.from(text);
    const ids = new Int32Array(chars.length);
    for (let i = 0; i < chars.length; i++) {
      const id = this.index.get(chars[i]);
      if (id === undefined || id < SPECIAL_TOKENS.length) {
        if (!this.hasUnk) {
          const cp = chars[i].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
          throw new RnnlmError(
            'ERR_VOCAB',
            `character '${chars[i]}' (U+${cp}) at index ${i} is not in the vocabulary; fit the tokenizer on text that contains it, or use CharTokenizer.fit(text, { unk: true })`,
          );
        }
        ids[i] = UNK_ID;
      } else ids[i] = id;
    }
    return ids;
  }

  decode(ids: ArrayLike<number>, options?: { skipSpecial?: boolean }): string {
    return this.pieces(ids, options).join('');
  }

  toJSON(): TokenizerJSON {
    return { type: 'char', version: 1, tokens: [...this.vocab], options: { unk: this.hasUnk } };
  }

  /** @internal */
  static restore(tokens: string[], unk: boolean): CharTokenizer {
    return new CharTokenizer(tokens, unk);
  }
}

/** Rebuilds a tokenizer from toJSON() output, validating everything (ERR_CHECKPOINT). */
export function tokenizerFromJSON(json: unknown): Tokenizer {
  const bad = (what: string) => new RnnlmError('ERR_CHECKPOINT', `tokenizer: ${what}`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('must be a JSON object');
  const j = json as Record<string, unknown>;
  for (const k of Object.keys(j)) if (!['type', 'version', 'tokens', 'options'].includes(k)) throw bad(`unknown field '${k}'`);
  if (j.type !== 'word' && j.type !== 'char') throw bad(`type must be 'word' or 'char' (got ${JSON.stringify(j.type)})`);
  if (j.version !== 1) throw bad(`version ${JSON.stringify(j.version)} is not supported (expected 1)`);
  const tokens = j.tokens;
  if (!Array.isArray(tokens) || tokens.length <= SPECIAL_TOKENS.length) throw bad('tokens must be an array longer than the four special tokens');
  const seen = new Set<string>();
  tokens.forEach((t, i) => {
    if (typeof t !== 'string' || t.length === 0) throw bad(`token ${i} is not a non-empty string`);
    if (i < SPECIAL_TOKENS.length && t !== SPECIAL_TOKENS[i]) throw bad(`token ${i} must be ${SPECIAL_TOKENS[i]} (got ${JSON.stringify(t)})`);
    if (seen.has(t)) throw bad(`token ${JSON.stringify(t)} appears twice`);
    if (j.type === 'char' && i >= SPECIAL_TOKENS.length && Array.from(t).length !== 1) throw bad(`char token ${i} is not one character`);
    seen.add(t);
  });
  const opts = j.options;
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw bad('options must be an object');
  const o = opts as Record<string, unknown>;
  const key = j.type === 'word' ? 'lowercase' : 'unk';
  for (const k of Object.keys(o)) if (k !== key) throw bad(`unknown option '${k}'`);
  if (typeof o[key] !== 'boolean') throw bad(`options.${key} must be a boolean`);
  return j.type === 'word' ? WordTokenizer.restore(tokens as string[], o[key] as boolean) : CharTokenizer.restore(tokens as string[], o[key] as boolean);
}
