// RMSNorm (HF Llama) and LayerNorm (torch), forward and backward; rows in parallel, weight
// gradients reduced per thread then summed (no atomics).
#include <omp.h>
#include <cmath>
#include <vector>
#include "common.h"

namespace dpo {

// rmsnorm(x, w, out, rstd, rows, dim, eps)
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  const float *x = F32(info[0]), *w = F32(info[1]);
  float *out = F32(info[2]), *rstd = F32(info[3]);
  int64_t rows = I64(info[4]), dim = I64(info[5]);
  double eps = F64(info[6]);
#pragma omp parallel for schedule(static) if (rows * dim > 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * dim;
    double ss = 0;
    for (int64_t j = 0; j < dim; j++) ss += (double)xr[j] * xr[j];
    float rs = (float)(1.0 / std::sqrt(ss / dim + eps));
    rstd[r] = rs;
    for (int64_t j = 0; j < dim; j++) out[r * dim + j] = w[j] * (xr[j] * rs);
  }
  return info.Env().Undefined();
}

// rmsnormBackward(x, w, rstd, gy, gx, gw|null, rows, dim)
Napi::Value RmsNormBackward(const Napi::CallbackInfo& info) {
  const float *x = F32(info[0]), *w = F32(info[1]), *rstd = F32(info[2]), *gy = F32(info[3]);
  float* gx = F32(info[4]);
  float* gw = F32OrNull(info[5]);
  int64_t rows = I64(info[6]), dim = I64(info[7]);
  int nt = omp_get_max_threads();
  std::vector<double> part(gw ? (size_t)nt * dim : 0, 0.0);
#pragma omp parallel if (rows * dim > 32768)
  {
    double* acc = gw ? part.data() + (size_t)omp_get_thread_num() * dim : nullptr;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = x + r * dim, *g = gy + r * dim;
      float rs = rstd[r];
      double dot = 0;
      for (int64_t j = 0; j < dim; j++) dot += (double)g[j] * w[j] * xr[j] * rs;
      float d = (float)(dot / dim);
      for (int64_t j = 0; j < dim; j++) {
        float xh = xr[j] * rs;
        if (acc) acc[j] += (double)g[j] * xh;
        gx[r * dim + j] = rs * (g[j] * w[j] - xh * d);
      }
    }
  }
  if (gw)
    for (int t = 0; t < nt; t++)
      for (int64_t j = 0; j < dim; j++) gw[j] += (float)part[(size_t)t * dim + j];
  return info.Env().Undefined();
}

// layernorm(x, w, b, out, mean, rstd, rows, dim, eps)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  const float *x = F32(info[0]), *w = F32(info[1]), *b = F32(info[2]);
  float *out = F32(info[3]), *mean = F32(info[4]), *rstd = F32(info[5]);
  int64_t rows = I64(info[6]), dim = I64(info[7]);
  double eps = F64(info[8]);
#pragma omp parallel for schedule(static) if (rows * dim > 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * dim;
    double mu = 0;
    for (int64_t j = 0; j < dim; j++) mu += xr[j];
    mu /= dim;
    double v = 0;
    for (int64_t j = 0; j < dim; j++) v += (xr[j] - mu) * (xr[j] - mu);
    float rs = (float)(1.0 / std::sqrt(v / dim + eps));
    mean[r] = (float)mu;
    rstd[r] = rs;
    for (int64_t j = 0; j < dim; j++) out[r * dim + j] = (float)((xr[j] - mu) * rs) * w[j] + b[j];
  }
  return info.Env().Undefined();
}

// layernormBackward(x, w, mean, rstd, gy, gx, gw|null, gb|null, rows, dim)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  const float *x = F32(info[0]), *w = F32(info[1]), *mean = F32(info[2]), *rstd = F32(info[3]), *gy = F32(info[4]);
  float* gx = F32(info[5]);
  float *gw = F32OrNull(info[6]), *gb = F32OrNull(info[7]);
  int64_t rows = I64(info[8]), dim = I64(info[9]);
  int nt = omp_get_max_threads();
  std::vector<double> pw((size_t)nt * dim, 0.0), pb((size_t)nt * dim, 0.0);
#pragma omp parallel if (rows * dim > 32768)
  {
    double* aw = pw.data() + (size_t)omp_get_thread_num() * dim;
    double* ab = pb.data() + (size_t)omp_get_thread_num() * dim;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = x + r * dim, *g = gy + r * dim;
      float mu = mean[r], rs = rstd[r];
      double m1 = 0, m2 = 0;
      for (int64_t j = 0; j < dim; j++) {
        float gg = g[j] * w[j], xh = (xr[j] - mu) * rs;
        m1 += gg;
        m2 += (double)gg * xh;
      }
      float f1 = (float)(m1 / dim), f2 = (float)(m2 / dim);
      for (int64_t j = 0; j < dim; j++) {
        float xh = (xr[j] - mu) * rs;
        aw[j] += (double)g[j] * xh;
        ab[j] += g[j];
        gx[r * dim + j] = rs * (g[j] * w[j] - f1 - xh * f2);
      }
    }
  }
  for (int t = 0; t < nt; t++)
    for (int64_t j = 0; j < dim; j++) {
      if (gw) gw[j] += (float)pw[(size_t)t * dim + j];
      if (gb) gb[j] += (float)pb[(size_t)t * dim + j];
    }
  return info.Env().Undefined();
}

}  // namespace dpo
