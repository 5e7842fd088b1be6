/**
 * Backend selection. The native backend is used when its addon is built; otherwise the reference
 * backend runs, with one warning. `DPO_BACKEND=ref|native` (or `setBackend`) forces either;
 * `DPO_NUM_THREADS` sets the native thread count (default: the CPUs this process may use, see
 * threads.ts). float64 always runs on ref (native is float32).
 */
import { DpoError } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import { refBackend } from './ref/index.js';
import { loadNativeBackend } from './native/index.js';
import { defaultThreadCount } from './threads.js';
import type { Backend, BackendInfo, Kernels, MatmulPrecision } from './types.js';

let current: Backend | null = null;
let warned = false;
let precision: MatmulPrecision = 'float32';

function pick(): Backend {
  const want = process.env.DPO_BACKEND;
  if (want === 'ref') return refBackend;
  const native = loadNativeBackend();
  if (native.backend) {
    native.backend.setNumThreads(defaultThreadCount());
    return native.backend;
  }
  if (want === 'native') {
    throw new DpoError(`DPO_BACKEND=native but the native core is not available (${native.error}); build it with \`npm run build:native\` (needs libdnnl-dev)`);
  }
  if (!warned && want !== 'ref') {
    warned = true;
    process.emitWarning(`native core not built (${native.error}); using the slower TypeScript backend. Build it with \`npm run build:native\` (needs libdnnl-dev).`, { code: 'DPO_NO_NATIVE' });
  }
  return refBackend;
}

/** The active backend (chosen on first use). */
export function getBackend(): Backend {
  if (!current) {
    current = pick();
    current.setMatmulPrecision(precision);
  }
  return current;
}

/** Forces a backend by name; throws a clear error if native is requested but not built. */
export function setBackend(name: 'ref' | 'native'): Backend {
  if (name === 'ref') current = refBackend;
  else {
    const native = loadNativeBackend();
    if (!native.backend) throw new DpoError(`native backend requested but not available (${native.error}); run \`npm run build:native\``);
    current = native.backend;
  }
  current.setMatmulPrecision(precision);
  return current;
}

/** The precision of float32 GEMMs on every backend ('bfloat16' for `bf16: true`). */
export function setMatmulPrecision(p: MatmulPrecision): void {
  precision = p;
  current?.setMatmulPrecision(p);
}

export function getMatmulPrecision(): MatmulPrecision {
  return precision;
}

/** "native: kernels avx2, oneDNN avx2, 2 threads": what runs the math, for the start of a run. */
export function describeCompute(info: BackendInfo = getBackend().describe()): string {
  if (info.name === 'ref') return 'compute: TypeScript reference backend (1 thread; the native core is not built)';
  return `compute: native core, kernels ${info.kernelIsa}, oneDNN ${info.onednnIsa}, ${info.threads} thread${info.threads === 1 ? '' : 's'}`;
}

/** One line on how `--bf16` runs on this CPU: on bf16 units (faster), or emulated (memory only). */
export function describeBf16(info: BackendInfo = getBackend().describe()): string {
  if (info.bf16Units) return `bf16: GEMMs on the CPU's bf16 units (oneDNN ${info.onednnIsa}), float32 accumulation`;
  const where = info.name === 'ref' ? 'the TypeScript backend' : `this CPU has no bf16 units (oneDNN ${info.onednnIsa})`;
  return `bf16: ${where}, so operands are rounded to bf16 and multiplied by float32 GEMMs: the same numerics; here bf16 saves memory, not time`;
}

/** Whether the native addon loaded. */
export function nativeAvailable(): boolean {
  return loadNativeBackend().backend !== null;
}

/** Kernels for a dtype: float64 always uses the reference kernels. */
export function kernelsFor(dtype: DType): Kernels {
  const b = getBackend();
  return dtype === 'float64' || !b.dtypes.includes(dtype) ? refBackend.kernels : b.kernels;
}

export type { Backend, BackendInfo, Kernels, MatmulPrecision } from './types.js';
