// The one place that looks at the CPU (see cpu.h).
#include "cpu.h"
#include <atomic>
#include <cstdlib>
#include <cstring>
#include "dnnl.hpp"

namespace dpo {
namespace {

Isa detect() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  Isa hw = Isa::generic;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) hw = Isa::avx2;
  if (hw == Isa::avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    hw = Isa::avx512;
#else
  Isa hw = Isa::generic;
#endif
  // The cap only narrows: asking for more than the CPU has keeps what it has.
  const char* cap = std::getenv("DPO_MAX_CPU_ISA");
  if (!cap || !*cap) return hw;
  Isa want = hw;
  if (!strcasecmp(cap, "avx512") || !strcasecmp(cap, "avx512_core") || !strcasecmp(cap, "all")) want = Isa::avx512;
  else if (!strcasecmp(cap, "avx2")) want = Isa::avx2;
  else if (!strcasecmp(cap, "generic") || !strcasecmp(cap, "sse41") || !strcasecmp(cap, "default")) want = Isa::generic;
  return static_cast<int>(want) < static_cast<int>(hw) ? want : hw;
}

std::atomic<bool> g_noBf16Units{false};

}  // namespace

Isa kernelIsa() {
  static const Isa isa = detect();
  return isa;
}

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

const char* onednnIsaName() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
  }
}

bool bf16Units() {
  static const bool units = [] {
    const unsigned isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const unsigned need = static_cast<unsigned>(dnnl_cpu_isa_avx512_core_bf16);
    return (isa & need) == need;
  }();
  return units && !g_noBf16Units.load(std::memory_order_relaxed);
}

void disableBf16Units() { g_noBf16Units.store(true, std::memory_order_relaxed); }

std::string cpuSummary() {
  return std::string("kernels ") + isaName(kernelIsa()) + ", oneDNN " + onednnIsaName() +
         (bf16Units() ? ", bf16 on bf16 units" : ", bf16 via f32 GEMMs");
}

}  // namespace dpo
