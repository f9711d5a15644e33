/**
 * Tokenizers: text <-> token ids.
 *
 * Every vocabulary starts with the four special tokens `<pad>` = 0, `<unk>` = 1, `<sos>` = 2,
 * `<eos>` = 3, followed by the fitted tokens in a deterministic order. Both tokenizers serialise
 * to a plain JSON object (stored in checkpoint metadata), and {@link tokenizerFromJSON} validates
 * untrusted JSON completely before building a tokenizer from it.
 *
 * Word splitting rule ({@link WordTokenizer.split}), applied left to right, longest match first:
 *  1. a literal special token `<pad>`, `<unk>`, `<sos>` or `<eos>` is one token (so pre-tokenised
 *     corpora such as Penn Treebank keep their `<unk>`);
 *  2. a word: a run of Unicode letters, digits and combining marks, which may contain an apostrophe
 *     (`'` or `’`) or hyphen between two such characters (`don't`, `term-end`), and a `.` or `,`
 *     between two digits (`3.14`, `1,000`);
 *  3. otherwise any single non-whitespace character (punctuation, symbols, emoji) is one token.
 * Whitespace only separates tokens and is never a token.
 */
import { RnnlmError, invalidArgument } from './errors';
import { DEFAULTS } from './defaults';
import { Options } from './options';

/** Id of `<pad>`, the padding token (ignored by the loss). */
export const PAD_ID = 0;
/** Id of `<unk>`, the token for words or characters outside the vocabulary. */
export const UNK_ID = 1;
/** Id of `<sos>`, the start-of-sentence token. */
export const SOS_ID = 2;
/** Id of `<eos>`, the end-of-sentence token. */
export const EOS_ID = 3;
/** The special tokens, indexed by id: the first four entries of every vocabulary. */
export const SPECIAL_TOKENS = ['<pad>', '<unk>', '<sos>', '<eos>'] as const;

/** JSON form of a {@link WordTokenizer} (see {@link Tokenizer.toJSON}). */
export interface WordTokenizerJSON {
  type: 'word';
  version: 1;
  /** The vocabulary, id -> token; starts with {@link SPECIAL_TOKENS}. */
  tokens: string[];
  options: { lowercase: boolean };
}

/** JSON form of a {@link CharTokenizer} (see {@link Tokenizer.toJSON}). */
export interface CharTokenizerJSON {
  type: 'char';
  version: 1;
  /** The vocabulary, id -> token; starts with {@link SPECIAL_TOKENS}, then one code point each. */
  tokens: string[];
  options: { unk: boolean };
}

/** Plain, JSON-serialisable form of a tokenizer, as stored in checkpoints. */
export type TokenizerJSON = WordTokenizerJSON | CharTokenizerJSON;

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Leave out `<pad>`, `<sos>` and `<eos>` (`<unk>` is always kept, it stands for content). Default true. */
  skipSpecial?: boolean;
}

/** What every tokenizer offers: a fixed vocabulary and text <-> id conversion. */
export interface Tokenizer {
  /** 'word' for a {@link WordTokenizer}, 'char' for a {@link CharTokenizer}. */
  readonly kind: 'word' | 'char';
  /** Number of tokens in the vocabulary, the four specials included. */
  readonly vocabSize: number;
  /** Whether text outside the vocabulary maps to `<unk>` (else encode throws ERR_VOCAB). */
  readonly hasUnk: boolean;
  /** The vocabulary, id -> token. */
  tokens(): readonly string[];
  /** The id of a token, or undefined when it is not in the vocabulary. */
  idOf(token: string): number | undefined;
  /** The token of an id; throws ERR_INVALID_ARGUMENT when the id is not in [0, vocabSize). */
  tokenOf(id: number): string;
  /** Text -> token strings, without vocabulary lookup. */
  split(text: string): string[];
  /** Text -> ids (no `<sos>`/`<eos>` added). */
  encode(text: string): Int32Array;
  /** Each sentence -> ids, as {@link Tokenizer.encode} does. */
  encodeSentences(sentences: string[]): Int32Array[];
  /** Ids -> text; `<pad>`, `<sos>` and `<eos>` are left out unless `skipSpecial` is false. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The plain JSON form, for checkpoints; read it back with {@link tokenizerFromJSON}. */
  toJSON(): TokenizerJSON;
}

function shown(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'function') return 'a function';
  return String(v);
}

function codePoint(ch: string): string {
  return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The constructors' key: tokenizers are made by fit and tokenizerFromJSON only. */
const BUILD = Symbol('tokenizer.build');

abstract class Base implements Tokenizer {
  abstract readonly kind: 'word' | 'char';
  protected readonly index: Map<string, number>;
  protected constructor(
    key: symbol,
    protected readonly vocab: readonly string[],
    readonly hasUnk: boolean,
  ) {
    if (key !== BUILD) {
      const name = new.target.name;
      throw invalidArgument(`new ${name}() is not supported: make one with ${name}.fit(text, options), or tokenizerFromJSON(json) for a saved one`);
    }
    this.index = new Map();
    for (let i = 0; i < vocab.length; i++) this.index.set(vocab[i], i);
  }
  protected abstract get name(): string;
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
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.vocab.length) {
      throw invalidArgument(
        `${this.name}.tokenOf: token id ${shown(id)} is not an integer in [0, ${this.vocab.length}) (the vocabulary has ${this.vocab.length} tokens)`,
      );
    }
    return this.vocab[id];
  }
  abstract split(text: string): string[];
  abstract encode(text: string): Int32Array;
  abstract decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  abstract toJSON(): TokenizerJSON;

  encodeSentences(sentences: string[]): Int32Array[] {
    if (!Array.isArray(sentences)) {
      throw invalidArgument(`${this.name}.encodeSentences: sentences must be an array of strings (got ${shown(sentences)})`);
    }
    const out: Int32Array[] = new Array(sentences.length);
    for (let i = 0; i < sentences.length; i++) {
      if (typeof sentences[i] !== 'string') {
        throw invalidArgument(`${this.name}.encodeSentences: sentences[${i}] must be a string (got ${shown(sentences[i])})`);
      }
      out[i] = this.encode(sentences[i]);
    }
    return out;
  }

  protected checkText(text: unknown, where: string): asserts text is string {
    if (typeof text !== 'string') throw invalidArgument(`${this.name}.${where}: text must be a string (got ${shown(text)})`);
  }

  /** Ids -> token strings for decode, specials dropped as asked. */
  protected pieces(ids: ArrayLike<number>, options: DecodeOptions | undefined): string[] {
    const skip = new Options(`${this.name}.decode`, options, ['skipSpecial']).boolean('skipSpecial', DEFAULTS.decode.skipSpecial);
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw invalidArgument(`${this.name}.decode: ids must be an array or typed array of token ids (got ${shown(ids)})`);
    }
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (skip && (id === PAD_ID || id === SOS_ID || id === EOS_ID)) continue;
      out.push(this.tokenOf(id));
    }
    return out;
  }
}

/**
 * Counts (a Map in first-occurrence order) -> vocabulary: the specials, then tokens with
 * count >= minFreq by descending count, ties kept in the Map's order (Array.prototype.sort is
 * stable), cut to maxVocab entries in all.
 */
function buildVocab(counts: Map<string, number>, minFreq: number, maxVocab: number | undefined): string[] {
  const specials = new Set<string>(SPECIAL_TOKENS);
  const kept: [string, number][] = [];
  for (const entry of counts) if (entry[1] >= minFreq && !specials.has(entry[0])) kept.push(entry);
  kept.sort((a, b) => b[1] - a[1]);
  const vocab: string[] = [...SPECIAL_TOKENS];
  const n = maxVocab === undefined ? kept.length : Math.min(kept.length, maxVocab - SPECIAL_TOKENS.length);
  for (let i = 0; i < n; i++) vocab.push(kept[i][0]);
  return vocab;
}

const WORD_CHAR = String.raw`[\p{L}\p{N}\p{M}]`;
/** The split rule (see the file comment); compiled once, reset by String.prototype.match. */
const WORD_RE = new RegExp(
  String.raw`<(?:pad|unk|sos|eos)>|${WORD_CHAR}+(?:['’\-]${WORD_CHAR}+|(?<=\p{N})[.,]\p{N}+)*|\S`,
  'gu',
);
/** decode puts no space before these tokens ... */
const NO_SPACE_BEFORE = new Set([',', '.', '!', '?', ';', ':', ')', ']', '}', "'", '”', '%']);
/** ... and none after these. */
const NO_SPACE_AFTER = new Set(['(', '[', '{', '“']);

/** Options of {@link WordTokenizer.fit}. */
export interface WordTokenizerOptions {
  /** Keep only words seen at least this many times (integer >= 1). Default 1. */
  minFreq?: number;
  /** At most this many entries in the vocabulary, the four specials included (integer >= 5). Default: no limit. */
  maxVocab?: number;
  /** Lowercase text before splitting, when fitting and when encoding. Default false. */
  lowercase?: boolean;
}

/**
 * Words and punctuation marks as tokens (split rule in the file comment). Words outside the
 * vocabulary encode to `<unk>`. Make one with {@link WordTokenizer.fit}.
 */
export class WordTokenizer extends Base {
  readonly kind = 'word' as const;
  private constructor(
    key: symbol,
    vocab: readonly string[],
    /** Whether text is lowercased before splitting. */
    readonly lowercase: boolean,
  ) {
    super(key, vocab, true);
  }
  protected get name(): string {
    return 'WordTokenizer';
  }

  /**
   * Builds the vocabulary of `text` (one string, or several, e.g. one per sentence): the
   * specials, then words with count >= minFreq by descending count, ties by first occurrence,
   * cut to maxVocab entries. Throws ERR_INVALID_ARGUMENT on bad options, ERR_VOCAB when no
   * word is left.
   */
  static fit(text: string | string[], options: WordTokenizerOptions = {}): WordTokenizer {
    const o = new Options('WordTokenizer.fit', options, ['minFreq', 'maxVocab', 'lowercase']);
    const minFreq = o.integer('minFreq', DEFAULTS.wordTokenizer.minFreq, { min: 1 });
    const maxVocab = o.optionalInteger('maxVocab', { min: SPECIAL_TOKENS.length + 1 });
    const lowercase = o.boolean('lowercase', DEFAULTS.wordTokenizer.lowercase);
    const texts = typeof text === 'string' ? [text] : text;
    if (!Array.isArray(texts)) {
      throw invalidArgument(`WordTokenizer.fit: text must be a string or an array of strings (got ${shown(text)})`);
    }
    const t = new WordTokenizer(BUILD, [], lowercase);
    const counts = new Map<string, number>();
    let total = 0;
    for (let i = 0; i < texts.length; i++) {
      if (typeof texts[i] !== 'string') {
        throw invalidArgument(`WordTokenizer.fit: text[${i}] must be a string (got ${shown(texts[i])})`);
      }
      const words = t.split(texts[i]);
      total += words.length;
      for (let k = 0; k < words.length; k++) {
        const w = words[k];
        counts.set(w, (counts.get(w) ?? 0) + 1);
      }
    }
    const vocab = buildVocab(counts, minFreq, maxVocab);
    if (vocab.length === SPECIAL_TOKENS.length) {
      const why =
        total === 0
          ? 'the text is empty (no tokens); pass the training text'
          : [...counts.keys()].every((w) => (SPECIAL_TOKENS as readonly string[]).includes(w))
            ? 'the text holds only special tokens (<pad>, <unk>, <sos>, <eos>); pass the training text'
            : `no word is seen at least minFreq = ${minFreq} times; lower minFreq or fit on more text`;
      throw new RnnlmError('ERR_VOCAB', `WordTokenizer.fit: empty vocabulary: ${why}`);
    }
    return new WordTokenizer(BUILD, vocab, lowercase);
  }

  /** Text -> words and punctuation (lowercased first if the tokenizer was fitted so). */
  split(text: string): string[] {
    this.checkText(text, 'split');
    return (this.lowercase ? text.toLowerCase() : text).match(WORD_RE) ?? [];
  }

  /** Text -> ids; words outside the vocabulary become `<unk>`. */
  encode(text: string): Int32Array {
    this.checkText(text, 'encode');
    const words = this.split(text);
    const ids = new Int32Array(words.length);
    const index = this.index;
    for (let i = 0; i < words.length; i++) ids[i] = index.get(words[i]) ?? UNK_ID;
    return ids;
  }

  /**
   * Ids -> text: tokens joined by single spaces, except no space before , . ! ? ; : ) ] } ' ” %
   * and none after ( [ { “. (So decode(encode(text)) gives text back when its words are in the vocabulary and it is spaced that way.)
   */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    let out = '';
    let prev = '';
    for (const w of this.pieces(ids, options)) {
      if (out.length > 0 && !NO_SPACE_BEFORE.has(w) && !NO_SPACE_AFTER.has(prev)) out += ' ';
      out += w;
      prev = w;
    }
    return out;
  }

  toJSON(): WordTokenizerJSON {
    return { type: 'word', version: 1, tokens: [...this.vocab], options: { lowercase: this.lowercase } };
  }

  /** @internal Rebuilds from a vocabulary already validated by tokenizerFromJSON. */
  static restore(tokens: string[], lowercase: boolean): WordTokenizer {
    return new WordTokenizer(BUILD, tokens, lowercase);
  }
}

/** Options of {@link CharTokenizer.fit}. */
export interface CharTokenizerOptions {
  /** Keep only characters seen at least this many times (integer >= 1; > 1 needs unk: true). Default 1. */
  minFreq?: number;
  /** At most this many entries in the vocabulary, specials included (integer >= 5; needs unk: true if it drops characters). Default: no limit. */
  maxVocab?: number;
  /** Map characters outside the vocabulary to `<unk>` instead of throwing ERR_VOCAB. Default false. */
  unk?: boolean;
}

/**
 * Unicode code points as tokens (an astral-plane emoji is one token). Without `unk`, encoding a
 * character outside the vocabulary throws ERR_VOCAB. Make one with {@link CharTokenizer.fit}.
 */
export class CharTokenizer extends Base {
  readonly kind = 'char' as const;
  private constructor(key: symbol, vocab: readonly string[], unk: boolean) {
    super(key, vocab, unk);
  }
  protected get name(): string {
    return 'CharTokenizer';
  }

  /**
   * Builds the vocabulary of `text`: the specials, then its characters by descending count,
   * ties by code point. With unk: true, characters seen fewer than minFreq times (or beyond
   * maxVocab) are left out and encode to `<unk>`; without it, dropping any character is refused
   * (ERR_INVALID_ARGUMENT), since the training text itself could not be encoded.
   */
  static fit(text: string, options: CharTokenizerOptions = {}): CharTokenizer {
    const o = new Options('CharTokenizer.fit', options, ['minFreq', 'maxVocab', 'unk']);
    const minFreq = o.integer('minFreq', DEFAULTS.charTokenizer.minFreq, { min: 1 });
    const maxVocab = o.optionalInteger('maxVocab', { min: SPECIAL_TOKENS.length + 1 });
    const unk = o.boolean('unk', DEFAULTS.charTokenizer.unk);
    if (typeof text !== 'string') throw invalidArgument(`CharTokenizer.fit: text must be a string (got ${shown(text)})`);
    if (text.length === 0) throw new RnnlmError('ERR_VOCAB', 'CharTokenizer.fit: empty vocabulary: the text is empty; pass the training text');
    const counts = new Map<string, number>();
    for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    // By descending count, ties by code point: deterministic whatever the order of the text.
    const order = [...counts].sort((a, b) => b[1] - a[1] || a[0].codePointAt(0)! - b[0].codePointAt(0)!);
    const vocab = buildVocab(new Map(order), minFreq, maxVocab);
    const dropped = counts.size - (vocab.length - SPECIAL_TOKENS.length);
    if (dropped > 0 && !unk) {
      const rare = order.filter(([, c]) => c < minFreq);
      const [option, detail] =
        rare.length > 0
          ? ['minFreq', `minFreq = ${minFreq} drops ${rare.length} character(s) seen fewer times, e.g. '${rare[0][0]}' (${codePoint(rare[0][0])})`]
          : ['maxVocab', `maxVocab = ${maxVocab} drops ${dropped} of the text's ${counts.size} characters`];
      throw invalidArgument(
        `CharTokenizer.fit: ${detail}, but without unk: true a dropped character cannot be encoded; pass unk: true (dropped characters become <unk>) or leave out ${option}`,
      );
    }
    if (vocab.length === SPECIAL_TOKENS.length) {
      throw new RnnlmError('ERR_VOCAB', `CharTokenizer.fit: empty vocabulary: no character is seen at least minFreq = ${minFreq} times; lower minFreq or fit on more text`);
    }
    return new CharTokenizer(BUILD, vocab, unk);
  }

  /** Text -> its code points. */
  split(text: string): string[] {
    this.checkText(text, 'split');
    return Array.from(text);
  }

  /**
   * Text -> ids. A character outside the vocabulary becomes `<unk>` with unk: true, else
   * throws ERR_VOCAB naming it and its index (in code points).
   */
  encode(text: string): Int32Array {
    this.checkText(text, 'encode');
    const out = new Int32Array(text.length); // code points <= UTF-16 units
    const index = this.index;
    let n = 0;
    for (const ch of text) {
      const id = index.get(ch);
      if (id === undefined) {
        if (!this.hasUnk) {
          throw new RnnlmError(
            'ERR_VOCAB',
            `CharTokenizer.encode: character '${ch}' (${codePoint(ch)}) at index ${n} is not in the vocabulary; ` +
              'fit the tokenizer on text that contains it, or use CharTokenizer.fit(text, { unk: true }) to map unknown characters to <unk>',
          );
        }
        out[n++] = UNK_ID;
      } else out[n++] = id;
    }
    return n === out.length ? out : out.slice(0, n);
  }

  /** Ids -> the characters concatenated (specials written as `<unk>` etc. when kept). */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    return this.pieces(ids, options).join('');
  }

  toJSON(): CharTokenizerJSON {
    return { type: 'char', version: 1, tokens: [...this.vocab], options: { unk: this.hasUnk } };
  }

  /** @internal Rebuilds from a vocabulary already validated by tokenizerFromJSON. */
  static restore(tokens: string[], unk: boolean): CharTokenizer {
    return new CharTokenizer(BUILD, tokens, unk);
  }
}

/**
 * Rebuilds a tokenizer from {@link Tokenizer.toJSON} output (parsed JSON), validating everything
 * first, since it comes from checkpoint metadata: fields, type, version, a token list of unique
 * non-empty strings that starts with the four specials in order (one code point each for 'char'),
 * and well-typed options. Anything wrong throws RnnlmError('ERR_CHECKPOINT').
 */
export function tokenizerFromJSON(json: unknown): Tokenizer {
  const bad = (what: string) =>
    new RnnlmError('ERR_CHECKPOINT', `tokenizer: ${what}; the tokenizer metadata is damaged or was not written by rnnlm`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad(`expected a JSON object (got ${shown(json)})`);
  const j = json as Record<string, unknown>;
  for (const k of Object.keys(j)) {
    if (k !== 'type' && k !== 'version' && k !== 'tokens' && k !== 'options') throw bad(`unknown field '${k}' (expected type, version, tokens, options)`);
  }
  if (j.type !== 'word' && j.type !== 'char') throw bad(`type must be 'word' or 'char' (got ${shown(j.type)})`);
  if (j.version !== 1) throw bad(`version ${shown(j.version)} is not supported (expected 1)`);
  const tokens = j.tokens;
  if (!Array.isArray(tokens)) throw bad(`tokens must be an array of strings (got ${shown(tokens)})`);
  if (tokens.length <= SPECIAL_TOKENS.length) {
    throw bad(`tokens has ${tokens.length} entries, expected the four special tokens and at least one more`);
  }
  const seen = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    const t: unknown = tokens[i];
    if (typeof t !== 'string' || t.length === 0) throw bad(`tokens[${i}] must be a non-empty string (got ${shown(t)})`);
    if (i < SPECIAL_TOKENS.length && t !== SPECIAL_TOKENS[i]) throw bad(`tokens[${i}] must be ${SPECIAL_TOKENS[i]} (got ${shown(t)})`);
    if (seen.has(t)) throw bad(`tokens[${i}] ${shown(t)} appears more than once`);
    if (j.type === 'char' && i >= SPECIAL_TOKENS.length) {
      const cp = t.codePointAt(0)!;
      if (t.length !== (cp > 0xffff ? 2 : 1)) throw bad(`tokens[${i}] ${shown(t)} of a char tokenizer is not a single character`);
    }
    seen.add(t);
  }
  const opts = j.options;
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw bad(`options must be an object (got ${shown(opts)})`);
  const o = opts as Record<string, unknown>;
  const key = j.type === 'word' ? 'lowercase' : 'unk';
  for (const k of Object.keys(o)) if (k !== key) throw bad(`unknown option '${k}' for a ${j.type} tokenizer (expected only '${key}')`);
  if (typeof o[key] !== 'boolean') throw bad(`options.${key} must be true or false (got ${shown(o[key])})`);
  return j.type === 'word'
    ? WordTokenizer.restore(tokens as string[], o[key] as boolean)
    : CharTokenizer.restore(tokens as string[], o[key] as boolean);
}
