#!/usr/bin/env bash
# Run here (no GPU needed): builds both addons and packs what the GPU machine needs into
# .gpu/ (ignored by git; carried by the device tool): the bundled check, the addons, a
# compressed Node binary and the CPU addon's shared libraries. Then, on the GPU machine:
#   bash scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build:native >/dev/null
npm run build:cuda
rm -rf .gpu && mkdir -p .gpu/lib
npx esbuild scripts/gpu-check.ts --bundle --platform=node --format=cjs --outfile=.gpu/gpu-check.cjs --log-level=warning
cp build/Release/rnnlm_cpu.node .gpu/
cp build-cuda/Release/rnnlm_cuda.node .gpu/
for lib in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0; do
  cp -L "$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')" .gpu/lib/
done
tar -C .gpu -cJf .gpu/libs.tar.xz lib && rm -rf .gpu/lib
xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz
cp bench/pytorch_bench.py .gpu/ 2>/dev/null || true
du -sh .gpu && ls -la .gpu
