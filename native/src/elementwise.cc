// Elementwise kernels (OpenMP): unary ops and derivatives, broadcasting binary ops, axpy,
// masked scaling, axis sums, sum of squares, and the AdamW update.
#include <omp.h>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>
#include "common.h"
#include "cpu.h"

namespace dpo {
namespace {

enum Op { NEG, EXP, LOG, SQRT, SQUARE, SIGMOID, LOGSIGMOID, TANH, RELU, SILU, GELU, SCALE, ABS, BAD };

Op parse(const std::string& s) {
  static const char* names[] = {"neg", "exp", "log", "sqrt", "square", "sigmoid", "logsigmoid", "tanh", "relu", "silu", "gelu_tanh", "scale", "abs"};
  for (int i = 0; i < BAD; i++)
    if (s == names[i]) return static_cast<Op>(i);
  return BAD;
}

inline float sigm(float x) { return x >= 0 ? 1.0f / (1.0f + std::exp(-x)) : std::exp(x) / (1.0f + std::exp(x)); }
const float GELU_C = 0.7978845608028654f;

inline float fwd(Op op, float x, float a) {
  switch (op) {
    case NEG: return -x;
    case EXP: return std::exp(x);
    case LOG: return std::log(x);
    case SQRT: return std::sqrt(x);
    case SQUARE: return x * x;
    case SIGMOID: return sigm(x);
    case LOGSIGMOID: return std::fmin(x, 0.0f) - std::log1p(std::exp(-std::fabs(x)));
    case TANH: return std::tanh(x);
    case RELU: return x > 0 ? x : (x == x ? 0.0f : x);
    case SILU: return x * sigm(x);
    case GELU: return 0.5f * x * (1.0f + std::tanh(GELU_C * (x + 0.044715f * x * x * x)));
    case SCALE: return a * x;
    case ABS: return std::fabs(x);
    default: return x;
  }
}

inline float deriv(Op op, float x, float y, float a) {
  switch (op) {
    case NEG: return -1.0f;
    case EXP: return y;
    case LOG: return 1.0f / x;
    case SQRT: return 0.5f / y;
    case SQUARE: return 2.0f * x;
    case SIGMOID: return y * (1.0f - y);
    case LOGSIGMOID: return sigm(-x);  // σ(−x), exact in the tails as torch
    case TANH: return 1.0f - y * y;
    case RELU: return x > 0 ? 1.0f : (x == x ? 0.0f : x);
    case SILU: { float s = sigm(x); return s * (1.0f + x * (1.0f - s)); }
    case GELU: {
      float t = std::tanh(GELU_C * (x + 0.044715f * x * x * x));
      return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_C * (1.0f + 3.0f * 0.044715f * x * x);
    }
    case SCALE: return a;
    case ABS: return x > 0 ? 1.0f : (x < 0 ? -1.0f : (x == x ? 0.0f : x));
    default: return 1.0f;
  }
}

// SiLU, the MLP activation of every llama layer, and the fused SwiGLU get their own vectorised
// loops (the generic ones call libm's exp per element).

// σ(v) from e = exp(−|v|) (finite on both sides), as a select so the loops vectorise.
__attribute__((always_inline)) inline float sigmoidSel(float v) {
  const float e = fast_exp(-std::fabs(v)), r = 1.0f / (1.0f + e);
  return v >= 0 ? r : e * r;
}

// d silu(v)/dv from s = σ(v).
__attribute__((always_inline)) inline float siluDeriv(float v, float s) { return s * (1.0f + v * (1.0f - s)); }

DPO_ISA_CLONES(void, siluForward, (const float* x, float* out, int64_t n), (x, out, n)) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) out[i] = x[i] * sigmoidSel(x[i]);
}

DPO_ISA_CLONES(void, siluBackward, (const float* x, const float* gy, float* gx, int64_t n), (x, gy, gx, n)) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) gx[i] = gy[i] * siluDeriv(x[i], sigmoidSel(x[i]));
}

// SwiGLU (silu(g)·u) fused: one pass, and backward needs only g and u, so silu(g) is never stored.
// Rounded as silu then the product, so the values equal the unfused ops'.
DPO_ISA_CLONES(void, swigluForward, (const float* g, const float* u, float* out, int64_t n), (g, u, out, n)) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) out[i] = (g[i] * sigmoidSel(g[i])) * u[i];
}

DPO_ISA_CLONES(void, swigluGrads, (const float* g, const float* u, const float* gy, float* gg, float* gu, int64_t n), (g, u, gy, gg, gu, n)) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    const float v = g[i], s = sigmoidSel(v);
    gg[i] = (gy[i] * u[i]) * siluDeriv(v, s);
    gu[i] = gy[i] * (v * s);
  }
}

// GeGLU (gelu_pytorch_tanh(g)·u, Gemma's MLP) fused the same way, written with
// s = (1 + tanh z) / 2 = σ(2z), z = √(2/π)·(v + 0.044715·v³): gelu = v·s and, as 1 − tanh² = 4s(1 − s),
// gelu' = s + 2v·s(1 − s)·√(2/π)·(1 + 3·0.044715·v²). σ and 1 − σ come from e = exp(−|2z|) by
// selects, so both tails keep their relative precision (1 + tanh z cancels) and the loops vectorise.
__attribute__((always_inline)) inline void geluParts(float v, float* s, float* d) {
  const float z2 = 2.0f * GELU_C * (v + 0.044715f * v * v * v);
  const float e = fast_exp(-std::fabs(z2)), r = 1.0f / (1.0f + e);
  const float sg = z2 >= 0 ? r : e * r, one_minus = z2 >= 0 ? e * r : r;
  *s = sg;
  *d = sg + 2.0f * v * sg * one_minus * GELU_C * (1.0f + 3.0f * 0.044715f * v * v);
}

DPO_ISA_CLONES(void, gegluForward, (const float* g, const float* u, float* out, int64_t n), (g, u, out, n)) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float s, d;
    geluParts(g[i], &s, &d);
    out[i] = (g[i] * s) * u[i];
  }
}

DPO_ISA_CLONES(void, gegluGrads, (const float* g, const float* u, const float* gy, float* gg, float* gu, int64_t n), (g, u, gy, gg, gu, n)) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float s, d;
    geluParts(g[i], &s, &d);
    gg[i] = (gy[i] * u[i]) * d;
    gu[i] = gy[i] * (g[i] * s);
  }
}

// The gated activation argument at index i: "silu" (default) or "gelu_tanh"; true for GeGLU.
bool gegluArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsString()) return false;
  const std::string a = info[i].As<Napi::String>().Utf8Value();
  if (a != "silu" && a != "gelu_tanh") throw std::invalid_argument("gated activation \"" + a + "\" is not silu or gelu_tanh");
  return a == "gelu_tanh";
}

// Runs fn(begin, count) over [0, n) in blocks spread across threads.
template <typename F>
void blocks(int64_t n, F fn) {
  const int64_t block = 1 << 14;
  RegionErrors errors;  // fn may allocate scratch
#pragma omp parallel for schedule(static) if (n > 2 * block)
  for (int64_t i = 0; i < n; i += block) errors.guard([&] { fn(i, std::min(block, n - i)); });
  errors.rethrow();
}

}  // namespace

// unary(op, x, out, n, alpha)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  Op op = parse(info[0].As<Napi::String>().Utf8Value());
  const float* x = F32(info[1]);
  float* out = F32(info[2]);
  int64_t n = I64(info[3]);
  float a = (float)F64(info[4]);
  if (op == SILU) {
    blocks(n, [&](int64_t i, int64_t c) { siluForward(x + i, out + i, c); });
    return info.Env().Undefined();
  }
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) out[i] = fwd(op, x[i], a);
  return info.Env().Undefined();
}

// unaryBackward(op, x, y, gy, gx, n, alpha)
Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  Op op = parse(info[0].As<Napi::String>().Utf8Value());
  const float *x = F32(info[1]), *y = F32(info[2]), *gy = F32(info[3]);
  float* gx = F32(info[4]);
  int64_t n = I64(info[5]);
  float a = (float)F64(info[6]);
  if (op == SILU) {
    blocks(n, [&](int64_t i, int64_t c) { siluBackward(x + i, gy + i, gx + i, c); });
    return info.Env().Undefined();
  }
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) gx[i] = gy[i] * deriv(op, x[i], y[i], a);
  return info.Env().Undefined();
}

// swiglu(g, u, out, n, act = "silu" | "gelu_tanh")
Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  const float *g = F32(info[0]), *u = F32(info[1]);
  float* out = F32(info[2]);
  const bool gelu = gegluArg(info, 4);
  blocks(I64(info[3]), [&](int64_t i, int64_t c) { gelu ? gegluForward(g + i, u + i, out + i, c) : swigluForward(g + i, u + i, out + i, c); });
  return info.Env().Undefined();
}

// swigluBackward(g, u, gy, gg|null, gu|null, n, act): a null gradient goes to scratch and is dropped.
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  const float *g = F32(info[0]), *u = F32(info[1]), *gy = F32(info[2]);
  float *gg = F32OrNull(info[3]), *gu = F32OrNull(info[4]);
  const int64_t n = I64(info[5]);
  const bool gelu = gegluArg(info, 6);
  blocks(n, [&](int64_t i, int64_t c) {
    thread_local std::vector<float> a, b;
    float* pg = gg ? gg + i : (a.resize(c), a.data());
    float* pu = gu ? gu + i : (b.resize(c), b.data());
    if (gelu) gegluGrads(g + i, u + i, gy + i, pg, pu, c);
    else swigluGrads(g + i, u + i, gy + i, pg, pu, c);
  });
  return info.Env().Undefined();
}

// binary(opIndex, a, b, out, shape[], aStrides[], bStrides[]) — rank ≤ 6, strides 0 broadcast.
Napi::Value Binary(const Napi::CallbackInfo& info) {
  int op = (int)I64(info[0]);
  const float *a = F32(info[1]), *b = F32(info[2]);
  float* out = F32(info[3]);
  Napi::Array sh = info[4].As<Napi::Array>(), as = info[5].As<Napi::Array>(), bs = info[6].As<Napi::Array>();
  int rank = (int)sh.Length();
  int64_t shape[6], sa[6], sb[6], n = 1;
  for (int d = 0; d < rank; d++) {
    shape[d] = sh.Get(d).As<Napi::Number>().Int64Value();
    sa[d] = as.Get(d).As<Napi::Number>().Int64Value();
    sb[d] = bs.Get(d).As<Napi::Number>().Int64Value();
    n *= shape[d];
  }
  // Split into rows of the last dim so each row is a contiguous (or broadcast) inner loop.
  int64_t inner = shape[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1], rows = n / inner;
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, oa = 0, ob = 0;
    for (int d = rank - 2; d >= 0; d--) {
      int64_t i = rem % shape[d];
      rem /= shape[d];
      oa += i * sa[d];
      ob += i * sb[d];
    }
    float* o = out + r * inner;
    const float *pa = a + oa, *pb = b + ob;
    switch (op) {
      case 0: for (int64_t j = 0; j < inner; j++) o[j] = pa[j * ia] + pb[j * ib]; break;
      case 1: for (int64_t j = 0; j < inner; j++) o[j] = pa[j * ia] - pb[j * ib]; break;
      case 2: for (int64_t j = 0; j < inner; j++) o[j] = pa[j * ia] * pb[j * ib]; break;
      default: for (int64_t j = 0; j < inner; j++) o[j] = pa[j * ia] / pb[j * ib]; break;
    }
  }
  return info.Env().Undefined();
}

// axpy(y, x, n, alpha): y += alpha·x
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  float* y = F32(info[0]);
  const float* x = F32(info[1]);
  int64_t n = I64(info[2]);
  float a = (float)F64(info[3]);
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
  return info.Env().Undefined();
}

// maskScale(x, mask, out, n, scale)
Napi::Value MaskScale(const Napi::CallbackInfo& info) {
  const float* x = F32(info[0]);
  const uint8_t* m = U8(info[1]);
  float* out = F32(info[2]);
  int64_t n = I64(info[3]);
  float s = (float)F64(info[4]);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) out[i] = x[i] * (float)m[i] * s;  // a dropped NaN stays NaN, as torch
  return info.Env().Undefined();
}

// sumAxis(x, out, outer, dim, inner)
Napi::Value SumAxis(const Napi::CallbackInfo& info) {
  const float* x = F32(info[0]);
  float* out = F32(info[1]);
  int64_t outer = I64(info[2]), dim = I64(info[3]), inner = I64(info[4]);
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * dim > 65536)
    for (int64_t o = 0; o < outer; o++) {
      double s = 0;
      for (int64_t d = 0; d < dim; d++) s += x[o * dim + d];
      out[o] = (float)s;
    }
  } else {
    // Parallel over (outer, inner-blocks); float64 accumulators per column.
    const int64_t BLK = 256;
    int64_t nb = (inner + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if (outer * dim * inner > 65536)
    for (int64_t t = 0; t < outer * nb; t++) {
      int64_t o = t / nb, j0 = (t % nb) * BLK, j1 = std::min(inner, j0 + BLK);
      double acc[BLK] = {0};
      for (int64_t d = 0; d < dim; d++) {
        const float* row = x + (o * dim + d) * inner;
        for (int64_t j = j0; j < j1; j++) acc[j - j0] += row[j];
      }
      for (int64_t j = j0; j < j1; j++) out[o * inner + j] = (float)acc[j - j0];
    }
  }
  return info.Env().Undefined();
}

// sumSquares(x, n) → number
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  const float* x = F32(info[0]);
  int64_t n = I64(info[1]);
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return Napi::Number::New(info.Env(), s);
}

// adamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step) — torch.optim.AdamW
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  float *p = F32(info[0]), *m = F32(info[2]), *v = F32(info[3]);
  const float* g = F32(info[1]);
  int64_t n = I64(info[4]);
  double lr = F64(info[5]), b1 = F64(info[6]), b2 = F64(info[7]), eps = F64(info[8]), wd = F64(info[9]), step = F64(info[10]);
  double bc1 = 1 - std::pow(b1, step), bc2s = std::sqrt(1 - std::pow(b2, step));
  float stepSize = (float)(lr / bc1), decay = (float)(1 - lr * wd), ob1 = (float)(1 - b1), fb2 = (float)b2, ob2 = (float)(1 - b2);
  float fbc2s = (float)bc2s, feps = (float)eps;
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    p[i] *= decay;
    m[i] += ob1 * (gi - m[i]);
    v[i] = fb2 * v[i] + ob2 * gi * gi;
    p[i] -= stepSize * m[i] / (std::sqrt(v[i]) / fbc2s + feps);
  }
  return info.Env().Undefined();
}

}  // namespace dpo
