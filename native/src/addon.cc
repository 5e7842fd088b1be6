// The native core's entry point: one export per kernel family, plus thread control and CPU facts.
// Every export runs behind guard(): no C++ or oneDNN exception ever reaches N-API (which would
// abort the process); it becomes a JS error naming the kernel, its arguments and the CPU ISA.
#include <omp.h>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include "common.h"
#include "cpu.h"
#include "dnnl.hpp"

namespace dpo {
Napi::Value Matmul(const Napi::CallbackInfo&);
Napi::Value Swiglu(const Napi::CallbackInfo&);
Napi::Value SwigluBackward(const Napi::CallbackInfo&);
Napi::Value MatmulCeiling(const Napi::CallbackInfo&);
Napi::Value SetMatmulBf16(const Napi::CallbackInfo&);
Napi::Value StoredMatmul(const Napi::CallbackInfo&);
Napi::Value StoredEmbedding(const Napi::CallbackInfo&);
Napi::Value MapFile(const Napi::CallbackInfo&);
Napi::Value AllocLarge(const Napi::CallbackInfo&);
Napi::Value DiscardLarge(const Napi::CallbackInfo&);
Napi::Value ReadBf16AsF32(const Napi::CallbackInfo&);
Napi::Value ReadParallel(const Napi::CallbackInfo&);
Napi::Value Quantize4bit(const Napi::CallbackInfo&);
Napi::Value QuantizeNested(const Napi::CallbackInfo&);
Napi::Value QuantizeInt8Rows(const Napi::CallbackInfo&);
Napi::Value Unary(const Napi::CallbackInfo&);
Napi::Value UnaryBackward(const Napi::CallbackInfo&);
Napi::Value Binary(const Napi::CallbackInfo&);
Napi::Value Axpy(const Napi::CallbackInfo&);
Napi::Value MaskScale(const Napi::CallbackInfo&);
Napi::Value SumAxis(const Napi::CallbackInfo&);
Napi::Value SumSquares(const Napi::CallbackInfo&);
Napi::Value AdamW(const Napi::CallbackInfo&);
Napi::Value Softmax(const Napi::CallbackInfo&);
Napi::Value SoftmaxBackward(const Napi::CallbackInfo&);
Napi::Value RmsNorm(const Napi::CallbackInfo&);
Napi::Value RmsNormBackward(const Napi::CallbackInfo&);
Napi::Value LayerNorm(const Napi::CallbackInfo&);
Napi::Value LayerNormBackward(const Napi::CallbackInfo&);
Napi::Value Rope(const Napi::CallbackInfo&);
Napi::Value Embedding(const Napi::CallbackInfo&);
Napi::Value EmbeddingBackward(const Napi::CallbackInfo&);
Napi::Value Attention(const Napi::CallbackInfo&);
Napi::Value AttentionBackward(const Napi::CallbackInfo&);
Napi::Value TokenLogprobs(const Napi::CallbackInfo&);
Napi::Value TokenLogprobsBackward(const Napi::CallbackInfo&);

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  omp_set_num_threads((int)I64(info[0]));
  return info.Env().Undefined();
}
Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), omp_get_max_threads()); }

// cpuInfo() → { kernelIsa, onednnIsa, bf16Units }: what cpu.cc decided at start-up.
Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("kernelIsa", isaName(kernelIsa()));
  o.Set("onednnIsa", onednnIsaName());
  o.Set("bf16Units", bf16Units());
  return o;
}

namespace {

// "f32[4608], i32[12], 64, true, null": the arguments' types and sizes, for error messages.
std::string describeArgs(const Napi::CallbackInfo& info) {
  std::string s;
  for (size_t i = 0; i < info.Length(); i++) {
    const Napi::Value v = info[i];
    if (i) s += ", ";
    if (v.IsTypedArray()) {
      const auto t = v.As<Napi::TypedArray>();
      const char* k = t.TypedArrayType() == napi_float32_array ? "f32" : t.TypedArrayType() == napi_int32_array ? "i32"
                    : t.TypedArrayType() == napi_uint16_array ? "u16" : t.TypedArrayType() == napi_uint8_array ? "u8" : "typed";
      s += std::string(k) + "[" + std::to_string(t.ElementLength()) + "]";
    } else if (v.IsNumber()) {
      const double d = v.As<Napi::Number>().DoubleValue();
      s += d == (double)(int64_t)d ? std::to_string((int64_t)d) : std::to_string(d);
    } else if (v.IsBoolean()) {
      s += v.As<Napi::Boolean>().Value() ? "true" : "false";
    } else if (v.IsNull() || v.IsUndefined()) {
      s += "null";
    } else {
      s += "?";
    }
  }
  return s;
}

// DPO_FAIL_KERNEL=name makes that kernel throw a oneDNN error, so tests can prove the guard end to end.
const std::string& failKernel() {
  static const std::string k = std::getenv("DPO_FAIL_KERNEL") ? std::getenv("DPO_FAIL_KERNEL") : "";
  return k;
}

}  // namespace

bool failInRegion() {
  static const bool on = failKernel() == "region";
  return on;
}

namespace {

Napi::Value fail(const Napi::CallbackInfo& info, const std::string& name, const std::string& what) {
  const std::string msg = "native kernel " + name + " failed: " + what + " [arguments: " + describeArgs(info) + "; CPU: " + cpuSummary() + "]";
  Napi::Error::New(info.Env(), msg).ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto add = [&](const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&)) {
    const std::string kernel = name;
    auto guard = [fn, kernel](const Napi::CallbackInfo& info) -> Napi::Value {
      try {
        if (!failKernel().empty() && failKernel() == kernel) throw dnnl::error(dnnl_runtime_error, "failure injected by DPO_FAIL_KERNEL");
        return fn(info);
      } catch (const dnnl::error& e) {
        return fail(info, kernel, std::string("oneDNN: ") + e.what() + " (status " + std::to_string((int)e.status) + ")");
      } catch (const std::bad_alloc&) {
        return fail(info, kernel, "out of memory");
      } catch (const std::exception& e) {
        return fail(info, kernel, e.what());
      } catch (...) {
        return fail(info, kernel, "unknown C++ exception");
      }
    };
    exports.Set(name, Napi::Function::New(env, guard, name));
  };
  add("matmul", Matmul);
  add("matmulCeiling", MatmulCeiling);
  add("setMatmulBf16", SetMatmulBf16);
  add("storedMatmul", StoredMatmul);
  add("storedEmbedding", StoredEmbedding);
  add("mapFile", MapFile);
  add("allocLarge", AllocLarge);
  add("discardLarge", DiscardLarge);
  add("readBf16AsF32", ReadBf16AsF32);
  add("readParallel", ReadParallel);
  add("quantize4bit", Quantize4bit);
  add("quantizeNested", QuantizeNested);
  add("quantizeInt8Rows", QuantizeInt8Rows);
  add("unary", Unary);
  add("unaryBackward", UnaryBackward);
  add("binary", Binary);
  add("swiglu", Swiglu);
  add("swigluBackward", SwigluBackward);
  add("axpy", Axpy);
  add("maskScale", MaskScale);
  add("sumAxis", SumAxis);
  add("sumSquares", SumSquares);
  add("adamw", AdamW);
  add("softmax", Softmax);
  add("softmaxBackward", SoftmaxBackward);
  add("rmsnorm", RmsNorm);
  add("rmsnormBackward", RmsNormBackward);
  add("layernorm", LayerNorm);
  add("layernormBackward", LayerNormBackward);
  add("rope", Rope);
  add("embedding", Embedding);
  add("embeddingBackward", EmbeddingBackward);
  add("attention", Attention);
  add("attentionBackward", AttentionBackward);
  add("tokenLogprobs", TokenLogprobs);
  add("tokenLogprobsBackward", TokenLogprobsBackward);
  add("setNumThreads", SetNumThreads);
  add("getNumThreads", GetNumThreads);
  add("cpuInfo", CpuInfo);
  return exports;
}

}  // namespace dpo

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return dpo::Init(env, exports); }
NODE_API_MODULE(dpo_native, InitAll)
