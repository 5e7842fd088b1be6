// Rotary embedding in HF's rotate_half convention; `inverse` rotates back (the backward).
#include "common.h"

namespace dpo {

// rope(x, out, cos, sin, pos, rows, heads, dim, inverse)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  const float *x = F32(info[0]), *cs = F32(info[2]), *sn = F32(info[3]);
  float* out = F32(info[1]);
  const int32_t* pos = I32(info[4]);
  int64_t rows = I64(info[5]), heads = I64(info[6]), dim = I64(info[7]);
  float sg = B(info[8]) ? -1.0f : 1.0f;
  int64_t half = dim / 2;
#pragma omp parallel for schedule(static) if (rows * heads * dim > 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float *c = cs + (int64_t)pos[r] * dim, *s = sn + (int64_t)pos[r] * dim;
    for (int64_t h = 0; h < heads; h++) {
      const float* xi = x + (r * heads + h) * dim;
      float* o = out + (r * heads + h) * dim;
      for (int64_t i = 0; i < half; i++) {
        float x1 = xi[i], x2 = xi[i + half];
        o[i] = x1 * c[i] - x2 * sg * s[i];
        o[i + half] = x2 * c[i + half] + x1 * sg * s[i + half];
      }
    }
  }
  return info.Env().Undefined();
}

}  // namespace dpo
