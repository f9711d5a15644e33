import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let root: string | undefined;

/** The folder of rnnlm's package.json, from the source tree (lib/) or the build (dist/). */
export function packageRoot(): string {
  if (root) return root;
  let dir = __dirname;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'rnnlm') {
      return (root = dir);
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`rnnlm: package.json not found above ${__dirname}`);
    dir = up;
  }
}

/** require() that works from both the CommonJS build and the TypeScript sources under test. */
export const nodeRequire = createRequire(join(__dirname, 'package-root.js'));
