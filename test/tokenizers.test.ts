// WordTokenizer and CharTokenizer: splitting, vocabulary rules, <unk>, round trips, JSON
// (validated as untrusted checkpoint metadata) and option errors.
import { describe, expect, test } from 'vitest';
import { RnnlmError } from '../lib/errors';
import { CharTokenizer, EOS_ID, PAD_ID, SOS_ID, UNK_ID, WordTokenizer, tokenizerFromJSON } from '../lib/tokenizers';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RnnlmError);
    return `${(e as RnnlmError).code}: ${(e as RnnlmError).message}`;
  }
  throw new Error('expected an RnnlmError');
}

describe('WordTokenizer', () => {
  test('splits on whitespace and punctuation; keeps apostrophes, hyphens, numbers and special tokens', () => {
    const t = WordTokenizer.fit('x');
    expect(t.split("Don't stop, term-end (3.14 miles)! <unk> <eos>")).toEqual([
      "Don't", 'stop', ',', 'term-end', '(', '3.14', 'miles', ')', '!', '<unk>', '<eos>',
    ]);
    expect(t.split('  \n\t ')).toEqual([]);
  });

  test('vocabulary: specials first, then by frequency, ties by first occurrence; minFreq, maxVocab, lowercase', () => {
    const text = 'b a c a b a d The the';
    const t = WordTokenizer.fit(text);
    expect(t.tokens()).toEqual(['<pad>', '<unk>', '<sos>', '<eos>', 'a', 'b', 'c', 'd', 'The', 'the']);
    expect(WordTokenizer.fit(text, { minFreq: 2 }).tokens()).toEqual(['<pad>', '<unk>', '<sos>', '<eos>', 'a', 'b']);
    expect(WordTokenizer.fit(text, { maxVocab: 5 }).tokens()).toEqual(['<pad>', '<unk>', '<sos>', '<eos>', 'a']);
    expect(WordTokenizer.fit(text, { lowercase: true }).tokens()).toEqual(['<pad>', '<unk>', '<sos>', '<eos>', 'a', 'b', 'the', 'c', 'd']);
    expect([PAD_ID, UNK_ID, SOS_ID, EOS_ID]).toEqual([0, 1, 2, 3]);
  });

  test('words outside the vocabulary encode to <unk>; decode puts punctuation back', () => {
    const t = WordTokenizer.fit('the cat sat . the ( big ) dog , too');
    const ids = t.encode('the zebra sat .');
    expect(Array.from(ids)).toEqual([t.idOf('the'), UNK_ID, t.idOf('sat'), t.idOf('.')]);
    expect(t.decode(t.encode('the cat sat , the ( big ) dog .'))).toBe('the cat sat, the (big) dog.');
    expect(t.decode([SOS_ID, t.idOf('cat')!, EOS_ID, PAD_ID])).toBe('cat');
    expect(t.decode([SOS_ID, t.idOf('cat')!], { skipSpecial: false })).toBe('<sos> cat');
  });

  test('fits 1.2 million words in well under two seconds', () => {
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', ',', '.'];
    const text = Array.from({ length: 1_200_000 }, (_, i) => words[(i * 7919) % 7]).join(' ');
    const t0 = performance.now();
    const t = WordTokenizer.fit(text);
    expect(t.encode(text).length).toBe(1_200_000);
    expect(performance.now() - t0).toBeLessThan(4000); // generous: a noisy 2-core machine
  });

  test('empty text or no word frequent enough: ERR_VOCAB', () => {
    expect(code(() => WordTokenizer.fit(''))).toMatch(/^ERR_VOCAB: .*empty/);
    expect(code(() => WordTokenizer.fit('a b c', { minFreq: 2 }))).toMatch(/^ERR_VOCAB: .*minFreq = 2/);
  });

  test('options: wrong type, out of range, unknown key', () => {
    expect(code(() => WordTokenizer.fit('a', { minFreq: 0 }))).toMatch(/^ERR_INVALID_ARGUMENT: WordTokenizer.fit: minFreq must be an integer >= 1/);
    expect(code(() => WordTokenizer.fit('a', { maxVocab: 4 }))).toMatch(/maxVocab must be an integer >= 5/);
    expect(code(() => WordTokenizer.fit('a', { lowercase: 'yes' as never }))).toMatch(/lowercase must be true or false/);
    expect(code(() => WordTokenizer.fit('a', { lowercse: true } as never))).toMatch(/unknown option 'lowercse'/);
    expect(code(() => WordTokenizer.fit(42 as never))).toMatch(/text must be a string/);
  });
});

describe('CharTokenizer', () => {
  test('code points as tokens (an emoji is one), by frequency then code point', () => {
    const t = CharTokenizer.fit('abba 😀!');
    expect(t.tokens()).toEqual(['<pad>', '<unk>', '<sos>', '<eos>', 'a', 'b', ' ', '!', '😀']);
    expect(t.decode(t.encode('ab 😀'))).toBe('ab 😀');
    expect(t.encode('😀')).toHaveLength(1);
  });

  test('without <unk>, an unseen character is ERR_VOCAB naming it; with unk: true it maps to <unk>', () => {
    const t = CharTokenizer.fit('hello');
    expect(code(() => t.encode('helló'))).toMatch(/^ERR_VOCAB: character 'ó' \(U\+00F3\) at index 4 is not in the vocabulary/);
    const u = CharTokenizer.fit('hello', { unk: true });
    expect(Array.from(u.encode('hó'))).toEqual([u.idOf('h'), UNK_ID]);
    const rare = CharTokenizer.fit('aaab', { unk: true, minFreq: 2 });
    expect(rare.idOf('b')).toBeUndefined();
    expect(code(() => CharTokenizer.fit('aaab', { minFreq: 2 }))).toMatch(/needs unk: true/);
    expect(code(() => CharTokenizer.fit(''))).toMatch(/^ERR_VOCAB/);
  });
});

describe('JSON for checkpoints', () => {
  test('round trips through JSON text', () => {
    for (const t of [WordTokenizer.fit('The cat, the dog.', { lowercase: true }), CharTokenizer.fit('héllo', { unk: true })]) {
      const again = tokenizerFromJSON(JSON.parse(JSON.stringify(t.toJSON())));
      expect(again.kind).toBe(t.kind);
      expect(again.tokens()).toEqual(t.tokens());
      expect(again.hasUnk).toBe(t.hasUnk);
      expect(Array.from(again.encode('The cat'))).toEqual(Array.from(t.encode('The cat')));
    }
  });

  const good = () => WordTokenizer.fit('a b').toJSON() as unknown as Record<string, unknown>;
  test.each([
    ['null', null],
    ['an array', []],
    ['an unknown type', { ...good(), type: 'bpe' }],
    ['another version', { ...good(), version: 2 }],
    ['missing tokens', { ...good(), tokens: undefined }],
    ['only the specials', { ...good(), tokens: ['<pad>', '<unk>', '<sos>', '<eos>'] }],
    ['specials out of order', { ...good(), tokens: ['<unk>', '<pad>', '<sos>', '<eos>', 'a'] }],
    ['a duplicate token', { ...good(), tokens: ['<pad>', '<unk>', '<sos>', '<eos>', 'a', 'a'] }],
    ['a non-string token', { ...good(), tokens: ['<pad>', '<unk>', '<sos>', '<eos>', 7] }],
    ['an empty token', { ...good(), tokens: ['<pad>', '<unk>', '<sos>', '<eos>', ''] }],
    ['bad options', { ...good(), options: { lowercase: 'no' } }],
    ['an unknown option', { ...good(), options: { lowercase: false, stem: true } }],
    ['an unknown field', { ...good(), extra: 1 }],
    ['a multi-character char token', { type: 'char', version: 1, tokens: ['<pad>', '<unk>', '<sos>', '<eos>', 'ab'], options: { unk: false } }],
  ])('rejects %s with ERR_CHECKPOINT', (_name, json) => {
    expect(code(() => tokenizerFromJSON(json))).toMatch(/^ERR_CHECKPOINT: tokenizer: /);
  });
});
