// The benchmark harness is tooling in bench/harness/ of a clone, outside lib/: the CLI loads it
// in its bench action only, so the library and the other commands never load it (nor tfjs
// through it), and the built CLI, which has no harness beside it, says so in one line.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import * as harness from '../../bench/harness/run';
import type { BenchHarness } from '../../lib/cli';

const root = join(__dirname, '..', '..');

// The CLI's own description of the harness (it cannot import its types): checked here by tsc.
harness satisfies BenchHarness;

test("import of the library and the CLI's other commands load nothing of the harness", () => {
  const script = `
    require('./lib/index');
    require('./lib/cli').main(['node', 'rnnlm', 'summary', '--vocab-size', '10']).then((code) => {
      const loaded = Object.keys(require.cache).filter((f) => /bench[\\\\/]harness|@tensorflow/.test(f));
      console.error(JSON.stringify({ code, loaded }));
    });`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: root, encoding: 'utf8' });
  const last = JSON.parse(r.stderr.trim().split('\n').pop()!);
  expect(last).toEqual({ code: 0, loaded: [] });
});

test('the built CLI, as published (no bench/harness beside dist/), says in one line that bench needs a clone', () => {
  const cli = join(root, 'dist', 'cjs', 'cli.js');
  expect(existsSync(cli), `${cli} (run npm run build:ts)`).toBe(true);
  const r = spawnSync(process.execPath, [cli, 'bench', '--quick'], { cwd: root, encoding: 'utf8' });
  expect(r.status).toBe(1);
  expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^rnnlm: bench needs a clone of the repository .*npm run bench/)]);
  const help = spawnSync(process.execPath, [cli, 'bench', '--help'], { cwd: root, encoding: 'utf8' });
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(/bench needs a clone/);
});
