/** Batched strided GEMM, C = alpha·op(A)·op(B) + beta·C, in plain loops (i-k-j order for locality). */
import type { MatmulArgs } from '../types.js';

export function matmul(p: MatmulArgs): void {
  const { a, b, c, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta } = p;
  const acc = new Float64Array(n);
  for (let bi = 0; bi < batch; bi++) {
    const oa = bi * strideA, ob = bi * strideB, oc = bi * strideC;
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      for (let kk = 0; kk < k; kk++) {
        const av = transA ? a[oa + kk * m + i] : a[oa + i * k + kk];
        if (transB) {
          for (let j = 0; j < n; j++) acc[j] += av * b[ob + j * k + kk];
        } else {
          const row = ob + kk * n;
          for (let j = 0; j < n; j++) acc[j] += av * b[row + j];
        }
      }
      const row = oc + i * n;
      if (beta === 0) for (let j = 0; j < n; j++) c[row + j] = alpha * acc[j];
      else for (let j = 0; j < n; j++) c[row + j] = alpha * acc[j] + beta * c[row + j];
    }
  }
}
