// npm's install step for rnnlm. A prebuilt addon (or one already compiled here) that loads: done.
// Otherwise node-gyp-build compiles the CPU addon, which needs a C++ compiler, make, python3
// (node-gyp) and OpenBLAS's headers. Where one is missing this says so in one line, with the
// command that installs it, instead of a compiler's log.
//   node scripts/install.cjs            the install step
//   node scripts/install.cjs --missing  prints the Debian packages still missing (npm run setup)
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');

/** What compiling needs: [what it is, is it there, its Debian package]. */
function prerequisites() {
  const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
  const compiler = has('c++');
  // The header as the compiler finds it (Debian keeps cblas.h under its multiarch include dir).
  const cblas = compiler && spawnSync('c++', ['-E', '-x', 'c++', '-'], { input: '#include <cblas.h>\n', stdio: ['pipe', 'ignore', 'ignore'] }).status === 0;
  return [
    ['a C++ compiler (c++)', compiler, 'g++'],
    ['make', has('make'), 'make'],
    ['python3 (for node-gyp)', has('python3'), 'python3'],
    ["OpenBLAS's headers (cblas.h)", cblas, 'libopenblas-dev'],
  ];
}

function loads() {
  try {
    require('node-gyp-build')(root);
    return true;
  } catch {
    return false;
  }
}

if (process.argv[2] === '--missing') {
  console.log(prerequisites().filter(([, ok]) => !ok).map(([, , pkg]) => pkg).join(' '));
  process.exit(0);
}
if (!loads()) {
  const missing = prerequisites().filter(([, ok]) => !ok);
  if (missing.length > 0) {
    console.error(
      `rnnlm: no prebuilt binary loads on this machine (${process.platform}-${process.arch}), and compiling the CPU addon needs ` +
        `${missing.map(([what]) => what).join(', ')}. In a clone of rnnlm: npm run setup. Elsewhere: apt-get install ` +
        `${missing.map(([, , pkg]) => pkg).join(' ')} (Debian, Ubuntu) or dnf install gcc-c++ make python3 openblas-devel (Fedora, RHEL), then npm rebuild rnnlm`,
    );
    process.exit(1);
  }
  const r = spawnSync(process.execPath, [require.resolve('node-gyp-build/bin.js')], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
