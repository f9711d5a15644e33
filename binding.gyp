{
  "variables": {
    # Prebuilds (RNNLM_STATIC_BLAS=1, scripts/prebuild.cjs) link OpenBLAS, libstdc++ and libgcc
    # statically, so the addon loads on a plain Debian/Ubuntu image with no libopenblas.
    "rnnlm_static_blas%": "<!(node -p \"process.env.RNNLM_STATIC_BLAS === '1' ? 'true' : 'false'\")"
  },
  "targets": [
    {
      # The CPU backend. It never links CUDA, so it loads on every machine.
      "target_name": "rnnlm_cpu",
      "sources": ["native/cpu/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["rnnlm_static_blas=='true'", {
          "libraries": ["-l:libopenblas.a", "-lpthread", "-lm", "-static-libstdc++", "-static-libgcc", "-Wl,--exclude-libs,ALL"]
        }, {
          "libraries": ["-lopenblas"]
        }]
      ]
    }
  ]
}
