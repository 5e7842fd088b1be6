// A frozen matrix in one of src/quant/storage.ts's storages (f32, bf16, f16, NF4/FP4 with or
// without nested absmax, int8 rows), as the kernels that read it without a float32 copy see it:
// stored-gemm.cc (linear layers), the stored embedding gather and the fused log-prob's lm_head.
#pragma once
#include <cstdint>
#include "common.h"

namespace dpo {

enum StoredKind { KF32 = 0, KBF16 = 1, KF16 = 2, KNF4 = 3, KFP4 = 4, KINT8 = 5 };

struct Stored {
  int kind;
  int64_t rows, cols;
  const void* data;
  const float* absmax;     // 4-bit: absmax per 64 (absmax2 per 256 blocks when nested); int8: SCB
  const uint8_t* qabsmax;  // 4-bit nested: codes of absmax - offset
  const float* table;      // 4-bit: the 16 code values
  const float* code8;      // nested: the 8-bit dynamic map
  float offset;
};

// The 9 arguments from index i: kind, rows, cols, data, absmax, qabsmax, table, code8, offset
// (backend/native/kernels.ts storedArgs), checked.
Stored readStored(const Napi::CallbackInfo& info, size_t i);

// Rows [r0, r1) of W as float32 values into out ((r1 − r0) × cols), bit-identical to
// quant/storage.ts dequantizeRows; parallel over rows when large.
void dequantizeRows(const Stored& w, int64_t r0, int64_t r1, float* out);

}  // namespace dpo
