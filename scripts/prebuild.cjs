// npm run prebuild — the binaries a user's `npm install` gets (no compiler, no scripts):
//   prebuilds/linux-x64/rnnlm.node            the CPU addon, Node-API (one binary for Node 20,
//                                              22, 24), OpenBLAS, libstdc++ and libgcc linked in
//   prebuilds/cuda/linux-x64/rnnlm_cuda.node  the CUDA addon, if it was built (npm run build:cuda)
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
execFileSync(process.execPath, [require.resolve('prebuildify/bin.js'), '--napi', '--strip'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, RNNLM_STATIC_BLAS: '1' },
});
const cuda = path.join(root, 'build-cuda', 'Release', 'rnnlm_cuda.node');
if (fs.existsSync(cuda)) {
  const dir = path.join(root, 'prebuilds', 'cuda', `${process.platform}-${process.arch}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(cuda, path.join(dir, 'rnnlm_cuda.node'));
  console.log(`rnnlm: CUDA prebuild ${path.relative(root, dir)}/rnnlm_cuda.node`);
} else {
  console.log('rnnlm: no CUDA build (npm run build:cuda); the package will have the CPU backend only');
}
