// WordTokenizer and CharTokenizer: the split rule, vocabulary rules (minFreq, maxVocab,
// lowercase, deterministic order), <unk>, round trips, Unicode, JSON for checkpoints (validated
// as untrusted metadata) and option errors. Expected values are worked out by hand.
import { describe, expect, test } from 'vitest';
import { RnnlmError } from '../../lib/errors';
import {
  CharTokenizer,
  EOS_ID,
  PAD_ID,
  SOS_ID,
  SPECIAL_TOKENS,
  UNK_ID,
  WordTokenizer,
  tokenizerFromJSON,
  type Tokenizer,
} from '../../lib/tokenizers';

const SPECIALS = ['<pad>', '<unk>', '<sos>', '<eos>'];

/** Runs fn, which must throw an RnnlmError; returns "CODE: message". */
function thrown(fn: () => unknown): string {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error, 'expected an RnnlmError to be thrown').toBeInstanceOf(RnnlmError);
  return `${(error as RnnlmError).code}: ${(error as RnnlmError).message}`;
}

const ids = (a: Int32Array) => Array.from(a);

describe('special tokens', () => {
  test('fixed ids 0..3 in every vocabulary', () => {
    expect([PAD_ID, UNK_ID, SOS_ID, EOS_ID]).toEqual([0, 1, 2, 3]);
    expect([...SPECIAL_TOKENS]).toEqual(SPECIALS);
    expect(WordTokenizer.fit('x').tokens().slice(0, 4)).toEqual(SPECIALS);
    expect(CharTokenizer.fit('x').tokens().slice(0, 4)).toEqual(SPECIALS);
  });
});

describe('WordTokenizer.split', () => {
  const t = WordTokenizer.fit('x');

  test('punctuation is split off; internal apostrophes and hyphens stay; numbers with . or , stay whole', () => {
    expect(t.split("Don't stop, term-end (3.14 miles)! 1,000 end.The dogs' “hi” rock’n’roll")).toEqual([
      "Don't", 'stop', ',', 'term-end', '(', '3.14', 'miles', ')', '!', '1,000', 'end', '.', 'The',
      'dogs', "'", '“', 'hi', '”', 'rock’n’roll',
    ]);
    expect(t.split('a--b -c d- x.')).toEqual(['a', '-', '-', 'b', '-', 'c', 'd', '-', 'x', '.']);
    // . and , join only digit to digit
    expect(t.split('v1.2 a.5 x,1 2.b 1.')).toEqual(['v1.2', 'a', '.', '5', 'x', ',', '1', '2', '.', 'b', '1', '.']);
  });

  test('literal special tokens are single tokens; other <...> are not', () => {
    expect(t.split('the <unk> sat<eos><sos> a<pad>b <UNK> <foo>')).toEqual([
      'the', '<unk>', 'sat', '<eos>', '<sos>', 'a', '<pad>', 'b', '<', 'UNK', '>', '<', 'foo', '>',
    ]);
  });

  test('Unicode letters, marks, symbols and emoji; whitespace of any kind separates', () => {
    expect(t.split('Ça coûte 10€, naïve cafe\u0301\u00a0東京\tタワー\n😀!')).toEqual([
      'Ça', 'coûte', '10', '€', ',', 'naïve', 'cafe\u0301', '東京', 'タワー', '😀', '!',
    ]);
    expect(t.split('  \n\t\u00a0 ')).toEqual([]);
    expect(t.split('')).toEqual([]);
  });
});

describe('WordTokenizer vocabulary', () => {
  // counts: a 3, b 2, c 1, d 1, The 1, the 1; first occurrences: b, a, c, d, The, the
  const text = 'b a c a b a d The the';

  test('specials, then by descending count, ties by first occurrence', () => {
    expect(WordTokenizer.fit(text).tokens()).toEqual([...SPECIALS, 'a', 'b', 'c', 'd', 'The', 'the']);
    expect(WordTokenizer.fit('y x x y z').tokens()).toEqual([...SPECIALS, 'y', 'x', 'z']);
    expect(WordTokenizer.fit('x y y x z').tokens()).toEqual([...SPECIALS, 'x', 'y', 'z']);
  });

  test('deterministic: the same vocabulary every time, from one string or from sentences', () => {
    const a = WordTokenizer.fit(text).tokens();
    expect(WordTokenizer.fit(text).tokens()).toEqual(a);
    expect(WordTokenizer.fit(['b a c', 'a b a', 'd The the']).tokens()).toEqual(a);
  });

  test('minFreq keeps words seen at least that often', () => {
    expect(WordTokenizer.fit(text, { minFreq: 2 }).tokens()).toEqual([...SPECIALS, 'a', 'b']);
    expect(WordTokenizer.fit(text, { minFreq: 3 }).tokens()).toEqual([...SPECIALS, 'a']);
  });

  test('maxVocab bounds the whole vocabulary, specials included', () => {
    expect(WordTokenizer.fit(text, { maxVocab: 5 }).tokens()).toEqual([...SPECIALS, 'a']);
    expect(WordTokenizer.fit(text, { maxVocab: 7 }).tokens()).toEqual([...SPECIALS, 'a', 'b', 'c']);
    expect(WordTokenizer.fit(text, { maxVocab: 100 }).vocabSize).toBe(10);
    expect(WordTokenizer.fit(text, { maxVocab: 6, minFreq: 3 }).tokens()).toEqual([...SPECIALS, 'a']);
  });

  test('lowercase folds case when fitting and when encoding', () => {
    // a 3, b 2, the 2 (first seen after b), c 1, d 1
    const t = WordTokenizer.fit(text, { lowercase: true });
    expect(t.tokens()).toEqual([...SPECIALS, 'a', 'b', 'the', 'c', 'd']);
    expect(ids(t.encode('THE A'))).toEqual([6, 4]);
    expect(t.lowercase).toBe(true);
    expect(ids(WordTokenizer.fit(text).encode('THE A'))).toEqual([UNK_ID, UNK_ID]);
  });

  test('special tokens in the text are kept as themselves, not added again', () => {
    const t = WordTokenizer.fit('<unk> x <unk> <eos> y <eos> x');
    expect(t.tokens()).toEqual([...SPECIALS, 'x', 'y']);
    expect(ids(t.encode('<unk> y <eos> <sos> x <pad>'))).toEqual([1, 5, 3, 2, 4, 0]);
  });
});

describe('WordTokenizer encode / decode', () => {
  const t = WordTokenizer.fit('the cat sat . the ( big ) dog , too');
  // vocabulary: specials, the (4), cat 5, sat 6, . 7, ( 8, big 9, ) 10, dog 11, , 12, too 13

  test('ids; words outside the vocabulary encode to <unk>', () => {
    expect(t.tokens()).toEqual([...SPECIALS, 'the', 'cat', 'sat', '.', '(', 'big', ')', 'dog', ',', 'too']);
    expect(t.hasUnk).toBe(true);
    expect(t.kind).toBe('word');
    expect(ids(t.encode('the zebra sat.'))).toEqual([4, UNK_ID, 6, 7]);
    expect(ids(t.encode(''))).toEqual([]);
    expect(t.idOf('cat')).toBe(5);
    expect(t.idOf('zebra')).toBeUndefined();
    expect(t.tokenOf(13)).toBe('too');
  });

  test('round trip; no space before closing or after opening punctuation', () => {
    const s = 'the cat sat, the (big) dog.';
    expect(ids(t.encode(s))).toEqual([4, 5, 6, 12, 4, 8, 9, 10, 11, 7]);
    expect(t.decode(t.encode(s))).toBe(s);
    const u = WordTokenizer.fit(`a ( b ) , c ' d “ e ” 50 % [ f ] { g } h ; i : j ? k !`);
    expect(u.decode(u.encode(`a ( b ) , c ' d “ e ” 50 % [ f ] { g } h ; i : j ? k !`))).toBe(
      `a (b), c' d “e” 50% [f] {g} h; i: j? k!`,
    );
  });

  test('skipSpecial (default true) drops <pad>, <sos>, <eos> but keeps <unk>', () => {
    expect(t.decode([SOS_ID, 5, UNK_ID, EOS_ID, PAD_ID])).toBe('cat <unk>');
    expect(t.decode([SOS_ID, 5, EOS_ID], { skipSpecial: false })).toBe('<sos> cat <eos>');
    expect(t.decode(new Int32Array([4, 5]))).toBe('the cat');
    expect(t.decode([])).toBe('');
  });

  test('encodeSentences encodes each sentence', () => {
    const out = t.encodeSentences(['the cat', 'dog .', '']);
    expect(out.map(ids)).toEqual([[4, 5], [11, 7], []]);
    expect(out[0]).toBeInstanceOf(Int32Array);
    expect(thrown(() => t.encodeSentences('the cat' as never))).toMatch(/^ERR_INVALID_ARGUMENT: .*sentences must be an array/);
    expect(thrown(() => t.encodeSentences(['a', 3 as never]))).toMatch(/^ERR_INVALID_ARGUMENT: .*sentences\[1\] must be a string/);
  });

  test('ids out of range: ERR_INVALID_ARGUMENT', () => {
    expect(thrown(() => t.tokenOf(14))).toMatch(/^ERR_INVALID_ARGUMENT: .*token id 14 .*\[0, 14\)/);
    expect(thrown(() => t.tokenOf(-1))).toMatch(/^ERR_INVALID_ARGUMENT: .*token id -1/);
    expect(thrown(() => t.tokenOf(1.5))).toMatch(/^ERR_INVALID_ARGUMENT: .*token id 1.5/);
    expect(thrown(() => t.decode([4, 99]))).toMatch(/^ERR_INVALID_ARGUMENT: .*token id 99/);
    expect(thrown(() => t.encode(7 as never))).toMatch(/^ERR_INVALID_ARGUMENT: .*text must be a string/);
  });

  test('fits and encodes 1.2 million words (50,000 distinct) in well under two seconds', () => {
    // Zipf-like: word k of a 50,000-word list drawn with probability ~ 1/(k+1).
    const distinct = Array.from({ length: 50_000 }, (_, k) => `w${k.toString(36)}x`);
    let state = 12345;
    const rand = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const words = new Array<string>(1_200_000);
    for (let i = 0; i < words.length; i++) {
      words[i] = i % 12 === 11 ? '.' : distinct[Math.min(49_999, Math.floor(Math.exp(rand() * Math.log(50_001)) - 1))];
    }
    const text = words.join(' ');
    const t0 = performance.now();
    const tok = WordTokenizer.fit(text);
    const encoded = tok.encode(text);
    const ms = performance.now() - t0;
    expect(encoded.length).toBe(1_200_000);
    expect(encoded[11]).toBe(tok.idOf('.'));
    expect(ms).toBeLessThan(4000); // about 1 s measured on a 2-core machine; generous for noisy CI
  });
});

describe('WordTokenizer errors', () => {
  test('empty text or empty vocabulary: ERR_VOCAB', () => {
    expect(thrown(() => WordTokenizer.fit(''))).toMatch(/^ERR_VOCAB: WordTokenizer.fit: empty vocabulary: the text is empty/);
    expect(thrown(() => WordTokenizer.fit(' \n\t '))).toMatch(/^ERR_VOCAB: .*the text is empty/);
    expect(thrown(() => WordTokenizer.fit([]))).toMatch(/^ERR_VOCAB: .*the text is empty/);
    expect(thrown(() => WordTokenizer.fit(['', ' ']))).toMatch(/^ERR_VOCAB: .*the text is empty/);
    expect(thrown(() => WordTokenizer.fit('<unk> <eos>'))).toMatch(/^ERR_VOCAB: .*only special tokens/);
    expect(thrown(() => WordTokenizer.fit('a b c', { minFreq: 2 }))).toMatch(/^ERR_VOCAB: .*minFreq = 2/);
  });

  test.each([
    [{ minFreq: 0 }, /WordTokenizer.fit: minFreq must be an integer >= 1 \(got 0\)/],
    [{ minFreq: 1.5 }, /minFreq must be an integer >= 1 \(got 1.5\)/],
    [{ minFreq: '2' }, /minFreq must be an integer >= 1 \(got '2'\)/],
    [{ minFreq: NaN }, /minFreq must be an integer >= 1 \(got NaN\)/],
    [{ maxVocab: 4 }, /WordTokenizer.fit: maxVocab must be an integer >= 5 \(got 4\)/],
    [{ maxVocab: 5.5 }, /maxVocab must be an integer >= 5/],
    [{ maxVocab: null }, /maxVocab must be an integer >= 5 \(got null\)/],
    [{ lowercase: 'yes' }, /WordTokenizer.fit: lowercase must be true or false \(got 'yes'\)/],
    [{ lowercase: 1 }, /lowercase must be true or false \(got 1\)/],
    [{ lowercse: true }, /WordTokenizer.fit: unknown option 'lowercse'/],
  ])('option %o: ERR_INVALID_ARGUMENT naming it', (options, message) => {
    const m = thrown(() => WordTokenizer.fit('a b', options as never));
    expect(m).toMatch(/^ERR_INVALID_ARGUMENT: /);
    expect(m).toMatch(message);
  });

  test('options and text of the wrong type: ERR_INVALID_ARGUMENT', () => {
    expect(thrown(() => WordTokenizer.fit('a', 5 as never))).toMatch(/^ERR_INVALID_ARGUMENT: WordTokenizer.fit: options must be an object/);
    expect(thrown(() => WordTokenizer.fit('a', [] as never))).toMatch(/^ERR_INVALID_ARGUMENT: .*options must be an object/);
    expect(thrown(() => WordTokenizer.fit(42 as never))).toMatch(/^ERR_INVALID_ARGUMENT: .*text must be a string or an array of strings/);
    expect(thrown(() => WordTokenizer.fit(['a', null] as never))).toMatch(/^ERR_INVALID_ARGUMENT: .*text\[1\] must be a string/);
  });

  test('decode options: ERR_INVALID_ARGUMENT naming them', () => {
    const t = WordTokenizer.fit('a');
    expect(thrown(() => t.decode([4], { skipSpecial: 'no' as never }))).toMatch(/^ERR_INVALID_ARGUMENT: WordTokenizer.decode: skipSpecial must be true or false/);
    expect(thrown(() => t.decode([4], { skipSpecials: true } as never))).toMatch(/^ERR_INVALID_ARGUMENT: .*unknown option 'skipSpecials'/);
  });
});

describe('CharTokenizer', () => {
  test('code points as tokens (an astral emoji is one), by descending count then code point', () => {
    // a 2, b 2, ' ' 1 (U+0020), '!' 1 (U+0021), 😀 1 (U+1F600)
    const t = CharTokenizer.fit('abba 😀!');
    expect(t.kind).toBe('char');
    expect(t.hasUnk).toBe(false);
    expect(t.tokens()).toEqual([...SPECIALS, 'a', 'b', ' ', '!', '😀']);
    expect('😀'.length).toBe(2);
    expect(ids(t.encode('😀'))).toEqual([8]);
    expect(ids(t.encode('ab 😀!'))).toEqual([4, 5, 6, 8, 7]);
    expect(t.split('a😀b')).toEqual(['a', '😀', 'b']);
    expect(t.decode(t.encode('ab 😀'))).toBe('ab 😀');
    // the same characters in another order give the same vocabulary
    expect(CharTokenizer.fit('!😀 baab').tokens()).toEqual(t.tokens());
    // a combining mark is its own code point
    expect(CharTokenizer.fit('e\u0301').tokens()).toEqual([...SPECIALS, 'e', '\u0301']);
  });

  test('decode concatenates; skipSpecial', () => {
    const t = CharTokenizer.fit('ab');
    expect(t.decode([SOS_ID, 4, 5, 4, EOS_ID, PAD_ID])).toBe('aba');
    expect(t.decode([SOS_ID, 4, EOS_ID], { skipSpecial: false })).toBe('<sos>a<eos>');
    expect(t.encodeSentences(['ab', 'b']).map(ids)).toEqual([[4, 5], [5]]);
  });

  test('without unk, an unseen character is ERR_VOCAB naming it, its code point and index, and the fix', () => {
    const t = CharTokenizer.fit('hello');
    const m = thrown(() => t.encode('helló'));
    expect(m).toMatch(/^ERR_VOCAB: /);
    expect(m).toContain("character 'ó' (U+00F3) at index 4 is not in the vocabulary");
    expect(m).toContain('unk: true');
    expect(m).toContain('fit the tokenizer on text that contains it');
    // the index counts code points, not UTF-16 units
    expect(thrown(() => CharTokenizer.fit('😀').encode('😀😀x'))).toContain("character 'x' (U+0078) at index 2");
    expect(thrown(() => t.encode('h😺'))).toContain("character '😺' (U+1F63A) at index 1");
  });

  test('unk: true maps unknown characters to <unk>; minFreq and maxVocab drop rare characters', () => {
    const u = CharTokenizer.fit('hello', { unk: true });
    expect(u.hasUnk).toBe(true);
    expect(ids(u.encode('hó😀'))).toEqual([u.idOf('h'), UNK_ID, UNK_ID]);
    const rare = CharTokenizer.fit('aaab', { unk: true, minFreq: 2 });
    expect(rare.tokens()).toEqual([...SPECIALS, 'a']);
    expect(ids(rare.encode('ab'))).toEqual([4, UNK_ID]);
    expect(CharTokenizer.fit('cbbaaa', { unk: true, maxVocab: 6 }).tokens()).toEqual([...SPECIALS, 'a', 'b']);
  });

  test('dropping characters without unk: true is refused, naming the option', () => {
    expect(thrown(() => CharTokenizer.fit('aaab', { minFreq: 2 }))).toMatch(
      /^ERR_INVALID_ARGUMENT: CharTokenizer.fit: minFreq = 2 drops 1 character\(s\) .*'b' \(U\+0062\).*unk: true/,
    );
    expect(thrown(() => CharTokenizer.fit('cbbaaa', { maxVocab: 6 }))).toMatch(/^ERR_INVALID_ARGUMENT: CharTokenizer.fit: maxVocab = 6 drops 1 .*unk: true/);
    // nothing dropped: fine without unk
    expect(CharTokenizer.fit('aabb', { minFreq: 2, maxVocab: 6 }).tokens()).toEqual([...SPECIALS, 'a', 'b']);
  });

  test('empty text or empty vocabulary: ERR_VOCAB', () => {
    expect(thrown(() => CharTokenizer.fit(''))).toMatch(/^ERR_VOCAB: CharTokenizer.fit: empty vocabulary: the text is empty/);
    expect(thrown(() => CharTokenizer.fit('ab', { unk: true, minFreq: 5 }))).toMatch(/^ERR_VOCAB: .*minFreq = 5/);
  });

  test.each([
    [{ minFreq: 0 }, /CharTokenizer.fit: minFreq must be an integer >= 1 \(got 0\)/],
    [{ minFreq: 'x' }, /minFreq must be an integer >= 1 \(got 'x'\)/],
    [{ maxVocab: 3 }, /CharTokenizer.fit: maxVocab must be an integer >= 5 \(got 3\)/],
    [{ maxVocab: Infinity }, /maxVocab must be an integer >= 5 \(got Infinity\)/],
    [{ unk: 'true' }, /CharTokenizer.fit: unk must be true or false \(got 'true'\)/],
    [{ unk: 0 }, /unk must be true or false \(got 0\)/],
    [{ lowercase: true }, /CharTokenizer.fit: unknown option 'lowercase'/],
  ])('option %o: ERR_INVALID_ARGUMENT naming it', (options, message) => {
    const m = thrown(() => CharTokenizer.fit('ab', options as never));
    expect(m).toMatch(/^ERR_INVALID_ARGUMENT: /);
    expect(m).toMatch(message);
  });

  test('text of the wrong type: ERR_INVALID_ARGUMENT', () => {
    expect(thrown(() => CharTokenizer.fit(['ab'] as never))).toMatch(/^ERR_INVALID_ARGUMENT: CharTokenizer.fit: text must be a string/);
    expect(thrown(() => CharTokenizer.fit('ab').encode(null as never))).toMatch(/^ERR_INVALID_ARGUMENT: .*text must be a string/);
  });
});

describe('JSON for checkpoints', () => {
  test('toJSON is the documented plain object', () => {
    expect(WordTokenizer.fit('b a b', { lowercase: true }).toJSON()).toEqual({
      type: 'word',
      version: 1,
      tokens: [...SPECIALS, 'b', 'a'],
      options: { lowercase: true },
    });
    expect(CharTokenizer.fit('b😀b', { unk: true }).toJSON()).toEqual({
      type: 'char',
      version: 1,
      tokens: [...SPECIALS, 'b', '😀'],
      options: { unk: true },
    });
  });

  const cases: [string, Tokenizer, string][] = [
    ['word, lowercase', WordTokenizer.fit('The cat, the dog.', { lowercase: true }), 'THE DOG, the bird.'],
    ['word, cased', WordTokenizer.fit("Don't (stop) <unk> now"), "don't Stop <unk> now"],
    ['char, unk', CharTokenizer.fit('héllo 😀', { unk: true }), 'hé😀 yo'],
    ['char, no unk', CharTokenizer.fit('héllo 😀'), 'hé😀 lol'],
  ];
  test.each(cases)('%s: toJSON -> JSON.stringify -> tokenizerFromJSON gives an equal tokenizer', (_name, t, sample) => {
    const again = tokenizerFromJSON(JSON.parse(JSON.stringify(t.toJSON())));
    expect(again.constructor).toBe(t.constructor);
    expect(again.kind).toBe(t.kind);
    expect(again.vocabSize).toBe(t.vocabSize);
    expect(again.tokens()).toEqual(t.tokens());
    expect(again.hasUnk).toBe(t.hasUnk);
    expect(again.toJSON()).toEqual(t.toJSON());
    expect(ids(again.encode(sample))).toEqual(ids(t.encode(sample)));
    expect(again.decode(again.encode(sample))).toBe(t.decode(t.encode(sample)));
  });

  const word = () => ({ type: 'word', version: 1, tokens: [...SPECIALS, 'a', 'b'], options: { lowercase: false } }) as Record<string, unknown>;
  const char = () => ({ type: 'char', version: 1, tokens: [...SPECIALS, 'a', '😀'], options: { unk: true } }) as Record<string, unknown>;

  test('the hand-written valid inputs are accepted', () => {
    expect(tokenizerFromJSON(word()).tokens()).toEqual([...SPECIALS, 'a', 'b']);
    expect(ids(tokenizerFromJSON(char()).encode('a😀z'))).toEqual([4, 5, UNK_ID]);
  });

  test.each<[string, unknown, RegExp]>([
    ['null', null, /expected a JSON object \(got null\)/],
    ['a JSON string instead of an object', JSON.stringify(word()), /expected a JSON object/],
    ['an array', [], /expected a JSON object \(got an array\)/],
    ['a number', 7, /expected a JSON object \(got 7\)/],
    ['an unknown type', { ...word(), type: 'bpe' }, /type must be 'word' or 'char' \(got "bpe"\)/],
    ['a missing type', { ...word(), type: undefined }, /type must be 'word' or 'char'/],
    ['another version', { ...word(), version: 2 }, /version 2 is not supported \(expected 1\)/],
    ['a version as a string', { ...word(), version: '1' }, /version "1" is not supported/],
    ['missing tokens', { ...word(), tokens: undefined }, /tokens must be an array of strings/],
    ['tokens as an object', { ...word(), tokens: { 0: '<pad>' } }, /tokens must be an array of strings \(got an object\)/],
    ['only the specials', { ...word(), tokens: [...SPECIALS] }, /tokens has 4 entries/],
    ['specials out of order', { ...word(), tokens: ['<unk>', '<pad>', '<sos>', '<eos>', 'a'] }, /tokens\[0\] must be <pad> \(got "<unk>"\)/],
    ['a missing special', { ...word(), tokens: ['<pad>', '<unk>', '<eos>', 'a', 'b'] }, /tokens\[2\] must be <sos>/],
    ['a duplicate token', { ...word(), tokens: [...SPECIALS, 'a', 'b', 'a'] }, /tokens\[6\] "a" appears more than once/],
    ['a special repeated later', { ...word(), tokens: [...SPECIALS, 'a', '<unk>'] }, /tokens\[5\] "<unk>" appears more than once/],
    ['a non-string token', { ...word(), tokens: [...SPECIALS, 7] }, /tokens\[4\] must be a non-empty string \(got 7\)/],
    ['a null token', { ...word(), tokens: [...SPECIALS, 'a', null] }, /tokens\[5\] must be a non-empty string \(got null\)/],
    ['an empty token', { ...word(), tokens: [...SPECIALS, ''] }, /tokens\[4\] must be a non-empty string/],
    ['missing options', { ...word(), options: undefined }, /options must be an object/],
    ['options as an array', { ...word(), options: [] }, /options must be an object \(got an array\)/],
    ['a non-boolean option', { ...word(), options: { lowercase: 'no' } }, /options.lowercase must be true or false \(got "no"\)/],
    ['a missing option', { ...word(), options: {} }, /options.lowercase must be true or false \(got undefined\)/],
    ['an unknown option', { ...word(), options: { lowercase: false, stem: true } }, /unknown option 'stem'/],
    ['a word option on a char tokenizer', { ...char(), options: { lowercase: false } }, /unknown option 'lowercase' for a char tokenizer/],
    ['an unknown field', { ...word(), extra: 1 }, /unknown field 'extra'/],
    ['a multi-character char token', { ...char(), tokens: [...SPECIALS, 'ab'] }, /tokens\[4\] "ab" of a char tokenizer is not a single character/],
    ['two emoji as one char token', { ...char(), tokens: [...SPECIALS, '😀😀'] }, /not a single character/],
  ])('rejects %s with ERR_CHECKPOINT', (_name, json, message) => {
    const m = thrown(() => tokenizerFromJSON(json));
    expect(m).toMatch(/^ERR_CHECKPOINT: tokenizer: /);
    expect(m).toMatch(message);
    expect(m).toMatch(/damaged or was not written by rnnlm$/);
  });
});
