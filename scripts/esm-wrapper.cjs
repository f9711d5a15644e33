// Writes dist/index.mjs and dist/index.d.mts: the ESM entry re-exports the CommonJS build,
// so `import` and `require` share one copy of every class (instanceof RnnlmError holds
// across both). The export list is read from the build itself, never written twice.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const cjs = require(path.join(dist, 'cjs', 'index.js'));
const names = Object.keys(cjs).filter((n) => n !== 'default' && n !== '__esModule');
const lines = [
  "import cjs from './cjs/index.js';",
  `export const { ${names.join(', ')} } = cjs;`,
  'export default cjs;',
  '',
];
fs.writeFileSync(path.join(dist, 'index.mjs'), lines.join('\n'));
fs.writeFileSync(path.join(dist, 'index.d.mts'), "export * from './cjs/index.js';\n");
fs.chmodSync(path.join(dist, 'cjs', 'cli.js'), 0o755); // the `rnnlm` bin
