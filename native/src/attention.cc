// Fused causal attention (GQA, key padding mask, packed-sequence ids, sliding window), flash-style
// in memory: per (batch row, diagonal block, head) the (n, n) scores live in a per-thread scratch
// buffer, only the row log-sum-exp is kept, and backward recomputes the probabilities. A block is
// a whole row, or one packed sequence (padding_free), so packed batches never score across
// sequences. Tasks run in parallel, one per thread, each with single-threaded oneDNN GEMMs (small
// n×n×D products scale badly across threads). Attention stays float32 in bf16 mode.
#include <omp.h>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>
#include "common.h"

namespace dpo {
namespace {

struct Attn {
  const float *q, *k, *v;
  int64_t B, T, Hq, Hkv, D;
  float scale;
  bool causal;
  const uint8_t* keyMask;
  const int32_t* segIds;
  int64_t window;
};

// Attn from the positional args shared by forward and backward:
// (q, k, v, out, lse, B, T, Hq, Hkv, D, scale, causal, keyMask, segIds, window, ...)
Attn parse(const Napi::CallbackInfo& info) {
  Attn a;
  a.q = F32(info[0]);
  a.k = F32(info[1]);
  a.v = F32(info[2]);
  a.B = I64(info[5]);
  a.T = I64(info[6]);
  a.Hq = I64(info[7]);
  a.Hkv = I64(info[8]);
  a.D = I64(info[9]);
  a.scale = (float)F64(info[10]);
  a.causal = B(info[11]);
  a.keyMask = U8OrNull(info[12]);
  a.segIds = I32OrNull(info[13]);
  a.window = I64(info[14]);
  return a;
}

// A diagonal block of one batch row: queries and keys [s0, s0 + n). Packed sequences (segment ids)
// only attend inside their own block, so scores are computed per block, never across blocks.
struct Block {
  int64_t s0, n;
};

struct Task {
  int64_t b;
  Block blk;
};

// The blocks of batch row b: one per run of equal segment ids, or the whole row when there are no
// segment ids or an id comes back after another (then the mask alone keeps them apart).
std::vector<Block> blocksOf(const Attn& a, int64_t b) {
  const int64_t T = a.T;
  if (!a.segIds) return {{0, T}};
  const int32_t* sg = a.segIds + b * T;
  std::vector<Block> out;
  std::vector<int32_t> seen;
  for (int64_t t = 0; t < T;) {
    int64_t e = t;
    while (e < T && sg[e] == sg[t]) e++;
    for (int32_t id : seen)
      if (id == sg[t]) return {{0, T}};
    seen.push_back(sg[t]);
    out.push_back({t, e - t});
    t = e;
  }
  return out;
}

// Every (batch row, block) pair: the units of parallel work.
std::vector<Task> tasksOf(const Attn& a) {
  std::vector<Task> out;
  for (int64_t b = 0; b < a.B; b++)
    for (const Block& blk : blocksOf(a, b)) out.push_back({b, blk});
  return out;
}

// Masks row t of a block's scores in place (t and keys relative to the block start): keys outside
// [lo, hi] (causal, sliding window) are left for the caller to zero; inside, padding keys and
// other packed sequences become −inf.
void maskRow(const Attn& a, int64_t b, const Block& blk, int64_t t, float* s, int64_t& lo, int64_t& hi) {
  hi = a.causal ? t : blk.n - 1;
  lo = a.window > 0 ? std::max<int64_t>(0, t - a.window + 1) : 0;
  const uint8_t* km = a.keyMask ? a.keyMask + b * a.T + blk.s0 : nullptr;
  const int32_t* sg = a.segIds ? a.segIds + b * a.T + blk.s0 : nullptr;
  if (!km && !sg) return;
  const float NEG = -std::numeric_limits<float>::infinity();
  const int32_t st = sg ? sg[t] : 0;
#pragma omp simd
  for (int64_t j = lo; j <= hi; j++) {
    bool ok = (!km || km[j]) && (!sg || sg[j] == st);
    s[j] = ok ? s[j] : NEG;
  }
}

// Max over a row and whether it holds a NaN, as vectorisable reductions.
__attribute__((target_clones("arch=skylake-avx512", "avx2", "default")))
float rowMax(const float* s, int64_t n, bool* nan) {
  float m = -std::numeric_limits<float>::infinity();
  int bad = 0;
#pragma omp simd reduction(max : m) reduction(| : bad)
  for (int64_t j = 0; j < n; j++) {
    m = s[j] > m ? s[j] : m;
    bad |= (s[j] != s[j]);
  }
  *nan = bad != 0;
  return m;
}

// Σ_j exp(s_j − m) over one row (masked entries are −inf → 0); vectorised fast exp.
__attribute__((target_clones("arch=skylake-avx512", "avx2", "default")))
float expSum(const float* s, int64_t T, float m) {
  float acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t j = 0; j < T; j++) acc += s[j] == -std::numeric_limits<float>::infinity() ? 0.0f : fast_exp(s[j] - m);
  return acc;
}

// s_j ← exp(s_j − L) in place (−inf → 0).
__attribute__((target_clones("arch=skylake-avx512", "avx2", "default")))
void expShift(float* s, int64_t T, float L) {
#pragma omp simd
  for (int64_t j = 0; j < T; j++) s[j] = s[j] == -std::numeric_limits<float>::infinity() ? 0.0f : fast_exp(s[j] - L);
}

// A block's scores S (n, n) → masked probabilities in place; computes the row lse (n) when
// computeLse, else uses the given one (backward). Only each row's visible span is exponentiated.
void probs(const Attn& a, int64_t b, const Block& blk, float* S, float* lse, bool computeLse) {
  const int64_t T = blk.n;
  const float NEG = -std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < T; t++) {
    float* s = S + t * T;
    int64_t lo, hi;
    maskRow(a, b, blk, t, s, lo, hi);
    float L = NEG;
    if (computeLse) {
      bool nan = false;
      float m = hi >= lo ? rowMax(s + lo, hi - lo + 1, &nan) : NEG;
      if (nan) m = NAN;
      if (m != NEG) L = (float)(m + std::log((double)expSum(s + lo, hi - lo + 1, m)));
      lse[t] = L;
    } else {
      L = lse[t];
    }
    if (L == NEG) {
      std::memset(s, 0, T * sizeof(float));
      continue;
    }
    if (lo > 0) std::memset(s, 0, lo * sizeof(float));
    if (hi + 1 < T) std::memset(s + hi + 1, 0, (T - hi - 1) * sizeof(float));
    expShift(s + lo, hi - lo + 1, L);
  }
}

}  // namespace

// attention(q, k, v, out, lse, B, T, Hq, Hkv, D, scale, causal, keyMask, segIds, window)
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Attn a = parse(info);
  float *out = F32(info[3]), *lse = F32(info[4]);
  const int64_t T = a.T, D = a.D, group = a.Hq / a.Hkv;
  const int64_t ldq = a.Hq * D, ldk = a.Hkv * D;
  const std::vector<Task> tasks = tasksOf(a);
  const int64_t nt = (int64_t)tasks.size();
#pragma omp parallel
  {
    std::vector<float> S;
    // One task per (block, query head).
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < nt * a.Hq; i++) {
      const Task& task = tasks[i / a.Hq];
      const int64_t b = task.b, h = i % a.Hq, kh = h / group;
      const Block& blk = task.blk;
      const int64_t n = blk.n;
      if ((int64_t)S.size() < n * n) S.resize(n * n);
      const int64_t qo = (b * T + blk.s0) * ldq + h * D, ko = (b * T + blk.s0) * ldk + kh * D;
      gemm(1, n, n, D, a.q + qo, ldq, false, 0, a.k + ko, ldk, true, 0, S.data(), n, 0, a.scale, 0.0f, false);
      probs(a, b, blk, S.data(), lse + (b * a.Hq + h) * T + blk.s0, true);
      gemm(1, n, D, n, S.data(), n, false, 0, a.v + ko, ldk, false, 0, out + qo, ldq, 0, 1.0f, 0.0f, false);
    }
  }
  return info.Env().Undefined();
}

// attentionBackward(q, k, v, out, lse, B, T, Hq, Hkv, D, scale, causal, keyMask, segIds, window, gOut, gq, gk, gv)
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Attn a = parse(info);
  const float *out = F32(info[3]), *lse = F32(info[4]), *gOut = F32(info[15]);
  float *gq = F32(info[16]), *gk = F32(info[17]), *gv = F32(info[18]);
  const int64_t T = a.T, D = a.D, group = a.Hq / a.Hkv;
  std::memset(gk, 0, sizeof(float) * a.B * T * a.Hkv * D);
  std::memset(gv, 0, sizeof(float) * a.B * T * a.Hkv * D);
  const int64_t ldq = a.Hq * D, ldk = a.Hkv * D;
  const std::vector<Task> tasks = tasksOf(a);
  const int64_t nt = (int64_t)tasks.size();
#pragma omp parallel
  {
    std::vector<float> P, dP;
    // One task per (block, kv head): the query heads of a group accumulate into the same dK, dV
    // rows, and blocks share no keys.
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < nt * a.Hkv; i++) {
      const Task& task = tasks[i / a.Hkv];
      const int64_t b = task.b, kh = i % a.Hkv;
      const Block& blk = task.blk;
      for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
        const int64_t T = blk.n;  // this block's rows and keys
        if ((int64_t)P.size() < T * T) {
          P.resize(T * T);
          dP.resize(T * T);
        }
        const int64_t qo = (b * a.T + blk.s0) * ldq + h * D, ko = (b * a.T + blk.s0) * ldk + kh * D;
        gemm(1, T, T, D, a.q + qo, ldq, false, 0, a.k + ko, ldk, true, 0, P.data(), T, 0, a.scale, 0.0f, false);
        probs(a, b, blk, P.data(), const_cast<float*>(lse) + (b * a.Hq + h) * a.T + blk.s0, false);
        // dV += Pᵀ·dO
        gemm(1, T, D, T, P.data(), T, true, 0, gOut + qo, ldq, false, 0, gv + ko, ldk, 0, 1.0f, 1.0f, false);
        // dP = dO·Vᵀ
        gemm(1, T, T, D, gOut + qo, ldq, false, 0, a.v + ko, ldk, true, 0, dP.data(), T, 0, 1.0f, 0.0f, false);
        for (int64_t t = 0; t < T; t++) {
          double di = 0;
          for (int64_t d = 0; d < D; d++) di += (double)gOut[qo + t * ldq + d] * out[qo + t * ldq + d];
          float fdi = (float)di;
          float *p = P.data() + t * T, *dp = dP.data() + t * T;
          for (int64_t j = 0; j < T; j++) dp[j] = p[j] * (dp[j] - fdi);  // dS
        }
        // dQ = scale·dS·K ; dK += scale·dSᵀ·Q
        gemm(1, T, D, T, dP.data(), T, false, 0, a.k + ko, ldk, false, 0, gq + qo, ldq, 0, a.scale, 0.0f, false);
        gemm(1, T, D, T, dP.data(), T, true, 0, a.q + qo, ldq, false, 0, gk + ko, ldk, 0, a.scale, 1.0f, false);
      }
    }
  }
  return info.Env().Undefined();
}

}  // namespace dpo
