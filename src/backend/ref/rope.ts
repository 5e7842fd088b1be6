/** Rotary embedding, HF rotate_half convention: out = x·cos + rotate_half(x)·sin on the first R dims of each head. */
import type { F, Idx } from '../types.js';

export function rope(x: F, out: F, cos: F, sin: F, pos: Idx, rows: number, heads: number, dim: number, inverse: boolean, rotaryDim = dim): void {
  const R = rotaryDim, half = R / 2;
  const sgn = inverse ? -1 : 1;
  for (let r = 0; r < rows; r++) {
    const t = pos[r] * R;
    for (let h = 0; h < heads; h++) {
      const o = (r * heads + h) * dim;
      for (let i = 0; i < half; i++) {
        const x1 = x[o + i], x2 = x[o + i + half];
        // rotate_half(x) = (−x2, x1)
        out[o + i] = x1 * cos[t + i] - x2 * sgn * sin[t + i];
        out[o + i + half] = x2 * cos[t + i + half] + x1 * sgn * sin[t + i + half];
      }
      // the pass-through dims (partial rotary); gradient passes through unchanged too
      for (let d = R; d < dim; d++) out[o + d] = x[o + d];
    }
  }
}
