// The built package's two entry points (CommonJS and ESM) load the same classes, so an
// RnnlmError thrown by the native backend is `instanceof RnnlmError` from either.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';

const root = join(__dirname, '..');

test('package.json declares ESM and CommonJS entry points with types, and Node >= 20', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  expect(pkg.name).toBe('rnnlm');
  expect(pkg.engines.node).toBe('>=20');
  for (const file of [pkg.exports['.'].import.default, pkg.exports['.'].import.types, pkg.exports['.'].require.default, pkg.exports['.'].require.types]) {
    expect(existsSync(join(root, file)), `${file} (run npm run build:ts)`).toBe(true);
  }
});

const script = (mod: 'esm' | 'cjs') => `
  ${mod === 'esm' ? "import { cpuBackend, RnnlmError } from 'rnnlm';" : "const { cpuBackend, RnnlmError } = require('rnnlm');"}
  const s = cpuBackend.createStream();
  let ok = false;
  try { s.alloc('f16', 1); } catch (e) { ok = e instanceof RnnlmError && e.code === 'ERR_INVALID_ARGUMENT'; }
  s.dispose();
  console.log(ok ? 'ok' : 'wrong error');
`;

test.each(['esm', 'cjs'] as const)('%s entry point loads the native backend', (mod) => {
  // Resolve 'rnnlm' as a user would: by package name, through the exports map (self-reference).
  const out = execFileSync(process.execPath, [mod === 'esm' ? '--input-type=module' : '--input-type=commonjs', '-e', script(mod)], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(out.trim()).toBe('ok');
});
