/** Row gather and its scatter-add backward. */
import type { F, Idx } from '../types.js';

export function embedding(weight: F, ids: Idx, out: F, n: number, c: number): void {
  for (let i = 0; i < n; i++) out.set(weight.subarray(ids[i] * c, ids[i] * c + c), i * c);
}

export function embeddingBackward(gOut: F, ids: Idx, gWeight: F, n: number, c: number): void {
  for (let i = 0; i < n; i++) {
    const o = ids[i] * c;
    for (let j = 0; j < c; j++) gWeight[o + j] += gOut[i * c + j];
  }
}
