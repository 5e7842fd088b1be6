/**
 * Backend selection. The native backend is used when its addon is built; otherwise the reference
 * backend runs, with one warning. `DPO_BACKEND=ref|native` (or `setBackend`) forces either;
 * `DPO_NUM_THREADS` sets the native thread count. float64 always runs on ref (native is float32).
 */
import { DpoError } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import { refBackend } from './ref/index.js';
import { loadNativeBackend } from './native/index.js';
import type { Backend, Kernels, MatmulPrecision } from './types.js';

let current: Backend | null = null;
let warned = false;
let precision: MatmulPrecision = 'float32';

function pick(): Backend {
  const want = process.env.DPO_BACKEND;
  if (want === 'ref') return refBackend;
  const native = loadNativeBackend();
  if (native.backend) {
    const threads = Number(process.env.DPO_NUM_THREADS);
    if (threads > 0) native.backend.setNumThreads(threads);
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

/** Whether the native addon loaded. */
export function nativeAvailable(): boolean {
  return loadNativeBackend().backend !== null;
}

/** Kernels for a dtype: float64 always uses the reference kernels. */
export function kernelsFor(dtype: DType): Kernels {
  const b = getBackend();
  return dtype === 'float64' || !b.dtypes.includes(dtype) ? refBackend.kernels : b.kernels;
}

export type { Backend, Kernels, MatmulPrecision } from './types.js';
