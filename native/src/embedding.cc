// Embedding row gather and its scatter-add backward (parallel over columns: no write conflicts
// between threads even when ids repeat).
#include <cstring>
#include "common.h"

namespace dpo {

// embedding(weight, ids, out, n, c)
Napi::Value Embedding(const Napi::CallbackInfo& info) {
  const float* w = F32(info[0]);
  const int32_t* ids = I32(info[1]);
  float* out = F32(info[2]);
  int64_t n = I64(info[3]), c = I64(info[4]);
#pragma omp parallel for schedule(static) if (n * c > 32768)
  for (int64_t i = 0; i < n; i++) std::memcpy(out + i * c, w + (int64_t)ids[i] * c, c * sizeof(float));
  return info.Env().Undefined();
}

// embeddingBackward(gOut, ids, gWeight, n, c)
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  const float* g = F32(info[0]);
  const int32_t* ids = I32(info[1]);
  float* gw = F32(info[2]);
  int64_t n = I64(info[3]), c = I64(info[4]);
  const int64_t BLK = 64;
  int64_t nb = (c + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if (n * c > 32768)
  for (int64_t b = 0; b < nb; b++) {
    int64_t j0 = b * BLK, j1 = std::min(c, j0 + BLK);
    for (int64_t i = 0; i < n; i++) {
      float* dst = gw + (int64_t)ids[i] * c;
      const float* src = g + i * c;
      for (int64_t j = j0; j < j1; j++) dst[j] += src[j];
    }
  }
  return info.Env().Undefined();
}

}  // namespace dpo
