#!/usr/bin/env bash
# npm run test:asan — the CPU addon built with AddressSanitizer and UndefinedBehaviorSanitizer
# (from the same binding.gyp, into build-asan/), then every test that drives native code, run
# with the sanitizer runtimes preloaded into Node. Any finding aborts the test process, and the
# run fails. Leak checking is off: V8 and Node keep memory until exit by design.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=build-asan
rm -rf "$out"
mkdir -p "$out"
cp -r binding.gyp package.json native "$out/"
# RNNLM_NO_DISPATCH: the baseline (SSE2) float kernels of vecmath.h, so that the build the tests
# do not otherwise reach on an AVX2 machine runs every test too.
san="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow -fno-omit-frame-pointer -g -DRNNLM_NO_DISPATCH"
(cd "$out" && CXXFLAGS="$san" LDFLAGS="-fsanitize=address,undefined,float-cast-overflow" npm run --silent build:native > build.log 2>&1) \
  || { tail -30 "$out/build.log"; exit 1; }
addon="$root/$out/build/Release/rnnlm_cpu.node"
nm -D -u "$addon" | grep __asan_init > /dev/null || { echo "test:asan: $addon is not instrumented" >&2; exit 1; }
export RNNLM_CPU_ADDON="$addon" RNNLM_SANITIZED=1
export LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export FUZZ_CASES="${FUZZ_CASES:-1000}"
echo "test:asan: $addon (ASan + UBSan)"
# Every test file that loads the addon (or those named on the command line).
if [ $# -eq 0 ]; then
  set -- test/reference/ops.test.ts test/unit/errors.test.ts test/reference/gradcheck-network.test.ts test/reference/tfjs-reference.test.ts \
    test/unit/sampling.test.ts test/model/lifetime.test.ts test/model/model.test.ts test/stress/event-loop.test.ts test/stress/fuzz-checkpoint.test.ts \
    test/unit/safetensors.test.ts test/unit/tokenizers.test.ts test/reference/pytorch-fixtures.test.ts test/stress/crash-safety.test.ts \
    test/stress/process-lifecycle.test.ts test/reference/adaptive-decoder.test.ts test/reference/quantized.test.ts \
    test/reference/regularizers.test.ts test/reference/cache.test.ts test/model/cache-inference.test.ts \
    test/reference/graphs.test.ts test/unit/rnn-options.test.ts test/model/precision.test.ts \
    test/reference/loss-scale.test.ts
fi
npx vitest run "$@"
