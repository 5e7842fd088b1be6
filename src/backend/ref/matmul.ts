/**
 * Batched strided GEMM, C = alpha·op(A)·op(B) + beta·C, in plain loops with float64 accumulation.
 * Row i of op(A) is first gathered into a contiguous buffer; then, for locality, transB takes dot
 * products of contiguous rows of B, and the plain case runs i-k-j over contiguous rows of B.
 */
import type { F, MatmulArgs, MatmulPrecision } from '../types.js';
import { bf16ToF32, f32ToBf16 } from '../../io/half.js';

let precision: MatmulPrecision = 'float32';

/** bf16 mode: float32 operands are rounded to bf16 (nearest even) first; float64 ones never are. */
export function setMatmulPrecision(p: MatmulPrecision): void {
  precision = p;
}

export function matmulPrecision(): MatmulPrecision {
  return precision;
}

function roundedBf16(x: F | Uint16Array): Float64Array {
  const out = new Float64Array(x.length);
  if (x instanceof Uint16Array) for (let i = 0; i < x.length; i++) out[i] = bf16ToF32(x[i]);
  else for (let i = 0; i < x.length; i++) out[i] = bf16ToF32(f32ToBf16(x[i]));
  return out;
}

export function matmul(p: MatmulArgs): void {
  const toBf16 = p.b instanceof Uint16Array || (precision === 'bfloat16' && (p.a instanceof Float32Array || p.b instanceof Float32Array));
  const a = toBf16 ? roundedBf16(p.a) : p.a;
  const b = p.b instanceof Uint16Array || toBf16 ? roundedBf16(p.b) : p.b;
  const { c, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta } = p;
  const arow = new Float64Array(k); // row i of op(A)
  const acc = new Float64Array(n); // row i of op(A)·op(B)
  for (let bi = 0; bi < batch; bi++) {
    const oa = bi * strideA, ob = bi * strideB, oc = bi * strideC;
    for (let i = 0; i < m; i++) {
      if (transA) for (let kk = 0; kk < k; kk++) arow[kk] = a[oa + kk * m + i];
      else for (let kk = 0; kk < k; kk++) arow[kk] = a[oa + i * k + kk];
      if (transB) {
        // acc[j] = Σ_k arow[k]·B[j, k]
        for (let j = 0; j < n; j++) {
          const row = ob + j * k;
          let s = 0;
          for (let kk = 0; kk < k; kk++) s += arow[kk] * b[row + kk];
          acc[j] = s;
        }
      } else {
        // acc += arow[k]·B[k, :] for each k
        acc.fill(0);
        for (let kk = 0; kk < k; kk++) {
          const av = arow[kk];
          const row = ob + kk * n;
          for (let j = 0; j < n; j++) acc[j] += av * b[row + j];
        }
      }
      const row = oc + i * n;
      // beta = 0 overwrites C, ignoring its old contents (even NaN), as BLAS does.
      if (beta === 0) for (let j = 0; j < n; j++) c[row + j] = alpha * acc[j];
      else for (let j = 0; j < n; j++) c[row + j] = alpha * acc[j] + beta * c[row + j];
    }
  }
}
