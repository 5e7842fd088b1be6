/** Row softmax / log-softmax with max subtraction, and their backward. */
import type { F } from '../types.js';

export function softmax(x: F, out: F, rows: number, cols: number, log: boolean): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let m = -Infinity;
    let nan = false;
    for (let j = 0; j < cols; j++) {
      const v = x[o + j];
      if (v !== v) nan = true;
      if (v > m) m = v;
    }
    if (nan) {
      for (let j = 0; j < cols; j++) out[o + j] = NaN;
      continue;
    }
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(x[o + j] - m);
    if (log) {
      const lse = m + Math.log(s);
      for (let j = 0; j < cols; j++) out[o + j] = x[o + j] - lse;
    } else {
      for (let j = 0; j < cols; j++) out[o + j] = Math.exp(x[o + j] - m) / s;
    }
  }
}

export function softmaxBackward(y: F, gy: F, gx: F, rows: number, cols: number, log: boolean): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    if (log) {
      // gx = gy − exp(y)·Σ gy
      for (let j = 0; j < cols; j++) s += gy[o + j];
      for (let j = 0; j < cols; j++) gx[o + j] = gy[o + j] - Math.exp(y[o + j]) * s;
    } else {
      // gx = y·(gy − Σ gy·y)
      for (let j = 0; j < cols; j++) s += gy[o + j] * y[o + j];
      for (let j = 0; j < cols; j++) gx[o + j] = y[o + j] * (gy[o + j] - s);
    }
  }
}
