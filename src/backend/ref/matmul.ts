/**
 * Batched strided GEMM, C = alpha·op(A)·op(B) + beta·C, in plain loops with float64 accumulation.
 * Row i of op(A) is first gathered into a contiguous buffer; then, for locality, transB takes dot
 * products of contiguous rows of B, and the plain case runs i-k-j over contiguous rows of B.
 */
import type { MatmulArgs } from '../types.js';

export function matmul(p: MatmulArgs): void {
  const { a, b, c, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta } = p;
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
