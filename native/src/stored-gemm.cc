// GEMMs with a frozen weight W (rows × cols) kept in its storage (src/quant/storage.ts): f32, bf16,
// f16, NF4/FP4 (bitsandbytes' blockwise 4-bit, optionally with nested absmax) or int8 (LLM.int8's
// row-wise absmax). W is dequantized a tile of rows at a time into a per-thread buffer (16 MB) and
// each tile goes through the same oneDNN GEMM as a float32 weight; bf16 bits on bf16 units (and
// float32 values) are multiplied in place. No float32 copy of W is ever made.
//   xWt:  C (M × rows) = A (M × cols) · Wᵀ + beta·C   (forward of a linear layer)
//   else: C (M × cols) = A (M × rows) · W  + beta·C   (its input gradient)
// The dequantization is plain scalar code on purpose (no ISA clones): no FMA contraction, so the
// values are bit-identical to the TypeScript reference's dequantizeRows.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>
#include "common.h"
#include "cpu.h"
#include "stored.h"

namespace dpo {

void roundAlways(const float* x, int64_t n, RoundedOperand& out);

namespace {

inline float bf16f(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float f16f(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
  if (e == 0) {
    if (m == 0) u = sign;
    else {  // subnormal: normalise
      int s = -1;
      do { s++; m <<= 1; } while (!(m & 0x400));
      u = sign | ((uint32_t)(112 - s) << 23) | ((m & 0x3ff) << 13);
    }
  } else if (e == 31) u = sign | 0x7f800000u | (m << 13);
  else u = sign | ((e + 112) << 23) | (m << 13);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float blockAbsmax(const Stored& w, int64_t b) {
  if (!w.qabsmax) return w.absmax[b];
  float t = w.code8[w.qabsmax[b]] * w.absmax[b / 256];
  return t + w.offset;
}

}  // namespace

void dequantizeRows(const Stored& w, int64_t r0, int64_t r1, float* out) {
  const int64_t c = w.cols;
  // 4-bit rows made of whole blocks (every layer of the models here: cols a multiple of 64): a
  // byte's two codes at once from a 256-entry table of value pairs, the block's absmax once per
  // block. The same products table[code] · absmax as the element-wise loop below, ~5× faster.
  const bool wholeBlocks = (w.kind == KNF4 || w.kind == KFP4) && c % 64 == 0;
  float pairs[256][2];
  if (wholeBlocks)
    for (int b = 0; b < 256; b++) {
      pairs[b][0] = w.table[b >> 4];
      pairs[b][1] = w.table[b & 15];
    }
#pragma omp parallel for schedule(static) if ((r1 - r0) * c > (1 << 15))
  for (int64_t r = r0; r < r1; r++) {
    float* o = out + (r - r0) * c;
    const int64_t i0 = r * c;
    if (wholeBlocks) {
      const uint8_t* p = (const uint8_t*)w.data + i0 / 2;
      for (int64_t b = 0; b < c / 64; b++) {
        const float am = blockAbsmax(w, i0 / 64 + b);
        const uint8_t* q = p + b * 32;
        float* ob = o + b * 64;
        for (int k = 0; k < 32; k++) {
          ob[2 * k] = pairs[q[k]][0] * am;
          ob[2 * k + 1] = pairs[q[k]][1] * am;
        }
      }
      continue;
    }
    switch (w.kind) {
      case KBF16: {
        const uint16_t* p = (const uint16_t*)w.data + i0;
        for (int64_t j = 0; j < c; j++) o[j] = bf16f(p[j]);
        break;
      }
      case KF16: {
        const uint16_t* p = (const uint16_t*)w.data + i0;
        for (int64_t j = 0; j < c; j++) o[j] = f16f(p[j]);
        break;
      }
      case KNF4:
      case KFP4: {
        const uint8_t* p = (const uint8_t*)w.data;
        int64_t block = -1;
        float am = 0;
        for (int64_t i = i0; i < i0 + c; i++) {
          const int64_t b = i / 64;
          if (b != block) {
            block = b;
            am = blockAbsmax(w, b);
          }
          const int code = (i & 1) ? (p[i >> 1] & 15) : (p[i >> 1] >> 4);
          o[i - i0] = w.table[code] * am;
        }
        break;
      }
      case KINT8: {
        const int8_t* p = (const int8_t*)w.data + i0;
        const float sc = w.absmax[r], inv = 1.0f / 127.0f;
        for (int64_t j = 0; j < c; j++) {
          float t = (float)p[j] * sc;
          o[j] = t * inv;
        }
        break;
      }
      default:
        std::memcpy(o, (const float*)w.data + i0, c * 4);
    }
  }
}

namespace {

// A shifted view of a rounded operand (its buffers stay in the original).
RoundedOperand shifted(const RoundedOperand& r, int64_t off) {
  RoundedOperand s;
  if (r.bits) s.bits = r.bits + off;
  if (r.vals) s.vals = r.vals + off;
  return s;
}

void storedGemm(const Stored& w, const float* A, float* C, int64_t M, bool xWt, float beta, bool widen) {
  if (M == 0) return;
  const int64_t R = w.rows, K = w.cols;
  const bool bf16Kind = w.kind == KBF16 && !widen;
  // A rounded once for every tile: always for bf16 storage (a bf16 GEMM), else as bf16 mode says.
  RoundedOperand ar;
  if (bf16Kind) roundAlways(A, M * (xWt ? K : R), ar);
  else roundOnce(A, M * (xWt ? K : R), ar);
  const bool arFilled = ar.bits || ar.vals;
  // Float32 values and bf16 bits on the bf16 units need no conversion: one GEMM on W itself.
  if (w.kind == KF32 || (bf16Kind && ar.bits)) {
    RoundedOperand wr;
    if (bf16Kind) wr.bits = (const uint16_t*)w.data;
    const float* B = w.kind == KF32 ? (const float*)w.data : nullptr;
    if (xWt) gemm(1, M, R, K, A, K, false, 0, B, K, true, 0, C, R, 0, 1.0f, beta, true, arFilled ? &ar : nullptr, bf16Kind ? &wr : nullptr);
    else gemm(1, M, K, R, A, R, false, 0, B, K, false, 0, C, K, 0, 1.0f, beta, true, arFilled ? &ar : nullptr, bf16Kind ? &wr : nullptr);
    return;
  }
  // Tiles of about 4M values (16 MB of floats; DPO_STORED_TILE_VALUES overrides, for tests), a
  // multiple of 16 rows. Few, large tiles: each tile is an OpenMP region plus a oneDNN call, and on
  // an oversubscribed CPU every region's barrier can cost a scheduler slice (1M-value tiles made a
  // 0.5B step 3× slower than float32, mostly threads spinning in libgomp).
  static const int64_t tileValues = std::getenv("DPO_STORED_TILE_VALUES") ? std::atoll(std::getenv("DPO_STORED_TILE_VALUES")) : (1 << 22);
  const int64_t tile = std::min<int64_t>(R, std::max<int64_t>(16, (tileValues / std::max<int64_t>(K, 1)) / 16 * 16));
  thread_local std::vector<float> buf;
  if ((int64_t)buf.size() < tile * K) buf.resize(tile * K);
  for (int64_t r0 = 0; r0 < R; r0 += tile) {
    const int64_t nt = std::min(tile, R - r0);
    dequantizeRows(w, r0, r0 + nt, buf.data());
    // bf16 storage without bf16 units: its tile is bf16-valued floats, and A is rounded: a bf16 GEMM on the float32 route.
    RoundedOperand wr;
    if (bf16Kind) wr.vals = buf.data();
    const float* B = bf16Kind ? nullptr : buf.data();
    if (xWt) {
      gemm(1, M, nt, K, A, K, false, 0, B, K, true, 0, C + r0, R, 0, 1.0f, beta, true, arFilled ? &ar : nullptr, bf16Kind ? &wr : nullptr);
    } else {
      RoundedOperand as = shifted(ar, r0);
      gemm(1, M, K, nt, A + r0, R, false, 0, B, K, false, 0, C, K, 0, 1.0f, r0 == 0 ? beta : 1.0f, true, arFilled ? &as : nullptr, bf16Kind ? &wr : nullptr);
    }
  }
}

}  // namespace

Stored readStored(const Napi::CallbackInfo& info, size_t i) {
  Stored w;
  w.kind = (int)I64(info[i]);
  w.rows = I64(info[i + 1]);
  w.cols = I64(info[i + 2]);
  const Napi::TypedArray d = info[i + 3].As<Napi::TypedArray>();
  w.data = (const uint8_t*)d.ArrayBuffer().Data() + d.ByteOffset();
  w.absmax = F32OrNull(info[i + 4]);
  w.qabsmax = U8OrNull(info[i + 5]);
  w.table = F32OrNull(info[i + 6]);
  w.code8 = F32OrNull(info[i + 7]);
  w.offset = (float)F64(info[i + 8]);
  if (w.kind < KF32 || w.kind > KINT8) throw std::runtime_error("stored weight: unknown storage kind " + std::to_string(w.kind));
  if ((w.kind == KNF4 || w.kind == KFP4) && (!w.absmax || !w.table || (w.qabsmax && !w.code8))) throw std::runtime_error("stored weight: a 4-bit weight needs absmax and its code table");
  if (w.kind == KINT8 && !w.absmax) throw std::runtime_error("stored weight: an int8 weight needs its row scales");
  return w;
}

// storedMatmul(a, c, m, xWt, beta, kind, rows, cols, data, absmax, qabsmax, table, code8, offset, widen)
// widen: bf16 storage multiplied as the float32 values it widens to (the lm_head; the compute
// precision alone decides any rounding), instead of a bf16 GEMM.
Napi::Value StoredMatmul(const Napi::CallbackInfo& info) {
  const Stored w = readStored(info, 5);
  const bool widen = info.Length() > 14 && info[14].IsBoolean() && B(info[14]);
  storedGemm(w, F32(info[0]), F32(info[1]), I64(info[2]), B(info[3]), (float)F64(info[4]), widen);
  return info.Env().Undefined();
}

// storedEmbedding(ids, out, n, kind, rows, cols, data, absmax, qabsmax, table, code8, offset):
// out (n, cols) = W[ids[i]] as float32 values (ids checked by the op).
Napi::Value StoredEmbedding(const Napi::CallbackInfo& info) {
  const int32_t* ids = I32(info[0]);
  float* out = F32(info[1]);
  const int64_t n = I64(info[2]);
  const Stored w = readStored(info, 3);
#pragma omp parallel for schedule(static) if (n * w.cols > 32768)
  for (int64_t i = 0; i < n; i++) dequantizeRows(w, ids[i], ids[i] + 1, out + i * w.cols);
  return info.Env().Undefined();
}

}  // namespace dpo
