// Shared pieces of the native core: argument access, the oneDNN GEMM, a vectorisable exp.
#pragma once
#include <napi.h>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace dpo {

inline float* F32(const Napi::Value& v) { return v.As<Napi::Float32Array>().Data(); }
inline float* F32OrNull(const Napi::Value& v) { return v.IsNull() || v.IsUndefined() ? nullptr : F32(v); }
inline int32_t* I32(const Napi::Value& v) { return v.As<Napi::Int32Array>().Data(); }
inline int32_t* I32OrNull(const Napi::Value& v) { return v.IsNull() || v.IsUndefined() ? nullptr : I32(v); }
inline uint8_t* U8(const Napi::Value& v) { return v.As<Napi::Uint8Array>().Data(); }
inline uint8_t* U8OrNull(const Napi::Value& v) { return v.IsNull() || v.IsUndefined() ? nullptr : U8(v); }
inline int64_t I64(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }
inline double F64(const Napi::Value& v) { return v.As<Napi::Number>().DoubleValue(); }
inline bool B(const Napi::Value& v) { return v.As<Napi::Boolean>().Value(); }

// An exception must never leave an OpenMP region (the runtime then terminates the process):
// work inside a region runs through guard(), which keeps the first exception, and rethrow()
// raises it after the region, where the N-API guard in addon.cc turns it into a JS error.
// DPO_FAIL_KERNEL=region makes guard() throw, so a test can prove the path without a real fault.
bool failInRegion();

class RegionErrors {
 public:
  template <typename F>
  void guard(F&& fn) {
    try {
      if (failInRegion()) throw std::runtime_error("failure injected inside an OpenMP region by DPO_FAIL_KERNEL=region");
      fn();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!first_) first_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::mutex mu_;
  std::exception_ptr first_;
};

// An operand several GEMMs share, rounded to bf16 once by the caller in bf16 mode: bf16 bits for
// the CPU's bf16 units, or the same values as floats for the float32 route (no bf16 units).
// Both null in float32 mode.
struct RoundedOperand {
  const uint16_t* bits = nullptr;
  const float* vals = nullptr;
  std::vector<uint16_t> b16;
  std::vector<float> f32;
};

// C (batch × M×N, ldc) = alpha·op(A)·op(B) + beta·C through a cached oneDNN matmul primitive.
// lda/ldb/ldc are row strides of the stored matrices; sa/sb/sc batch strides (0 broadcasts).
// In bf16 mode (setMatmulBf16) A and B are rounded to bf16 first unless bf16Ok is false, and
// multiplied on the bf16 units, or as bf16-valued floats by a float32 GEMM where there are none
// (bf16·bf16 products are exact in float32, so only the summation order differs).
// Ar / Br: the operand already rounded (roundOnce, or a frozen weight stored as bf16 bits): A / B
// is then ignored and the GEMM is bf16. An empty one (float32 mode) leaves A / B in use.
// oneDNN failures throw std::runtime_error naming the GEMM's shape and dtypes.
void gemm(int64_t batch, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, bool transA, int64_t sa,
          const float* B, int64_t ldb, bool transB, int64_t sb, float* C, int64_t ldc, int64_t sc, float alpha, float beta,
          bool bf16Ok = true, const RoundedOperand* Ar = nullptr, const RoundedOperand* Br = nullptr);

// In bf16 mode (setMatmulBf16): the n floats of x rounded once into out (pass it as gemm's Ar);
// in float32 mode out stays empty and gemm uses A itself.
void roundOnce(const float* x, int64_t n, RoundedOperand& out);

// exp(x) for float, accurate to ~2 ulp, written so `#pragma omp simd` loops vectorise it. x ≤ −88
// (−inf included) gives exactly 0: the clamped exponent bits underflow to 0, which callers rely on.
__attribute__((always_inline)) inline float fast_exp(float x) {
  x = x < -88.0f ? -88.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float log2e = 1.44269504088896341f;
  float t = x * log2e;
  // round to nearest via truncation of t ± 0.5 (SSE2-vectorisable, unlike floor)
  int32_t ii = static_cast<int32_t>(t + (t >= 0.0f ? 0.5f : -0.5f));
  float fi = static_cast<float>(ii);
  float f = (t - fi) * 0.69314718055994531f;
  // exp(f), |f| ≤ ln2/2: degree-6 Taylor/minimax polynomial
  float p = 1.0f + f * (1.0f + f * (0.5f + f * (0.16666667f + f * (0.041666668f + f * (0.0083333338f + f * 0.0013888889f)))));
  union { int32_t i; float f; } u;
  u.i = (ii + 127) << 23;
  return p * u.f;
}

// exp that keeps IEEE semantics at the edges the kernels rely on: −inf → 0, NaN → NaN.
inline float safe_exp(float x) {
  if (x != x) return x;
  if (x == -std::numeric_limits<float>::infinity()) return 0.0f;
  return fast_exp(x);
}

}  // namespace dpo
