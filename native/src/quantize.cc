// Load-time conversions of frozen weights (src/quant/storage.ts is the reference, bit for bit):
// bitsandbytes' blockwise NF4/FP4 quantization (blocks of 64), the nested 8-bit dynamic
// quantization of its absmax (blocks of 256), LLM.int8's row-wise int8, and bf16 → f32 widening.
// OpenMP over blocks / rows. Plain scalar float code (no ISA clones, no FMA contraction), each
// operation rounded to float32 as the reference's Math.fround does.
#include <omp.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include "common.h"

namespace dpo {

namespace {

// dQuantizeNF4's pivots (codes.ts NF4_PIVOTS): the code is the number of pivots x exceeds.
const float NF4_PIVOTS[15] = {
    -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f, -0.23460740596055984f,
    -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f, 0.2035212516784668f,
    0.2920137718319893f, 0.3893125355243683f, 0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f};
const float FP4_PIVOTS[7] = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f};
const int FP4_BY_RANK[8] = {0b0000, 0b0001, 0b0110, 0b0111, 0b0100, 0b0101, 0b0010, 0b0011};

// The number of (ascending) pivots below x by a 4-step binary search: the reference's linear count.
inline int qNf4(float x) {
  int q = x > NF4_PIVOTS[7] ? 8 : 0;
  q += x > NF4_PIVOTS[q + 3] ? 4 : 0;
  q += x > NF4_PIVOTS[q + 1] ? 2 : 0;
  return q + (x > NF4_PIVOTS[q] ? 1 : 0);
}

inline int qFp4(float x) {
  const int sign = x < 0 ? 0b1000 : 0;
  const float a = std::fabs(x);
  int r = a > FP4_PIVOTS[3] ? 4 : 0;
  r += a > FP4_PIVOTS[r + 1] ? 2 : 0;
  r += a > FP4_PIVOTS[r] ? 1 : 0;
  return FP4_BY_RANK[r] + sign;
}

// codes.ts quantizeDynamic8: binary search, round to nearest between neighbours.
inline int qDynamic8(float x, const float* code) {
  int pivot = 127, upperPivot = 255, lowerPivot = 0;
  float lower = -1, upper = 1, val = code[pivot];
  for (int i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lowerPivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upperPivot = pivot;
      upper = val;
      pivot -= i;
    }
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

// quantize4bit(w, n, fp4, packed, absmax): packed (⌈n/2⌉ bytes, zeroed here) and absmax (⌈n/64⌉).
Napi::Value Quantize4bit(const Napi::CallbackInfo& info) {
  const float* w = F32(info[0]);
  const int64_t n = I64(info[1]);
  const bool fp4 = B(info[2]);
  uint8_t* packed = U8(info[3]);
  float* absmax = F32(info[4]);
  const int64_t nb = (n + 63) / 64;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t b = 0; b < nb; b++) {
    const int64_t s = b * 64, e = std::min<int64_t>(n, s + 64);
    float m = 0;
    for (int64_t i = s; i < e; i++) m = maxAbs(m, w[i]);
    absmax[b] = m;
    const float inv = 1.0f / m;
    // A block starts on an even index: its bytes are its own.
    for (int64_t i = s; i < e; i += 2) {
      const float x0 = w[i] * inv;
      const int c0 = fp4 ? qFp4(x0) : qNf4(x0);
      int c1 = 0;
      if (i + 1 < e) {
        const float x1 = w[i + 1] * inv;
        c1 = fp4 ? qFp4(x1) : qNf4(x1);
      }
      packed[i >> 1] = (uint8_t)((c0 << 4) | c1);
    }
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
#pragma omp parallel for schedule(static) if (n > (1 << 14))
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

// quantizeInt8Rows(w, rows, cols, cb, scb): SCB = max|row|, CB = round-half-even(w · (127/SCB)).
Napi::Value QuantizeInt8Rows(const Napi::CallbackInfo& info) {
  const float* w = F32(info[0]);
  const int64_t rows = I64(info[1]), cols = I64(info[2]);
  int8_t* cb = (int8_t*)info[3].As<Napi::Int8Array>().Data();
  float* scb = F32(info[4]);
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; r++) {
    const float* x = w + r * cols;
    float m = 0;
    for (int64_t j = 0; j < cols; j++) m = maxAbs(m, x[j]);
    scb[r] = m;
    const float s = 127.0f / m;
    for (int64_t j = 0; j < cols; j++) {
      const float t = x[j] * s;
      cb[r * cols + j] = std::isfinite(t) ? (int8_t)(int)std::nearbyint(t) : 0;
    }
  }
  return info.Env().Undefined();
}

// widenBf16(bits, n, out): out[i] = the float32 value of bf16 bits[i].
Napi::Value WidenBf16(const Napi::CallbackInfo& info) {
  const uint16_t* src = info[0].As<Napi::Uint16Array>().Data();
  const int64_t n = I64(info[1]);
  uint32_t* dst = (uint32_t*)F32(info[2]);
#pragma omp parallel for schedule(static) if (n > (1 << 18))
  for (int64_t i = 0; i < n; i++) dst[i] = (uint32_t)src[i] << 16;
  return info.Env().Undefined();
}

}  // namespace dpo
