// What the CPU offers, decided once at start-up in one place: the vector ISA our own kernels run
// (cpuid, capped by DPO_MAX_CPU_ISA=avx512|avx2|generic so tests take the narrower paths on any
// machine) and whether oneDNN's GEMM has bf16 units under its own cap (ONEDNN_MAX_CPU_ISA).
// Kernels never probe the CPU themselves: they are written once and cloned with DPO_ISA_CLONES.
#pragma once
#include <cstdint>
#include <string>

namespace dpo {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

Isa kernelIsa();
const char* isaName(Isa isa);
// oneDNN's effective ISA (after ONEDNN_MAX_CPU_ISA), as oneDNN names it.
const char* onednnIsaName();
// Whether bf16 GEMMs run on the CPU's bf16 units (oneDNN avx512_core_bf16 or AMX); otherwise bf16
// operands are multiplied by float32 GEMMs (the same products: bf16·bf16 is exact in float32).
bool bf16Units();
// Called when oneDNN refuses a bf16 primitive the ISA check allowed: the float32 route from then on.
void disableBf16Units();
// "kernels avx2, oneDNN avx2, bf16 via f32 GEMMs": for error messages and benchmarks.
std::string cpuSummary();

}  // namespace dpo

// DPO_ISA_CLONES(ret, name, (params), (args)) { body } defines `ret name(params)` whose body is
// compiled three times (AVX-512, AVX2+FMA, baseline) and picked by kernelIsa() at each call, so
// `#pragma omp simd` loops vectorise for the widest ISA allowed. Helpers the body calls must be
// inline (they are inlined into each copy). On other CPUs (aarch64) the body is compiled once.
#if defined(__x86_64__) && defined(__GNUC__)
#define DPO_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi,bmi2,f16c")))
#define DPO_TARGET_AVX2 __attribute__((target("avx2,fma,bmi,bmi2,f16c")))
#define DPO_ISA_CLONES(ret, name, params, args)                                  \
  static inline __attribute__((always_inline)) ret name##_body params;           \
  DPO_TARGET_AVX512 static ret name##_avx512 params { return name##_body args; } \
  DPO_TARGET_AVX2 static ret name##_avx2 params { return name##_body args; }     \
  static ret name##_generic params { return name##_body args; }                  \
  ret name params {                                                              \
    switch (::dpo::kernelIsa()) {                                                \
      case ::dpo::Isa::avx512: return name##_avx512 args;                        \
      case ::dpo::Isa::avx2: return name##_avx2 args;                            \
      default: return name##_generic args;                                       \
    }                                                                            \
  }                                                                              \
  static inline __attribute__((always_inline)) ret name##_body params
#else
#define DPO_ISA_CLONES(ret, name, params, args) ret name params
#endif
