/** Rotary embedding, HF rotate_half convention: out = x·cos + rotate_half(x)·sin. */
import type { F, Idx } from '../types.js';

export function rope(x: F, out: F, cos: F, sin: F, pos: Idx, rows: number, heads: number, dim: number, inverse: boolean): void {
  const half = dim / 2;
  const sgn = inverse ? -1 : 1;
  for (let r = 0; r < rows; r++) {
    const t = pos[r] * dim;
    for (let h = 0; h < heads; h++) {
      const o = (r * heads + h) * dim;
      for (let i = 0; i < half; i++) {
        const x1 = x[o + i], x2 = x[o + i + half];
        // rotate_half(x) = (−x2, x1)
        out[o + i] = x1 * cos[t + i] - x2 * sgn * sin[t + i];
        out[o + i + half] = x2 * cos[t + i + half] + x1 * sgn * sin[t + i + half];
      }
    }
  }
}
