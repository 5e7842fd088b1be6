// Matmul through oneDNN's matmul primitive, with primitives cached by shape/stride/transposes so a
// training step reuses them; plus a C++-only timing loop that measures oneDNN's own ceiling.
#include <chrono>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include "dnnl.hpp"
#include "common.h"

namespace dpo {
namespace {

dnnl::engine& eng() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& strm() {
  static dnnl::stream s(eng());
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
  static Cache c;
  return c;
}

using dt = dnnl::memory::data_type;

Entry& get(int64_t batch, int64_t M, int64_t N, int64_t K, int64_t lda, bool ta, int64_t sa, int64_t ldb, bool tb, int64_t sb,
           int64_t ldc, int64_t sc, float alpha, float beta) {
  std::string key = std::to_string(batch) + "," + std::to_string(M) + "," + std::to_string(N) + "," + std::to_string(K) + "," +
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
  dnnl::memory::desc a({ba, M, K}, dt::f32, ta ? dnnl::memory::dims{sa == 0 ? M * K : sa, 1, lda} : dnnl::memory::dims{sa == 0 ? M * lda : sa, lda, 1});
  dnnl::memory::desc b({bb, K, N}, dt::f32, tb ? dnnl::memory::dims{sb == 0 ? K * N : sb, 1, ldb} : dnnl::memory::dims{sb == 0 ? K * ldb : sb, ldb, 1});
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
          const float* B, int64_t ldb, bool transB, int64_t sb, float* C, int64_t ldc, int64_t sc, float alpha, float beta) {
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
  Entry& e = get(batch, M, N, K, lda, transA, sa, ldb, transB, sb, ldc, sc, alpha, beta);
  dnnl::memory am(e.a, eng(), const_cast<float*>(A)), bm(e.b, eng(), const_cast<float*>(B)), cm(e.c, eng(), C);
  e.prim.execute(strm(), {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  strm().wait();
}

// matmul(a, b, c, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  int64_t m = I64(info[4]), n = I64(info[5]), k = I64(info[6]);
  bool ta = B(info[7]), tb = B(info[8]);
  gemm(I64(info[3]), m, n, k, F32(info[0]), ta ? m : k, ta, I64(info[9]), F32(info[1]), tb ? k : n, tb, I64(info[10]), F32(info[2]), n,
       I64(info[11]), (float)F64(info[12]), (float)F64(info[13]));
  return info.Env().Undefined();
}

// matmulCeiling(m, n, k, iters) → seconds per GEMM, timed in C++ with no JS in between.
Napi::Value MatmulCeiling(const Napi::CallbackInfo& info) {
  int64_t m = I64(info[0]), n = I64(info[1]), k = I64(info[2]), iters = I64(info[3]);
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  gemm(1, m, n, k, a.data(), k, false, 0, b.data(), k, true, 0, c.data(), n, 0, 1.0f, 0.0f);
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; i++) gemm(1, m, n, k, a.data(), k, false, 0, b.data(), k, true, 0, c.data(), n, 0, 1.0f, 0.0f);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Napi::Number::New(info.Env(), s / iters);
}

}  // namespace dpo
