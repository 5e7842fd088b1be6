// Row softmax / log-softmax with max subtraction, and their backward (OpenMP over rows).
#include <cmath>
#include <limits>
#include "common.h"

namespace dpo {

// softmax(x, out, rows, cols, log)
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  const float* x = F32(info[0]);
  float* out = F32(info[1]);
  int64_t rows = I64(info[2]), cols = I64(info[3]);
  bool lg = B(info[4]);
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    float m = -std::numeric_limits<float>::infinity();
    bool nan = false;
    for (int64_t j = 0; j < cols; j++) {
      if (xr[j] != xr[j]) nan = true;
      m = xr[j] > m ? xr[j] : m;
    }
    if (nan) {
      for (int64_t j = 0; j < cols; j++) o[j] = NAN;
      continue;
    }
    double s = 0;
    for (int64_t j = 0; j < cols; j++) s += std::exp((double)xr[j] - m);
    if (lg) {
      float lse = (float)(m + std::log(s));
      for (int64_t j = 0; j < cols; j++) o[j] = xr[j] - lse;
    } else {
      for (int64_t j = 0; j < cols; j++) o[j] = (float)(std::exp((double)xr[j] - m) / s);
    }
  }
  return info.Env().Undefined();
}

// softmaxBackward(y, gy, gx, rows, cols, log)
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  const float *y = F32(info[0]), *gy = F32(info[1]);
  float* gx = F32(info[2]);
  int64_t rows = I64(info[3]), cols = I64(info[4]);
  bool lg = B(info[5]);
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float *yr = y + r * cols, *g = gy + r * cols;
    float* o = gx + r * cols;
    double s = 0;
    if (lg) {
      for (int64_t j = 0; j < cols; j++) s += g[j];
      for (int64_t j = 0; j < cols; j++) o[j] = (float)(g[j] - std::exp((double)yr[j]) * s);
    } else {
      for (int64_t j = 0; j < cols; j++) s += (double)g[j] * yr[j];
      for (int64_t j = 0; j < cols; j++) o[j] = (float)(yr[j] * (g[j] - s));
    }
  }
  return info.Env().Undefined();
}

}  // namespace dpo
