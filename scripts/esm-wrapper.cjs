// Writes the ESM entry points of package.json's "exports" (dist/index.mjs, dist/advanced.mjs and
// their .d.mts): each re-exports its CommonJS build, so `import` and `require` share one copy of
// every class (instanceof RnnlmError holds across both). The entries and their export lists are
// read from package.json and from the build itself, never written twice.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const { exports: entries } = require(path.join(root, 'package.json'));
for (const entry of Object.values(entries)) {
  if (typeof entry !== 'object') continue; // "./package.json"
  const esm = path.join(root, entry.import.default);
  const cjsFile = path.join(root, entry.require.default);
  const cjs = require(cjsFile);
  const names = Object.keys(cjs).filter((n) => n !== 'default' && n !== '__esModule');
  const from = `./${path.relative(path.dirname(esm), cjsFile).split(path.sep).join('/')}`;
  const lines = [`import cjs from '${from}';`, `export const { ${names.join(', ')} } = cjs;`, 'export default cjs;', ''];
  fs.writeFileSync(esm, lines.join('\n'));
  fs.writeFileSync(path.join(root, entry.import.types), `export * from '${from}';\n`);
}
fs.chmodSync(path.join(root, 'dist', 'cjs', 'cli.js'), 0o755); // the `rnnlm` bin
