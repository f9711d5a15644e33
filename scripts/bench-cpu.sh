#!/usr/bin/env bash
# npm run bench:cpu — the CPU benchmark report (default bench/results/cpu-2core.json) in one go:
# PyTorch on the CPU first (bench/pytorch_bench.py --device cpu, where python3 can import torch:
# Debian's `apt-get install python3-torch`), then every CPU peer and the scaling sweep, with
# PyTorch's runs merged beside ours. Then `npm run bench:render` puts it in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/cpu-2core.json}
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
configs=$(node --import tsx -p "require('./bench/harness/configs.ts').CPU_DEFAULT.join(',')")
with=()
if "$py" -c 'import torch' 2>/dev/null; then
  # As long as ours per run: 10 s of training, 5 s of generation.
  "$py" bench/pytorch_bench.py --device cpu --configs "$configs" --seconds 10 --json "$tmp/pytorch-cpu.json"
  with=(--with "$tmp/pytorch-cpu.json")
else
  echo "bench:cpu: $py cannot import torch (apt-get install python3-torch): the report has no PyTorch peer" >&2
fi
npm run bench -- --budget "${BENCH_BUDGET:-300}" --scaling rnnlm-cpu,tfjs-wasm "${with[@]}" --json "$out"
