/** Row gather and its scatter-add backward; the gather from a stored (frozen) matrix. */
import type { F, Idx } from '../types.js';
import { dequantizeRows, type WeightStorage } from '../../quant/storage.js';

export function embedding(weight: F, ids: Idx, out: F, n: number, c: number): void {
  for (let i = 0; i < n; i++) out.set(weight.subarray(ids[i] * c, ids[i] * c + c), i * c);
}

export function embeddingBackward(gOut: F, ids: Idx, gWeight: F, n: number, c: number): void {
  for (let i = 0; i < n; i++) {
    const o = ids[i] * c;
    for (let j = 0; j < c; j++) gWeight[o + j] += gOut[i * c + j];
  }
}

export function storedEmbedding(w: WeightStorage, ids: Idx, out: F, n: number): void {
  const c = w.cols, row = new Float32Array(c);
  for (let i = 0; i < n; i++) {
    dequantizeRows(w, ids[i], ids[i] + 1, row);
    out.set(row, i * c);
  }
}
