/** Reductions: sum over the middle axis of (outer, dim, inner), and a float64 sum of squares. */
import type { F } from '../types.js';

export function sumAxis(x: F, out: F, outer: number, dim: number, inner: number): void {
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    for (let d = 0; d < dim; d++) {
      const base = (o * dim + d) * inner;
      for (let i = 0; i < inner; i++) acc[i] += x[base + i];
    }
    for (let i = 0; i < inner; i++) out[o * inner + i] = acc[i];
  }
}

export function sumSquares(x: F, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i] * x[i];
  return s;
}
