// Matmul through oneDNN's matmul primitive, with primitives cached by shape/stride/transposes so a
// training step reuses them; plus a C++-only timing loop that measures oneDNN's own ceiling.
#include <chrono>
#include <algorithm>
#include <cstring>
#include <vector>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include "dnnl.hpp"
#include "common.h"

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
// multiplied on the CPU's bf16 units with f32 accumulation and an f32 C; like torch's CPU autocast,
// minus its rounding of C to bf16.
bool g_bf16 = false;
thread_local std::vector<uint16_t> g_bufA, g_bufB;

inline uint16_t toBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Rounds n floats to bf16 bits; cloned per ISA so the loop runs on 512-bit vectors where it can.
__attribute__((target_clones("arch=skylake-avx512", "avx2", "default")))
void roundToBf16(const float* x, uint16_t* d, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) d[i] = toBf16(x[i]);
}

// Converts the n floats of a (possibly strided) operand; memory-bound, so split across threads.
const uint16_t* toBf16Buf(const float* x, int64_t n, std::vector<uint16_t>& buf) {
  if ((int64_t)buf.size() < n) buf.resize(n);
  uint16_t* d = buf.data();
  const int64_t block = 1 << 16;
#pragma omp parallel for schedule(static) if (n > 2 * block)
  for (int64_t i = 0; i < n; i += block) roundToBf16(x + i, d + i, std::min(block, n - i));
  return d;
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
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, cm), attr, eng());
  c.items.emplace_front(key, Entry{dnnl::matmul(pd), a, b, cm});
  c.map[key] = c.items.begin();
  if (c.items.size() > c.cap) {
    c.map.erase(c.items.back().first);
    c.items.pop_back();
  }
  return c.items.front().second;
}

}  // namespace

void gemm(int64_t batch, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, bool transA, int64_t sa,
          const float* B, int64_t ldb, bool transB, int64_t sb, float* C, int64_t ldc, int64_t sc, float alpha, float beta,
          bool bf16Ok, const uint16_t* Bbits, const uint16_t* Abits) {
  const bool bf16 = (g_bf16 && bf16Ok) || Bbits || Abits;
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
  Entry& e = get(batch, M, N, K, lda, transA, sa, ldb, transB, sb, ldc, sc, alpha, beta, bf16);
  void *pa = const_cast<float*>(A), *pb = const_cast<float*>(B);
  if (bf16) {
    // Element extent of each strided operand (all batches, last row ends at its last column).
    int64_t na = (sa == 0 ? 0 : (batch - 1) * sa) + (transA ? (K - 1) * lda + M : (M - 1) * lda + K);
    int64_t nb = (sb == 0 ? 0 : (batch - 1) * sb) + (transB ? (N - 1) * ldb + K : (K - 1) * ldb + N);
    pa = Abits ? const_cast<uint16_t*>(Abits) : const_cast<uint16_t*>(toBf16Buf(A, na, g_bufA));
    pb = Bbits ? const_cast<uint16_t*>(Bbits) : const_cast<uint16_t*>(toBf16Buf(B, nb, g_bufB));
  }
  dnnl::memory am(e.a, eng(), pa), bm(e.b, eng(), pb), cm(e.c, eng(), C);
  e.prim.execute(strm(), {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  strm().wait();
}

const uint16_t* bf16OperandOnce(const float* x, int64_t n, std::vector<uint16_t>& buf) {
  return g_bf16 ? toBf16Buf(x, n, buf) : nullptr;
}

// matmul(a, b, c, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  int64_t m = I64(info[4]), n = I64(info[5]), k = I64(info[6]);
  bool ta = B(info[7]), tb = B(info[8]);
  // b may be a Uint16Array of bf16 bits (a frozen weight stored in bf16).
  const bool bits = info[1].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
  const uint16_t* Bbits = bits ? info[1].As<Napi::Uint16Array>().Data() : nullptr;
  gemm(I64(info[3]), m, n, k, F32(info[0]), ta ? m : k, ta, I64(info[9]), bits ? nullptr : F32(info[1]), tb ? k : n, tb, I64(info[10]),
       F32(info[2]), n, I64(info[11]), (float)F64(info[12]), (float)F64(info[13]), true, Bbits);
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
  bool bf16 = info.Length() > 4 && B(info[4]);
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  std::vector<uint16_t> a16, b16;
  void *pa = a.data(), *pb = b.data();
  if (bf16) {
    pa = const_cast<uint16_t*>(toBf16Buf(a.data(), m * k, a16));
    pb = const_cast<uint16_t*>(toBf16Buf(b.data(), k * n, b16));
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
