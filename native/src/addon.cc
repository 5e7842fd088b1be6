// The native core's entry point: one export per kernel family, plus thread control.
#include <omp.h>
#include "common.h"

namespace dpo {
Napi::Value Matmul(const Napi::CallbackInfo&);
Napi::Value Swiglu(const Napi::CallbackInfo&);
Napi::Value SwigluBackward(const Napi::CallbackInfo&);
Napi::Value MatmulCeiling(const Napi::CallbackInfo&);
Napi::Value SetMatmulBf16(const Napi::CallbackInfo&);
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto add = [&](const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&)) { exports.Set(name, Napi::Function::New(env, fn, name)); };
  add("matmul", Matmul);
  add("matmulCeiling", MatmulCeiling);
  add("setMatmulBf16", SetMatmulBf16);
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
  return exports;
}

}  // namespace dpo

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return dpo::Init(env, exports); }
NODE_API_MODULE(dpo_native, InitAll)
