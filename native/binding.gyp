{
  "targets": [
    {
      "target_name": "dpo_native",
      "sources": [
        "src/addon.cc", "src/gemm.cc", "src/elementwise.cc", "src/softmax.cc", "src/norm.cc",
        "src/rope.cc", "src/embedding.cc", "src/attention.cc", "src/logprob.cc", "src/cpu.cc",
        "src/stored-gemm.cc", "src/mmap.cc", "src/quantize.cc", "src/parallel-read.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      # No ISA flags here on purpose: src/cpu.h compiles each vector loop per ISA and picks one at
      # start-up, so one build runs on every x86-64 CPU (and the sources build on aarch64).
      # -fno-trapping-math lets GCC if-convert the float selects in fast_exp, so the exp loops
      # (log-prob, softmax, SiLU) vectorise; results are unchanged (only FP exception flags).
      "cflags_cc": ["-O3", "-std=c++17", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags!": ["-fno-exceptions"],
      "libraries": ["-ldnnl", "-fopenmp"]
    }
  ]
}
