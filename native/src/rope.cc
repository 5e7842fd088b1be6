// Rotary embedding in HF's rotate_half convention; `inverse` rotates back (the transpose: the
// backward). Partial rotary: only the first R = rotaryDim dims of each head are rotated, the rest
// copied; the tables are (maxPos, R).
#include "common.h"

namespace dpo {

// rope(x, out, cos, sin, pos, rows, heads, dim, inverse, rotaryDim?)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  const float *x = F32(info[0]), *cs = F32(info[2]), *sn = F32(info[3]);
  float* out = F32(info[1]);
  const int32_t* pos = I32(info[4]);
  int64_t rows = I64(info[5]), heads = I64(info[6]), dim = I64(info[7]);
  float sg = B(info[8]) ? -1.0f : 1.0f;
  const int64_t R = info.Length() > 9 && !info[9].IsUndefined() && !info[9].IsNull() ? I64(info[9]) : dim;
  if (R < 0 || R > dim || R % 2 != 0) throw std::invalid_argument("rotaryDim " + std::to_string(R) + " must be even and at most the head dim " + std::to_string(dim));
  int64_t half = R / 2;
#pragma omp parallel for schedule(static) if (rows * heads * dim > 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float *c = cs + (int64_t)pos[r] * R, *s = sn + (int64_t)pos[r] * R;
    for (int64_t h = 0; h < heads; h++) {
      const float* xi = x + (r * heads + h) * dim;
      float* o = out + (r * heads + h) * dim;
      for (int64_t i = 0; i < half; i++) {
        float x1 = xi[i], x2 = xi[i + half];
        o[i] = x1 * c[i] - x2 * sg * s[i];
        o[i + half] = x2 * c[i + half] + x1 * sg * s[i + half];
      }
      if (o != xi)
        for (int64_t d = R; d < dim; d++) o[d] = xi[d];
    }
  }
  return info.Env().Undefined();
}

}  // namespace dpo
