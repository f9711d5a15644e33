// npm run build:cuda — builds the CUDA backend (build-cuda/Release/rnnlm_cuda.node) with
// cmake-js when nvcc is found (CUDACXX, PATH, CUDA_HOME / CUDA_PATH, /usr/local/cuda*);
// otherwise says so and skips: the CPU backend never needs it.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function findNvcc() {
  const candidates = [process.env.CUDACXX];
  for (const dir of (process.env.PATH || '').split(path.delimiter)) if (dir) candidates.push(path.join(dir, 'nvcc'));
  for (const v of ['CUDA_HOME', 'CUDA_PATH']) if (process.env[v]) candidates.push(path.join(process.env[v], 'bin', 'nvcc'));
  const local = fs.existsSync('/usr/local') ? fs.readdirSync('/usr/local').filter((d) => /^cuda(-[\d.]+)?$/.test(d)).sort().reverse() : [];
  for (const d of local) candidates.push(path.join('/usr/local', d, 'bin', 'nvcc'));
  return candidates.find((c) => c && fs.existsSync(c));
}

module.exports = { findNvcc };
if (require.main !== module) return;

const nvcc = findNvcc();
if (!nvcc) {
  console.log('rnnlm: nvcc not found (CUDACXX, PATH, CUDA_HOME, /usr/local/cuda*): skipping the CUDA backend');
  process.exit(0);
}
const root = path.join(__dirname, '..');
const extra = process.argv.slice(2);
console.log(`rnnlm: building the CUDA backend with ${nvcc}`);
execFileSync(process.execPath, [require.resolve('cmake-js/bin/cmake-js'), 'compile', '--out', 'build-cuda', `--CDCMAKE_CUDA_COMPILER=${nvcc}`, ...extra], {
  cwd: root,
  stdio: 'inherit',
});
