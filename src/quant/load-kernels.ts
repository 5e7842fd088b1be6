/**
 * The load-time conversions (4-bit / nested / int8 quantization, bf16 widening) run by the native
 * addon when it is built (native/src/quantize.cc, OpenMP over blocks), else by the TypeScript
 * reference in quant/storage.ts and io/half.ts; both give the same bits (test/quant/load-kernels.test.ts).
 * DPO_BACKEND=ref keeps the reference (the current backend decides, as for every kernel).
 *
 * @example
 * const k = loadKernels(); // LoadKernels | null
 */
import { getBackend } from '../backend/index.js';
import type { LoadKernels } from '../backend/types.js';

export function loadKernels(): LoadKernels | null {
  return getBackend().loadKernels ?? null;
}
