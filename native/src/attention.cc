// Fused causal attention (GQA, key padding mask, packed-sequence ids, shared-prompt parents,
// sliding window), flash-style in memory: per (batch row, block, head) the scores live in a
// per-thread scratch buffer, only the row log-sum-exp is kept, and backward recomputes the
// probabilities. A block is a whole row, or one packed sequence (padding_free) whose keys are its
// own plus, for a completion packed after the prompt it shares with its pair, that prompt's; so
// packed batches never score across sequences. Query rows go in tiles that skip the columns the
// causal mask hides. Tasks run in parallel, one per thread, each with single-threaded oneDNN
// sgemm calls (small n×n×D products scale badly across threads). Attention stays float32 in bf16
// mode. Gemma 2's soft-capping turns each score into cap·tanh(score / cap) before the mask; its
// backward multiplies dS by 1 − tanh².
#include <omp.h>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>
#include <stdexcept>
#include <string>
#include "common.h"
#include "cpu.h"
#include "dnnl.h"

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
  const int32_t* parents;  // per token: an earlier segment whose keys it also sees, −1 none
  float softcap;           // 0 = none
};

// Attn from the positional args shared by forward and backward:
// (q, k, v, out, lse, B, T, Hq, Hkv, D, scale, causal, keyMask, segIds, window, ...); segParents
// is argument `parentsArg` (after the backward's gradients), softcap the one after it.
Attn parse(const Napi::CallbackInfo& info, int parentsArg) {
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
  a.parents = (int64_t)info.Length() > parentsArg ? I32OrNull(info[parentsArg]) : nullptr;
  a.softcap = (int64_t)info.Length() > parentsArg + 1 && info[parentsArg + 1].IsNumber() ? (float)F64(info[parentsArg + 1]) : 0.0f;
  if (!(a.softcap >= 0.0f) || std::isinf(a.softcap)) throw std::invalid_argument("softcap " + std::to_string(a.softcap) + " must be a finite number ≥ 0");
  return a;
}

// A block of one batch row: queries and own keys [s0, s0 + n), after the keys [p0, p0 + pn) of its
// parent segment (a shared prompt; pn = 0 for none). A block's keys, in score-column order, are the
// parent's then its own, so query t sees columns [0, pn + t] causally.
struct Block {
  int64_t s0, n, p0, pn;
  bool mixed;  // a whole row holding several segments: the mask must compare segment ids
};

// A root block and the blocks whose parent it is: the units of backward, which accumulate into
// the root's key gradients from several blocks.
struct Family {
  int64_t b;
  std::vector<Block> blocks;
};

// The blocks of batch row b: one per run of equal segment ids, or the whole row when there are no
// segment ids or the runs are not a simple forest (an id comes back, a parent is missing, later or
// has a parent itself; then the mask alone keeps the segments apart).
std::vector<Block> blocksOf(const Attn& a, int64_t b) {
  const int64_t T = a.T;
  const std::vector<Block> whole = {{0, T, 0, 0, a.segIds != nullptr}};
  if (!a.segIds) return whole;
  const int32_t* sg = a.segIds + b * T;
  const int32_t* pa = a.parents ? a.parents + b * T : nullptr;
  std::vector<Block> out;
  std::vector<int32_t> ids;
  for (int64_t t = 0; t < T;) {
    int64_t e = t;
    while (e < T && sg[e] == sg[t] && (!pa || pa[e] == pa[t])) e++;
    for (int32_t id : ids)
      if (id == sg[t]) return whole;
    Block blk = {t, e - t, 0, 0, false};
    if (pa && pa[t] >= 0 && pa[t] != sg[t]) {
      size_t r = 0;
      while (r < ids.size() && ids[r] != pa[t]) r++;
      if (r == ids.size() || out[r].pn > 0) return whole;
      blk.p0 = out[r].s0;
      blk.pn = out[r].n;
    }
    ids.push_back(sg[t]);
    out.push_back(blk);
    t = e;
  }
  return out;
}

std::vector<Family> familiesOf(const Attn& a) {
  std::vector<Family> out;
  for (int64_t b = 0; b < a.B; b++) {
    const size_t first = out.size();
    for (const Block& blk : blocksOf(a, b)) {
      if (blk.pn == 0) {
        out.push_back({b, {blk}});
        continue;
      }
      for (size_t f = first; f < out.size(); f++)
        if (out[f].blocks[0].s0 == blk.p0) out[f].blocks.push_back(blk);
    }
  }
  return out;
}

// The columns of a block's scores in two parts: the parent's keys, then its own. A tile of query
// rows computes only its first w columns (w − pn own keys), the ones its causal rows can see.
struct Part {
  int64_t key0, col0, n;  // first key token, first score column, how many
};

inline int partsOf(const Block& blk, int64_t w, Part* parts) {
  int np = 0;
  if (blk.pn > 0) parts[np++] = {blk.p0, 0, blk.pn};
  parts[np++] = {blk.s0, blk.pn, w - blk.pn};
  return np;
}

// Query rows go in tiles of kTile: under the causal mask the rows [r0, r1) see only the first
// pn + r1 columns, so the rest are never computed (about half of a block's score work).
constexpr int64_t kTile = 64;
inline int64_t tileWidth(const Attn& a, const Block& blk, int64_t r1) { return a.causal ? blk.pn + r1 : blk.pn + blk.n; }

// Row-major C = alpha·op(A)·op(B) + beta·C through oneDNN's sgemm: no primitive per shape (block
// and tile shapes change with every batch), single-threaded inside the per-task OpenMP loop.
inline void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                  float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (st != dnnl_success)
    throw std::runtime_error("attention sgemm " + std::to_string(M) + "×" + std::to_string(K) + " · " + std::to_string(K) + "×" + std::to_string(N) + ": oneDNN status " + std::to_string((int)st));
}

// Masks row t of a block's scores in place (s has pn + n columns): columns outside [lo, hi]
// (causal, sliding window) are left for the caller to zero; inside, padding keys and keys of other
// segments (neither the query's own nor its parent's) become −inf.
void maskRow(const Attn& a, int64_t b, const Block& blk, int64_t t, float* s, int64_t& lo, int64_t& hi) {
  hi = a.causal ? blk.pn + t : blk.pn + blk.n - 1;
  lo = a.window > 0 ? std::max<int64_t>(0, blk.pn + t - a.window + 1) : 0;
  const uint8_t* km = a.keyMask ? a.keyMask + b * a.T : nullptr;
  const int32_t* sg = blk.mixed ? a.segIds + b * a.T : nullptr;  // a pure block needs no id checks
  if (!km && !sg) return;
  const float NEG = -std::numeric_limits<float>::infinity();
  const int32_t st = sg ? sg[blk.s0 + t] : 0;
  const int32_t pt = sg && a.parents ? a.parents[b * a.T + blk.s0 + t] : -1;
  Part parts[2];
  const int np = partsOf(blk, blk.pn + blk.n, parts);
  for (int i = 0; i < np; i++) {
    const int64_t j0 = std::max(lo, parts[i].col0), j1 = std::min(hi, parts[i].col0 + parts[i].n - 1);
    const int64_t off = parts[i].key0 - parts[i].col0;  // key token of column j
#pragma omp simd
    for (int64_t j = j0; j <= j1; j++) {
      bool ok = (!km || km[off + j]) && (!sg || sg[off + j] == st || (pt >= 0 && sg[off + j] == pt));
      s[j] = ok ? s[j] : NEG;
    }
  }
}

// Max over a row and whether it holds a NaN, as vectorisable reductions.
DPO_ISA_CLONES(float, rowMax, (const float* s, int64_t n, bool* nan), (s, n, nan)) {
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

// Σ_j exp(s_j − m) over one row; masked entries are −inf, which fast_exp maps to exactly 0 (it
// clamps at −88, where its exponent bits underflow to 0), so no select is needed: the select
// kept GCC's vectorised loop ~7× slower.
DPO_ISA_CLONES(float, expSum, (const float* s, int64_t T, float m), (s, T, m)) {
  float acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t j = 0; j < T; j++) acc += fast_exp(s[j] - m);
  return acc;
}

// s_j ← exp(s_j − L) in place (−inf → 0, as above).
DPO_ISA_CLONES(void, expShift, (float* s, int64_t T, float L), (s, T, L)) {
#pragma omp simd
  for (int64_t j = 0; j < T; j++) s[j] = fast_exp(s[j] - L);
}

// Rows [r0, r1) of a block's scores, S (r1 − r0, w) → masked probabilities in place; computes the
// row lse (of the block's rows) when computeLse, else uses it (backward). Only each row's visible
// span is exponentiated.
void probs(const Attn& a, int64_t b, const Block& blk, int64_t r0, int64_t r1, int64_t w, float* S, float* lse, bool computeLse) {
  const float NEG = -std::numeric_limits<float>::infinity();
  for (int64_t t = r0; t < r1; t++) {
    float* s = S + (t - r0) * w;
    int64_t lo, hi;
    maskRow(a, b, blk, t, s, lo, hi);
    float L = NEG;
    if (computeLse) {
      bool nan = false;
      float mx = hi >= lo ? rowMax(s + lo, hi - lo + 1, &nan) : NEG;
      if (nan) mx = NAN;
      if (mx != NEG) L = (float)(mx + std::log((double)expSum(s + lo, hi - lo + 1, mx)));
      lse[t] = L;
    } else {
      L = lse[t];
    }
    if (L == NEG) {
      std::memset(s, 0, w * sizeof(float));
      continue;
    }
    if (lo > 0) std::memset(s, 0, lo * sizeof(float));
    if (hi + 1 < w) std::memset(s + hi + 1, 0, (w - hi - 1) * sizeof(float));
    expShift(s + lo, hi - lo + 1, L);
  }
}

// S ← cap·tanh(S / cap) over n scores; with deriv, deriv = 1 − tanh² (the backward's factor).
void softcapScores(float* S, int64_t n, float cap, float* deriv) {
  const float inv = 1.0f / cap;
  for (int64_t j = 0; j < n; j++) {
    const float t = std::tanh(S[j] * inv);
    S[j] = cap * t;
    if (deriv) deriv[j] = 1.0f - t * t;
  }
}

// S (r1 − r0, w) = scale·Q[r0, r1)·[K_parent; K_own]ᵀ for query head h / kv head kh of a block,
// soft-capped when a.softcap (deriv, if given, receives 1 − tanh²).
void scores(const Attn& a, int64_t b, const Block& blk, int64_t h, int64_t kh, int64_t r0, int64_t r1, int64_t w, float* S, float* deriv = nullptr) {
  const int64_t ldq = a.Hq * a.D, ldk = a.Hkv * a.D;
  Part parts[2];
  const int np = partsOf(blk, w, parts);
  for (int i = 0; i < np; i++)
    sgemm(false, true, r1 - r0, parts[i].n, a.D, a.scale, a.q + (b * a.T + blk.s0 + r0) * ldq + h * a.D, ldq,
          a.k + (b * a.T + parts[i].key0) * ldk + kh * a.D, ldk, 0.0f, S + parts[i].col0, w);
  if (a.softcap > 0) softcapScores(S, (r1 - r0) * w, a.softcap, deriv);
}

}  // namespace

// attention(q, k, v, out, lse, B, T, Hq, Hkv, D, scale, causal, keyMask, segIds, window, segParents, softcap)
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Attn a = parse(info, 15);
  float *out = F32(info[3]), *lse = F32(info[4]);
  const int64_t T = a.T, D = a.D, group = a.Hq / a.Hkv;
  const int64_t ldq = a.Hq * D, ldk = a.Hkv * D;
  std::vector<std::pair<int64_t, Block>> tasks;
  for (const Family& f : familiesOf(a))
    for (const Block& blk : f.blocks) tasks.push_back({f.b, blk});
  const int64_t nt = (int64_t)tasks.size();
  RegionErrors errors;
#pragma omp parallel
  {
    std::vector<float> S;
    // One task per (block, query head): each writes only its own query rows.
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < nt * a.Hq; i++) errors.guard([&] {
      const int64_t b = tasks[i / a.Hq].first, h = i % a.Hq, kh = h / group;
      const Block& blk = tasks[i / a.Hq].second;
      const int64_t m = blk.pn + blk.n;
      if ((int64_t)S.size() < kTile * m) S.resize(kTile * m);
      for (int64_t r0 = 0; r0 < blk.n; r0 += kTile) {
        const int64_t r1 = std::min(blk.n, r0 + kTile), w = tileWidth(a, blk, r1);
        scores(a, b, blk, h, kh, r0, r1, w, S.data());
        probs(a, b, blk, r0, r1, w, S.data(), lse + (b * a.Hq + h) * T + blk.s0, true);
        Part parts[2];
        const int np = partsOf(blk, w, parts);
        for (int p = 0; p < np; p++)
          sgemm(false, false, r1 - r0, D, parts[p].n, 1.0f, S.data() + parts[p].col0, w, a.v + (b * T + parts[p].key0) * ldk + kh * D, ldk,
                p > 0 ? 1.0f : 0.0f, out + (b * T + blk.s0 + r0) * ldq + h * D, ldq);
      }
    });
  }
  errors.rethrow();
  return info.Env().Undefined();
}

// attentionBackward(q, k, v, out, lse, B, T, Hq, Hkv, D, scale, causal, keyMask, segIds, window, gOut, gq, gk, gv, segParents, softcap)
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Attn a = parse(info, 19);
  const float *out = F32(info[3]), *lse = F32(info[4]), *gOut = F32(info[15]);
  float *gq = F32(info[16]), *gk = F32(info[17]), *gv = F32(info[18]);
  const int64_t T = a.T, D = a.D, group = a.Hq / a.Hkv;
  std::memset(gk, 0, sizeof(float) * a.B * T * a.Hkv * D);
  std::memset(gv, 0, sizeof(float) * a.B * T * a.Hkv * D);
  const int64_t ldq = a.Hq * D, ldk = a.Hkv * D;
  const std::vector<Family> fams = familiesOf(a);
  const int64_t nf = (int64_t)fams.size();
  RegionErrors errors;
#pragma omp parallel
  {
    std::vector<float> P, dP, dT;  // dT: the soft-cap's 1 − tanh² per score
    // One task per (family, kv head): the query heads of a group and the blocks sharing a parent
    // accumulate into the same dK, dV rows, and families share no keys.
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < nf * a.Hkv; i++) errors.guard([&] {
      const Family& fam = fams[i / a.Hkv];
      const int64_t b = fam.b, kh = i % a.Hkv;
      for (const Block& blk : fam.blocks) {
        const int64_t m = blk.pn + blk.n;
        if ((int64_t)P.size() < kTile * m) {
          P.resize(kTile * m);
          dP.resize(kTile * m);
          if (a.softcap > 0) dT.resize(kTile * m);
        }
        for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
          for (int64_t r0 = 0; r0 < blk.n; r0 += kTile) {
            const int64_t r1 = std::min(blk.n, r0 + kTile), w = tileWidth(a, blk, r1), rows = r1 - r0;
            const int64_t qo = (b * T + blk.s0 + r0) * ldq + h * D;
            scores(a, b, blk, h, kh, r0, r1, w, P.data(), a.softcap > 0 ? dT.data() : nullptr);
            probs(a, b, blk, r0, r1, w, P.data(), const_cast<float*>(lse) + (b * a.Hq + h) * T + blk.s0, false);
            Part parts[2];
            const int np = partsOf(blk, w, parts);
            for (int p = 0; p < np; p++) {
              const int64_t ko = (b * T + parts[p].key0) * ldk + kh * D, c0 = parts[p].col0, n = parts[p].n;
              // dV += Pᵀ·dO ; dP = dO·Vᵀ
              sgemm(true, false, n, D, rows, 1.0f, P.data() + c0, w, gOut + qo, ldq, 1.0f, gv + ko, ldk);
              sgemm(false, true, rows, n, D, 1.0f, gOut + qo, ldq, a.v + ko, ldk, 0.0f, dP.data() + c0, w);
            }
            for (int64_t t = 0; t < rows; t++) {
              double di = 0;
              for (int64_t d = 0; d < D; d++) di += (double)gOut[qo + t * ldq + d] * out[qo + t * ldq + d];
              const float fdi = (float)di;
              float *p = P.data() + t * w, *dp = dP.data() + t * w;
#pragma omp simd
              for (int64_t j = 0; j < w; j++) dp[j] = p[j] * (dp[j] - fdi);  // dS
              if (a.softcap > 0) {
                const float* dt = dT.data() + t * w;
#pragma omp simd
                for (int64_t j = 0; j < w; j++) dp[j] *= dt[j];  // through cap·tanh(s / cap)
              }
            }
            for (int p = 0; p < np; p++) {
              const int64_t ko = (b * T + parts[p].key0) * ldk + kh * D, c0 = parts[p].col0, n = parts[p].n;
              // dQ = scale·dS·K ; dK += scale·dSᵀ·Q
              sgemm(false, false, rows, D, n, a.scale, dP.data() + c0, w, a.k + ko, ldk, p > 0 ? 1.0f : 0.0f, gq + qo, ldq);
              sgemm(true, false, n, D, rows, a.scale, dP.data() + c0, w, a.q + qo, ldq, 1.0f, gk + ko, ldk);
            }
          }
        }
      }
    });
  }
  errors.rethrow();
  return info.Env().Undefined();
}

}  // namespace dpo
