// Fused lm_head + log_softmax + gather over vocabulary chunks: logits for `chunk` columns at a time
// (oneDNN GEMM), an online max / log-sum-exp per row with the entropy, logit-sum, argmax and
// WPO's logsumexp(2·logits) riding along; backward recomputes each chunk. Gemma 2's final-logit
// soft-cap turns each chunk into cap·tanh(logits / cap) right after its GEMM; its backward
// multiplies dlogits by 1 − tanh². The lm_head is float32 values, or a frozen stored matrix
// (stored.h: the bf16 embedding a LoRA run keeps) widened a chunk of rows at a time into a
// chunk-sized buffer, never as a whole float32 copy.
#include <omp.h>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>
#include "common.h"
#include "cpu.h"
#include "stored.h"

namespace dpo {
namespace {

struct RowState {
  float m = -std::numeric_limits<float>::infinity();
  double s = 0, e = 0, s2 = 0, sum = 0;
  float tgt = 0;
  int32_t best = 0;
  bool nan = false;
};

// Sum of exp(l − m), of exp(l − m)·l and of exp(l − m)² over one row of a chunk; with kStore the
// row is also overwritten with exp(l − m) (the softmax numerators the expected-embedding GEMM
// multiplies by w). Inlined into per-ISA clones below, where it vectorises.
template <bool kStore>
__attribute__((always_inline)) inline void rowSumsImpl(float* l, int64_t n, float m, float* out3) {
  float s = 0, e = 0, s2 = 0;
#pragma omp simd reduction(+ : s, e, s2)
  for (int64_t j = 0; j < n; j++) {
    float x = fast_exp(l[j] - m);
    s += x;
    e += x * l[j];
    s2 += x * x;
    if constexpr (kStore) l[j] = x;
  }
  out3[0] = s;
  out3[1] = e;
  out3[2] = s2;
}

DPO_ISA_CLONES(void, rowSums, (const float* l, int64_t n, float m, float* out3), (l, n, m, out3)) { rowSumsImpl<false>(const_cast<float*>(l), n, m, out3); }

DPO_ISA_CLONES(void, rowSumsExp, (float* l, int64_t n, float m, float* out3), (l, n, m, out3)) { rowSumsImpl<true>(l, n, m, out3); }

// Max, sum and a NaN flag over one row of a chunk, as vectorisable reductions.
DPO_ISA_CLONES(void, rowMaxSum, (const float* l, int64_t n, float* maxOut, float* sumOut, bool* nanOut), (l, n, maxOut, sumOut, nanOut)) {
  float m = -std::numeric_limits<float>::infinity(), s = 0;
  int bad = 0;
#pragma omp simd reduction(max : m) reduction(+ : s) reduction(| : bad)
  for (int64_t j = 0; j < n; j++) {
    float x = l[j];
    m = x > m ? x : m;
    s += x;
    bad |= (x != x);
  }
  *maxOut = m;
  *sumOut = s;
  *nanOut = bad != 0;
}

DPO_ISA_CLONES(void, rowGrad, (float* l, int64_t n, float lse, float g), (l, n, lse, g)) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) l[j] = -g * fast_exp(l[j] - lse);
}

// l ← cap·tanh(l / cap) over one row of a chunk; with tanhOut, tanhOut = tanh(l / cap).
void softcapRow(float* l, int64_t n, float cap, float* tanhOut = nullptr) {
  const float inv = 1.0f / cap;
  for (int64_t j = 0; j < n; j++) {
    const float t = std::tanh(l[j] * inv);
    if (tanhOut) tanhOut[j] = t;
    l[j] = cap * t;
  }
}

// The softcap argument at index i (0 = none), checked.
float softcapArg(const Napi::CallbackInfo& info, size_t i) {
  const float cap = info.Length() > i && info[i].IsNumber() ? (float)F64(info[i]) : 0.0f;
  if (!(cap >= 0.0f) || std::isinf(cap)) throw std::invalid_argument("softcap " + std::to_string(cap) + " must be a finite number ≥ 0");
  return cap;
}

// The lm_head's rows [v0, v0 + n) as float32 values: a pointer into w, or a stored matrix's rows
// dequantized into buf.
struct HeadRows {
  const float* w = nullptr;
  Stored s{};
  bool stored = false;
  std::vector<float> buf;
  HeadRows(const Napi::CallbackInfo& info, size_t wi, size_t si, int64_t V, int64_t C, int64_t chunk) {
    if (!info[wi].IsNull() && !info[wi].IsUndefined()) {
      w = F32(info[wi]);
      return;
    }
    if (info.Length() <= si + 8) throw std::invalid_argument("tokenLogprobs: no lm_head weight (a Float32Array, or a stored matrix's arguments)");
    s = readStored(info, si);
    if (s.rows != V || s.cols != C) throw std::invalid_argument("tokenLogprobs: a stored lm_head of " + std::to_string(s.rows) + "×" + std::to_string(s.cols) + " for V " + std::to_string(V) + ", C " + std::to_string(C));
    stored = true;
    buf.resize((size_t)chunk * C);
  }
  const float* rows(int64_t v0, int64_t n, int64_t C) {
    if (!stored) return w + v0 * C;
    dequantizeRows(s, v0, v0 + n, buf.data());
    return buf.data();
  }
};

}  // namespace

// tokenLogprobs(h, w|null, targets, N, C, V, chunk, logp, lse, entropy|null, logitSum|null, argmax|null, lse2|null, expected|null, softcap[, stored matrix (9 args) when w is null])
// expected (N, C) = softmax(h·wᵀ)·w, accumulated per chunk against the running max (rescaled when
// it grows, as flash attention rescales its output) and divided by the row sum at the end.
Napi::Value TokenLogprobs(const Napi::CallbackInfo& info) {
  const float* h = F32(info[0]);
  const int32_t* targets = I32(info[2]);
  int64_t N = I64(info[3]), C = I64(info[4]), V = I64(info[5]), chunk = I64(info[6]);
  chunk = std::max<int64_t>(1, std::min(chunk, V));
  HeadRows head(info, 1, 15, V, C, chunk);
  float *logp = F32(info[7]), *lse = F32(info[8]);
  float *entropy = F32OrNull(info[9]), *logitSum = F32OrNull(info[10]), *lse2 = F32OrNull(info[12]);
  int32_t* argmax = I32OrNull(info[11]);
  float* expected = info.Length() > 13 ? F32OrNull(info[13]) : nullptr;
  const float cap = softcapArg(info, 14);
  if (cap > 0 && expected) throw std::invalid_argument("the expected embedding is not computed with a softcap");
  std::vector<float> L((size_t)N * chunk);
  std::vector<RowState> st(N);
  if (expected) std::memset(expected, 0, sizeof(float) * N * C);
  // In bf16 mode h is rounded once, not once per chunk.
  RoundedOperand hr;
  roundOnce(h, N * C, hr);
  for (int64_t v0 = 0; v0 < V; v0 += chunk) {
    int64_t n = std::min(chunk, V - v0);
    const float* wc = head.rows(v0, n, C);
    gemm(1, N, n, C, h, C, false, 0, wc, C, true, 0, L.data(), n, 0, 1.0f, 0.0f, true, &hr);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      float* l = L.data() + r * n;
      if (cap > 0) softcapRow(l, n, cap);
      RowState& S = st[r];
      float cm, sum;
      bool nan;
      rowMaxSum(l, n, &cm, &sum, &nan);
      if (nan && !S.nan) {
        // torch's argmax picks the first NaN
        int64_t at = 0;
        while (at < n && l[at] == l[at]) at++;
        S.best = (int32_t)(v0 + at);
        S.nan = true;
      }
      S.sum += sum;
      if (cm > S.m) {
        if (!S.nan) {
          int64_t at = 0;
          while (at < n && l[at] != cm) at++;
          S.best = (int32_t)(v0 + at);
        }
        double f = std::exp((double)S.m - cm);
        S.s *= f;
        S.e *= f;
        S.s2 *= f * f;
        if (expected && S.m != -std::numeric_limits<float>::infinity())
          for (int64_t c = 0; c < C; c++) expected[r * C + c] *= (float)f;
        S.m = cm;
      }
      int32_t t = targets[r];
      if (t >= v0 && t < v0 + n) S.tgt = l[t - v0];
      float acc[3];
      if (expected) rowSumsExp(l, n, S.m, acc);
      else rowSums(l, n, S.m, acc);
      S.s += acc[0];
      S.e += acc[1];
      S.s2 += acc[2];
    }
    // expected += exp(l − m)·w_chunk
    if (expected) gemm(1, N, C, n, L.data(), n, false, 0, wc, C, false, 0, expected, C, 0, 1.0f, 1.0f);
  }
  for (int64_t r = 0; r < N; r++) {
    const RowState& S = st[r];
    float Lr = S.nan ? NAN : (float)(S.m + std::log(S.s));
    lse[r] = Lr;
    logp[r] = targets[r] < 0 ? 0.0f : S.tgt - Lr;
    if (entropy) entropy[r] = S.nan ? NAN : (float)(Lr - S.e / S.s);
    if (logitSum) logitSum[r] = (float)S.sum;
    if (argmax) argmax[r] = S.best;
    if (lse2) lse2[r] = S.nan ? NAN : (float)(2.0 * S.m + std::log(S.s2));
    if (expected) {
      const float inv = S.nan ? NAN : (float)(1.0 / S.s);
      for (int64_t c = 0; c < C; c++) expected[r * C + c] *= inv;
    }
  }
  return info.Env().Undefined();
}

// tokenLogprobsBackward(h, w|null, targets, N, C, V, chunk, lse, gLogp, gh|null, gw|null, accumulateGw, softcap[, stored matrix (9 args) when w is null])
Napi::Value TokenLogprobsBackward(const Napi::CallbackInfo& info) {
  const float* h = F32(info[0]);
  const int32_t* targets = I32(info[2]);
  int64_t N = I64(info[3]), C = I64(info[4]), V = I64(info[5]), chunk = I64(info[6]);
  chunk = std::max<int64_t>(1, std::min(chunk, V));
  HeadRows head(info, 1, 13, V, C, chunk);
  const float *lse = F32(info[7]), *g = F32(info[8]);
  float *gh = F32OrNull(info[9]), *gw = F32OrNull(info[10]);
  const float gwBeta = info.Length() > 11 && B(info[11]) ? 1.0f : 0.0f;
  const float cap = softcapArg(info, 12);
  if (gw && head.stored) throw std::invalid_argument("tokenLogprobsBackward: a stored lm_head is frozen; it has no gradient");
  std::vector<float> L((size_t)N * chunk), Th(cap > 0 ? (size_t)N * chunk : 0);
  if (gh) std::memset(gh, 0, sizeof(float) * N * C);
  RoundedOperand hr;
  roundOnce(h, N * C, hr);
  for (int64_t v0 = 0; v0 < V; v0 += chunk) {
    int64_t n = std::min(chunk, V - v0);
    const float* wc = head.rows(v0, n, C);
    gemm(1, N, n, C, h, C, false, 0, wc, C, true, 0, L.data(), n, 0, 1.0f, 0.0f, true, &hr);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      float* l = L.data() + r * n;
      int32_t t = targets[r];
      if (t < 0) {
        std::memset(l, 0, n * sizeof(float));
        continue;
      }
      float* th = cap > 0 ? Th.data() + r * n : nullptr;
      if (th) softcapRow(l, n, cap, th);
      rowGrad(l, n, lse[r], g[r]);
      if (t >= v0 && t < v0 + n) l[t - v0] += g[r];
      if (th) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) l[j] *= 1.0f - th[j] * th[j];  // through cap·tanh(l / cap)
      }
    }
    if (gh) gemm(1, N, C, n, L.data(), n, false, 0, wc, C, false, 0, gh, C, 0, 1.0f, 1.0f);
    if (gw) gemm(1, n, C, N, L.data(), n, true, 0, h, C, false, 0, gw + v0 * C, C, 0, 1.0f, gwBeta, true, nullptr, &hr);
  }
  return info.Env().Undefined();
}

}  // namespace dpo
