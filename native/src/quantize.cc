// Load-time conversions of frozen weights (src/quant/storage.ts is the reference, bit for bit):
// bitsandbytes' blockwise NF4/FP4 quantization (blocks of 64), the nested 8-bit dynamic
// quantization of its absmax (blocks of 256), LLM.int8's row-wise int8 (bf16 → f32 widening at load is parallel-read.cc's).
// The 4-bit and int8 quantizers take float32 values or bf16 bits (widened exactly in register, so
// a bf16 checkpoint is quantized without a float32 copy). OpenMP over blocks / rows; the block
// loops are branchless (NF4/FP4 codes as a count of the pivots below x, as dQuantizeNF4's compare
// chain, a max with a NaN flag) and cloned per ISA so they vectorise. No FMA: every operation is
// a single float32 multiply or compare, rounded as the reference's Math.fround.
#include <omp.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cfloat>
#include "common.h"
#include "cpu.h"

namespace dpo {

namespace {

// dQuantizeNF4's pivots (codes.ts NF4_PIVOTS): the code is the number of pivots x exceeds.
const float NF4_PIVOTS[15] = {
    -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f, -0.23460740596055984f,
    -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f, 0.2035212516784668f,
    0.2920137718319893f, 0.3893125355243683f, 0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f};
const float FP4_PIVOTS[7] = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f};

// x as float32: float32 input as is, bf16 bits widened (exact).
struct F32In {
  const float* p;
  inline float operator[](int64_t i) const { return p[i]; }
};
struct Bf16In {
  const uint16_t* p;
  inline float operator[](int64_t i) const {
    const uint32_t u = (uint32_t)p[i] << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

// max |x[s..s+len)| as JavaScript's Math.max chain has it (a NaN makes the maximum NaN), branchless.
template <class In>
inline __attribute__((always_inline)) float blockAbsMax(In x, int64_t s, int64_t len) {
  float m = 0;
  int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
  for (int64_t i = 0; i < len; i++) {
    const float a = std::fabs(x[s + i]);
    nan |= a != a;
    m = a > m ? a : m;
  }
  return nan ? NAN : m;
}

// 4-bit blocks [b0, b1): absmax, then each code as the count of pivots below x (NF4: 15 pivots,
// the code itself; FP4: 7 pivots on |x| give the rank, code = rank with bit 2 flipped when bit 1
// is set (0,1,6,7,4,5,2,3), plus 8 for x < 0). A NaN is below no pivot: code 0, as the reference.
template <class In>
inline __attribute__((always_inline)) void quant4Block(In w, int64_t s, int64_t len, bool fp4, uint8_t* packed, float* absmax, int64_t b) {
    const float m = blockAbsMax(w, s, len);
    absmax[b] = m;
    const float inv = 1.0f / m;
    uint8_t c[65];
    if (fp4) {
#pragma omp simd
      for (int64_t i = 0; i < len; i++) {
        const float x = w[s + i] * inv, a = std::fabs(x);
        int r = 0;
        for (int k = 0; k < 7; k++) r += a > FP4_PIVOTS[k] ? 1 : 0;
        c[i] = (uint8_t)((r ^ ((r & 2) << 1)) + (x < 0 ? 8 : 0));
      }
    } else {
#pragma omp simd
      for (int64_t i = 0; i < len; i++) {
        const float x = w[s + i] * inv;
        int q = 0;
        for (int k = 0; k < 15; k++) q += x > NF4_PIVOTS[k] ? 1 : 0;
        c[i] = (uint8_t)q;
      }
    }
    c[len] = 0;  // len odd: the low nibble of the last byte
    // A block starts on an even index: its bytes are its own.
    for (int64_t j = 0; j < (len + 1) / 2; j++) packed[(s >> 1) + j] = (uint8_t)((c[2 * j] << 4) | c[2 * j + 1]);
}

template <class In>
inline __attribute__((always_inline)) void quant4Blocks(In w, int64_t n, bool fp4, uint8_t* packed, float* absmax, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; b++) {
    const int64_t s = b * 64;
    // A full block with the length a constant (loops without remainders), else the tail block.
    if (n - s >= 64) quant4Block(w, s, 64, fp4, packed, absmax, b);
    else quant4Block(w, s, n - s, fp4, packed, absmax, b);
  }
}

// Rows [r0, r1): SCB = max|row|, CB = round-half-even(x · (127/SCB)), 0 where that is not finite.
template <class In>
inline __attribute__((always_inline)) void int8Rows(In w, int64_t cols, int8_t* cb, float* scb, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const int64_t o = r * cols;
    const float m = blockAbsMax(w, o, cols);
    scb[r] = m;
    const float sc = 127.0f / m;
#pragma omp simd
    for (int64_t j = 0; j < cols; j++) {
      const float t = w[o + j] * sc;
      cb[o + j] = std::fabs(t) <= FLT_MAX ? (int8_t)(int)std::nearbyint(t) : 0;
    }
  }
}

}  // namespace

DPO_ISA_CLONES(void, quant4F32, (const float* w, int64_t n, bool fp4, uint8_t* packed, float* absmax, int64_t b0, int64_t b1), (w, n, fp4, packed, absmax, b0, b1)) {
  quant4Blocks(F32In{w}, n, fp4, packed, absmax, b0, b1);
}
DPO_ISA_CLONES(void, quant4Bf16, (const uint16_t* w, int64_t n, bool fp4, uint8_t* packed, float* absmax, int64_t b0, int64_t b1), (w, n, fp4, packed, absmax, b0, b1)) {
  quant4Blocks(Bf16In{w}, n, fp4, packed, absmax, b0, b1);
}
DPO_ISA_CLONES(void, int8F32, (const float* w, int64_t cols, int8_t* cb, float* scb, int64_t r0, int64_t r1), (w, cols, cb, scb, r0, r1)) {
  int8Rows(F32In{w}, cols, cb, scb, r0, r1);
}
DPO_ISA_CLONES(void, int8Bf16, (const uint16_t* w, int64_t cols, int8_t* cb, float* scb, int64_t r0, int64_t r1), (w, cols, cb, scb, r0, r1)) {
  int8Rows(Bf16In{w}, cols, cb, scb, r0, r1);
}

namespace {

// Whether a typed-array argument holds bf16 bits (Uint16Array) rather than float32 values.
inline bool isBf16(const Napi::Value& v) { return v.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array; }
inline const uint16_t* U16(const Napi::Value& v) { return v.As<Napi::Uint16Array>().Data(); }

// codes.ts quantizeDynamic8: binary search, round to nearest between neighbours. Branchless steps
// (selects, not jumps): the comparisons are data-dependent coin flips a branch predictor misses.
inline int qDynamic8(float x, const float* code) {
  int pivot = 127, upperPivot = 255, lowerPivot = 0;
  float lower = -1, upper = 1, val = code[pivot];
  for (int i = 64; i > 0; i >>= 1) {
    const bool gt = x > val;
    lowerPivot = gt ? pivot : lowerPivot;
    lower = gt ? val : lower;
    upperPivot = gt ? upperPivot : pivot;
    upper = gt ? upper : val;
    pivot += gt ? i : -i;
    val = code[pivot];
  }
  if (upperPivot == 255) upper = code[upperPivot];
  if (lowerPivot == 0) lower = code[lowerPivot];
  if (x > val) return x > (float)(((double)upper + val) * 0.5) ? upperPivot : pivot;
  return x < (float)(((double)lower + val) * 0.5) ? lowerPivot : pivot;
}

// Math.max(m, |x|) as JavaScript has it: a NaN makes (and keeps) the maximum NaN.
inline float maxAbs(float m, float x) {
  const float a = std::fabs(x);
  return std::isnan(m) || std::isnan(a) ? NAN : std::max(m, a);
}

}  // namespace

// quantize4bit(w, n, fp4, packed, absmax): packed (⌈n/2⌉ bytes) and absmax (⌈n/64⌉); w float32
// values or bf16 bits (Uint16Array).
Napi::Value Quantize4bit(const Napi::CallbackInfo& info) {
  const bool bf16 = isBf16(info[0]);
  const float* wf = bf16 ? nullptr : F32(info[0]);
  const uint16_t* wb = bf16 ? U16(info[0]) : nullptr;
  const int64_t n = I64(info[1]);
  const bool fp4 = B(info[2]);
  uint8_t* packed = U8(info[3]);
  float* absmax = F32(info[4]);
  const int64_t nb = (n + 63) / 64, per = 256;  // blocks per task
  // Dynamic: on a busy machine one descheduled thread would otherwise hold up its static half.
#pragma omp parallel for schedule(dynamic, 1) if (n > (1 << 16))
  for (int64_t b = 0; b < nb; b += per) {
    const int64_t e = std::min(nb, b + per);
    if (bf16) quant4Bf16(wb, n, fp4, packed, absmax, b, e);
    else quant4F32(wf, n, fp4, packed, absmax, b, e);
  }
  return info.Env().Undefined();
}

// quantizeNested(absmax, n, code8, q, absmax2) → offset: the float32 mean (float64 sum, in order),
// then absmax − offset quantized with the 8-bit dynamic map in blocks of 256.
Napi::Value QuantizeNested(const Napi::CallbackInfo& info) {
  const float* a = F32(info[0]);
  const int64_t n = I64(info[1]);
  const float* code = F32(info[2]);
  uint8_t* q = U8(info[3]);
  float* absmax2 = F32(info[4]);
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += a[i];
  const float offset = (float)(sum / (double)n);
  const int64_t nb = (n + 255) / 256;
#pragma omp parallel for schedule(dynamic, 16) if (n > (1 << 14))
  for (int64_t b = 0; b < nb; b++) {
    const int64_t s = b * 256, e = std::min<int64_t>(n, s + 256);
    float m = 0;
    for (int64_t i = s; i < e; i++) m = maxAbs(m, a[i] - offset);
    absmax2[b] = m;
    const float inv = 1.0f / m;
    for (int64_t i = s; i < e; i++) {
      const float c = a[i] - offset;
      q[i] = (uint8_t)qDynamic8(c * inv, code);
    }
  }
  return Napi::Number::New(info.Env(), offset);
}

// quantizeInt8Rows(w, rows, cols, cb, scb): SCB = max|row|, CB = round-half-even(w · (127/SCB));
// w float32 values or bf16 bits (Uint16Array).
Napi::Value QuantizeInt8Rows(const Napi::CallbackInfo& info) {
  const bool bf16 = isBf16(info[0]);
  const float* wf = bf16 ? nullptr : F32(info[0]);
  const uint16_t* wb = bf16 ? U16(info[0]) : nullptr;
  const int64_t rows = I64(info[1]), cols = I64(info[2]);
  int8_t* cb = (int8_t*)info[3].As<Napi::Int8Array>().Data();
  float* scb = F32(info[4]);
  const int64_t per = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols));  // rows per task
#pragma omp parallel for schedule(dynamic, 1) if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; r += per) {
    const int64_t e = std::min(rows, r + per);
    if (bf16) int8Bf16(wb, cols, cb, scb, r, e);
    else int8F32(wf, cols, cb, scb, r, e);
  }
  return info.Env().Undefined();
}

}  // namespace dpo
