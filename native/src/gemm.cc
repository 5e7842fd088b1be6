// Matmul through oneDNN's matmul primitive, with primitives cached by shape/stride/transposes so a
// training step reuses them; plus a C++-only timing loop that measures oneDNN's own ceiling.
#include <chrono>
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include "dnnl.hpp"
#include "common.h"
#include "cpu.h"

namespace dpo {
namespace {

// GEMMs are also called from inside OpenMP loops (attention runs one head per thread, each GEMM
// then single-threaded), so the stream, the primitive cache and the bf16 scratch are per thread.
dnnl::engine& eng() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& strm() {
  thread_local dnnl::stream s(eng());
  return s;
}

struct Entry {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c;
};

// LRU of primitives; creation costs far more than execution for small shapes.
struct Cache {
  std::list<std::pair<std::string, Entry>> items;
  std::unordered_map<std::string, std::list<std::pair<std::string, Entry>>::iterator> map;
  size_t cap = 1024;
};
Cache& cache() {
  thread_local Cache c;
  return c;
}

using dt = dnnl::memory::data_type;

// bf16 mode (`--bf16`): A and B are rounded to bf16 (round to nearest even, as torch does) and
// multiplied with f32 accumulation and an f32 C; like torch's CPU autocast, minus its rounding of C
// to bf16. On bf16 units the operands go in as bf16; without them as bf16-valued floats.
bool g_bf16 = false;
thread_local RoundedOperand g_opA, g_opB;

__attribute__((always_inline)) inline uint16_t toBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
__attribute__((always_inline)) inline float fromBf16(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

DPO_ISA_CLONES(void, roundToBf16, (const float* x, uint16_t* d, int64_t n), (x, d, n)) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) d[i] = toBf16(x[i]);
}
DPO_ISA_CLONES(void, roundToBf16Vals, (const float* x, float* d, int64_t n), (x, d, n)) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) d[i] = fromBf16(toBf16(x[i]));
}
DPO_ISA_CLONES(void, widenBf16, (const uint16_t* x, float* d, int64_t n), (x, d, n)) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) d[i] = fromBf16(x[i]);
}

// Converts the n elements of a (possibly strided) operand; memory-bound, so split across threads.
template <typename In, typename Out, typename F>
const Out* convert(const In* x, int64_t n, std::vector<Out>& buf, F fn) {
  if ((int64_t)buf.size() < n) buf.resize(n);
  Out* d = buf.data();
  const int64_t block = 1 << 16;
#pragma omp parallel for schedule(static) if (n > 2 * block)
  for (int64_t i = 0; i < n; i += block) fn(x + i, d + i, std::min(block, n - i));
  return d;
}

// The operand as the route needs it: bf16 bits for the bf16 units, bf16-valued floats otherwise.
const void* bf16Operand(const float* x, const RoundedOperand* r, int64_t n, bool units, RoundedOperand& scratch) {
  if (units) {
    if (r && r->bits) return r->bits;
    return convert(x, n, scratch.b16, roundToBf16);
  }
  if (r && r->vals) return r->vals;
  if (r && r->bits) return convert(r->bits, n, scratch.f32, widenBf16);
  return convert(x, n, scratch.f32, roundToBf16Vals);
}

Entry& get(int64_t batch, int64_t M, int64_t N, int64_t K, int64_t lda, bool ta, int64_t sa, int64_t ldb, bool tb, int64_t sb,
           int64_t ldc, int64_t sc, float alpha, float beta, bool bf16) {
  std::string key = std::to_string(bf16) + "," + std::to_string(batch) + "," + std::to_string(M) + "," + std::to_string(N) + "," + std::to_string(K) + "," +
                    std::to_string(lda) + "," + std::to_string(ta) + "," + std::to_string(sa) + "," + std::to_string(ldb) + "," +
                    std::to_string(tb) + "," + std::to_string(sb) + "," + std::to_string(ldc) + "," + std::to_string(sc) + "," +
                    std::to_string(alpha) + "," + std::to_string(beta);
  auto& c = cache();
  auto it = c.map.find(key);
  if (it != c.map.end()) {
    c.items.splice(c.items.begin(), c.items, it->second);
    return it->second->second;
  }
  // Batch broadcast: a batch stride of 0 becomes a batch dim of 1.
  int64_t ba = sa == 0 ? 1 : batch, bb = sb == 0 ? 1 : batch;
  dt in = bf16 ? dt::bf16 : dt::f32;
  dnnl::memory::desc a({ba, M, K}, in, ta ? dnnl::memory::dims{sa == 0 ? M * K : sa, 1, lda} : dnnl::memory::dims{sa == 0 ? M * lda : sa, lda, 1});
  dnnl::memory::desc b({bb, K, N}, in, tb ? dnnl::memory::dims{sb == 0 ? K * N : sb, 1, ldb} : dnnl::memory::dims{sb == 0 ? K * ldb : sb, ldb, 1});
  dnnl::memory::desc cm({batch, M, N}, dt::f32, dnnl::memory::dims{sc == 0 ? M * ldc : sc, ldc, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops po;
    po.append_sum(beta);
    attr.set_post_ops(po);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, cm), attr, eng());  // throws dnnl::error
  c.items.emplace_front(key, Entry{dnnl::matmul(pd), a, b, cm});
  c.map[key] = c.items.begin();
  if (c.items.size() > c.cap) {
    c.map.erase(c.items.back().first);
    c.items.pop_back();
  }
  return c.items.front().second;
}

}  // namespace

std::string shapeOf(int64_t batch, int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool bf16) {
  return "matmul " + (batch > 1 ? std::to_string(batch) + "×" : std::string()) + std::to_string(M) + "×" + std::to_string(K) +
         (ta ? "ᵀ" : "") + " · " + std::to_string(K) + "×" + std::to_string(N) + (tb ? "ᵀ" : "") + (bf16 ? " bf16" : " f32");
}

void gemm(int64_t batch, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, bool transA, int64_t sa,
          const float* B, int64_t ldb, bool transB, int64_t sb, float* C, int64_t ldc, int64_t sc, float alpha, float beta,
          bool bf16Ok, const RoundedOperand* Ar, const RoundedOperand* Br) {
  auto filled = [](const RoundedOperand* r) { return r && (r->bits || r->vals); };
  const bool bf16 = (g_bf16 && bf16Ok) || filled(Ar) || filled(Br);
  if (M == 0 || N == 0 || batch == 0) return;
  if (K == 0) {
    for (int64_t bi = 0; bi < batch; bi++)
      for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
          float& v = C[bi * sc + i * ldc + j];
          v = beta == 0.0f ? 0.0f : beta * v;
        }
    return;
  }
  try {
    Entry* e = nullptr;
    bool units = bf16 && bf16Units();
    if (units) {
      try {
        e = &get(batch, M, N, K, lda, transA, sa, ldb, transB, sb, ldc, sc, alpha, beta, true);
      } catch (const dnnl::error&) {
        units = false;
      }
    }
    if (!e) {
      e = &get(batch, M, N, K, lda, transA, sa, ldb, transB, sb, ldc, sc, alpha, beta, false);  // a bad shape throws here too
      // The float32 primitive exists where the bf16 one was refused: the ISA check allowed bf16 but
      // oneDNN cannot, so the float32 route from now on (a bad shape never reaches this line).
      if (bf16 && bf16Units()) disableBf16Units();
    }
    const void *pa = A, *pb = B;
    if (bf16) {
      // Element extent of each strided operand (all batches, last row ends at its last column).
      int64_t na = (sa == 0 ? 0 : (batch - 1) * sa) + (transA ? (K - 1) * lda + M : (M - 1) * lda + K);
      int64_t nb = (sb == 0 ? 0 : (batch - 1) * sb) + (transB ? (N - 1) * ldb + K : (K - 1) * ldb + N);
      pa = bf16Operand(A, Ar, na, units, g_opA);
      pb = bf16Operand(B, Br, nb, units, g_opB);
    }
    dnnl::memory am(e->a, eng(), const_cast<void*>(pa)), bm(e->b, eng(), const_cast<void*>(pb)), cm(e->c, eng(), C);
    e->prim.execute(strm(), {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    strm().wait();
  } catch (const dnnl::error& err) {
    throw std::runtime_error(shapeOf(batch, M, N, K, transA, transB, bf16) + ": oneDNN: " + err.what() + " (status " + std::to_string((int)err.status) + ")");
  }
}

void roundAlways(const float* x, int64_t n, RoundedOperand& out) {
  if (bf16Units()) out.bits = convert(x, n, out.b16, roundToBf16);
  else out.vals = convert(x, n, out.f32, roundToBf16Vals);
}

void roundOnce(const float* x, int64_t n, RoundedOperand& out) {
  if (g_bf16) roundAlways(x, n, out);
}

// matmul(a, b, c, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  int64_t m = I64(info[4]), n = I64(info[5]), k = I64(info[6]);
  bool ta = B(info[7]), tb = B(info[8]);
  // b may be a Uint16Array of bf16 bits (a frozen weight stored in bf16).
  const bool bits = info[1].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
  RoundedOperand stored;
  if (bits) stored.bits = info[1].As<Napi::Uint16Array>().Data();
  gemm(I64(info[3]), m, n, k, F32(info[0]), ta ? m : k, ta, I64(info[9]), bits ? nullptr : F32(info[1]), tb ? k : n, tb, I64(info[10]),
       F32(info[2]), n, I64(info[11]), (float)F64(info[12]), (float)F64(info[13]), true, nullptr, bits ? &stored : nullptr);
  return info.Env().Undefined();
}

// setMatmulBf16(on): switches every float32 GEMM (linear layers, fused log-prob) to bf16 inputs.
Napi::Value SetMatmulBf16(const Napi::CallbackInfo& info) {
  g_bf16 = B(info[0]);
  return info.Env().Undefined();
}

// matmulCeiling(m, n, k, iters, bf16) → seconds per GEMM, timed in C++ with no JS in between; with
// bf16 the operands are converted once beforehand, so this is oneDNN's own bf16 GEMM alone.
Napi::Value MatmulCeiling(const Napi::CallbackInfo& info) {
  int64_t m = I64(info[0]), n = I64(info[1]), k = I64(info[2]), iters = I64(info[3]);
  // Without bf16 units the bf16 route is a float32 GEMM (on bf16-valued floats): time that.
  bool bf16 = info.Length() > 4 && B(info[4]) && bf16Units();
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  std::vector<uint16_t> a16, b16;
  void *pa = a.data(), *pb = b.data();
  if (bf16) {
    pa = const_cast<uint16_t*>(convert(a.data(), m * k, a16, roundToBf16));
    pb = const_cast<uint16_t*>(convert(b.data(), k * n, b16, roundToBf16));
  }
  Entry& e = get(1, m, n, k, k, false, 0, k, true, 0, n, 0, 1.0f, 0.0f, bf16);
  dnnl::memory am(e.a, eng(), pa), bm(e.b, eng(), pb), cm(e.c, eng(), c.data());
  auto run = [&] {
    e.prim.execute(strm(), {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    strm().wait();
  };
  run();
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; i++) run();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Napi::Number::New(info.Env(), s / iters);
}

}  // namespace dpo
