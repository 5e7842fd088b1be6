/** RMSNorm (HF LlamaRMSNorm) and LayerNorm (torch, biased variance), forward and backward. */
import type { F } from '../types.js';

export function rmsnorm(x: F, w: F, out: F, rstd: F, rows: number, dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += x[o + j] * x[o + j];
    const rs = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = rs;
    for (let j = 0; j < dim; j++) out[o + j] = w[j] * (x[o + j] * rs);
  }
}

/** x̂ = x·rstd; gx = rstd·(g·w − x̂·mean(g·w·x̂)); gw += Σ_rows g·x̂ */
export function rmsnormBackward(x: F, w: F, rstd: F, gy: F, gx: F, gw: F | null, rows: number, dim: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const rs = rstd[r];
    let dot = 0;
    for (let j = 0; j < dim; j++) dot += gy[o + j] * w[j] * x[o + j] * rs;
    dot /= dim;
    for (let j = 0; j < dim; j++) {
      const xh = x[o + j] * rs;
      if (gw) gw[j] += gy[o + j] * xh;
      gx[o + j] = rs * (gy[o + j] * w[j] - xh * dot);
    }
  }
}

export function layernorm(x: F, w: F, b: F, out: F, mean: F, rstd: F, rows: number, dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let mu = 0;
    for (let j = 0; j < dim; j++) mu += x[o + j];
    mu /= dim;
    let v = 0;
    for (let j = 0; j < dim; j++) v += (x[o + j] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / dim + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let j = 0; j < dim; j++) out[o + j] = (x[o + j] - mu) * rs * w[j] + b[j];
  }
}

/** gx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = g·w; gw += Σ g·x̂; gb += Σ g */
export function layernormBackward(x: F, w: F, mean: F, rstd: F, gy: F, gx: F, gw: F | null, gb: F | null, rows: number, dim: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const mu = mean[r], rs = rstd[r];
    let m1 = 0, m2 = 0;
    for (let j = 0; j < dim; j++) {
      const g = gy[o + j] * w[j];
      const xh = (x[o + j] - mu) * rs;
      m1 += g;
      m2 += g * xh;
    }
    m1 /= dim;
    m2 /= dim;
    for (let j = 0; j < dim; j++) {
      const xh = (x[o + j] - mu) * rs;
      if (gw) gw[j] += gy[o + j] * xh;
      if (gb) gb[j] += gy[o + j];
      gx[o + j] = rs * (gy[o + j] * w[j] - m1 - xh * m2);
    }
  }
}
