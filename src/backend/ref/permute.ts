/** out = x.permute(perm) for a contiguous x of the given shape. */
import type { F } from '../types.js';

export function permute(x: F, out: F, shape: readonly number[], perm: readonly number[]): void {
  const rank = shape.length;
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    inStrides[d] = s;
    s *= shape[d];
  }
  const outShape = perm.map((p) => shape[p]);
  const st = perm.map((p) => inStrides[p]); // input stride for each output dim
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < s; i++) {
    out[i] = x[src];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      src += st[d];
      if (idx[d] < outShape[d]) break;
      src -= st[d] * outShape[d];
      idx[d] = 0;
    }
  }
}
