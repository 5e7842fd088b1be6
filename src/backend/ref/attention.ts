/**
 * Scaled dot-product attention, flash style: per (b, head, query) the allowed scores, their
 * log-sum-exp (saved), and the weighted sum of values; backward recomputes p = exp(s − lse).
 * Layout q (B, T, Hq, D), k/v (B, T, Hkv, D); query head h reads kv head ⌊h / (Hq/Hkv)⌋.
 */
import type { AttentionArgs, AttentionBackwardArgs } from '../types.js';

/** Whether query t may attend key j in batch row b. */
export function allowed(p: AttentionArgs, b: number, t: number, j: number): boolean {
  if (p.causal && j > t) return false;
  if (p.window > 0 && j <= t - p.window) return false;
  if (p.keyMask && !p.keyMask[b * p.T + j]) return false;
  if (p.segIds) {
    const sj = p.segIds[b * p.T + j];
    if (sj !== p.segIds[b * p.T + t] && !(p.segParents && p.segParents[b * p.T + t] === sj)) return false;
  }
  return true;
}

/** The score of a (query, key) pair from their dot product: scaled, then soft-capped when asked. */
export function score(p: AttentionArgs, dot: number): number {
  const s = dot * p.scale;
  return p.softcap ? p.softcap * Math.tanh(s / p.softcap) : s;
}

export function attention(p: AttentionArgs): void {
  const { q, k, v, out, lse, B, T, Hq, Hkv, D } = p;
  const group = Hq / Hkv;
  const s = new Float64Array(T);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * Hq + h) * D;
        let m = -Infinity;
        let nan = false;
        for (let j = 0; j < T; j++) {
          if (!allowed(p, b, t, j)) {
            s[j] = -Infinity;
            continue;
          }
          const ko = ((b * T + j) * Hkv + kh) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
          s[j] = score(p, dot);
          if (s[j] !== s[j]) nan = true;
          if (s[j] > m) m = s[j];
        }
        acc.fill(0);
        if (m === -Infinity && !nan) {
          // No key allowed: output 0, lse −∞, no gradient.
          lse[(b * Hq + h) * T + t] = -Infinity;
          for (let d = 0; d < D; d++) out[qo + d] = 0;
          continue;
        }
        if (nan) m = NaN;
        let sum = 0;
        for (let j = 0; j < T; j++) {
          if (s[j] === -Infinity) continue;
          const w = Math.exp(s[j] - m);
          sum += w;
          const vo = ((b * T + j) * Hkv + kh) * D;
          for (let d = 0; d < D; d++) acc[d] += w * v[vo + d];
        }
        lse[(b * Hq + h) * T + t] = m + Math.log(sum);
        for (let d = 0; d < D; d++) out[qo + d] = acc[d] / sum;
      }
    }
  }
}

/**
 * dP = dO·Vᵀ; Di = Σ dO·O; dS = P·(dP − Di); dQ = scale·dS·K; dK += scale·dSᵀ·Q; dV += Pᵀ·dO. With
 * soft-capping s = c·tanh(u / c), ds/du = 1 − (s / c)², which multiplies dS.
 */
export function attentionBackward(p: AttentionBackwardArgs): void {
  const { q, k, v, out, lse, gOut, gq, gk, gv, B, T, Hq, Hkv, D, scale } = p;
  const group = Hq / Hkv;
  gq.fill(0);
  gk.fill(0);
  gv.fill(0);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const L = lse[(b * Hq + h) * T + t];
        if (L === -Infinity) continue;
        const qo = ((b * T + t) * Hq + h) * D;
        let di = 0;
        for (let d = 0; d < D; d++) di += gOut[qo + d] * out[qo + d];
        for (let j = 0; j < T; j++) {
          if (!allowed(p, b, t, j)) continue;
          const ko = ((b * T + j) * Hkv + kh) * D;
          let dot = 0, dp = 0;
          for (let d = 0; d < D; d++) {
            dot += q[qo + d] * k[ko + d];
            dp += gOut[qo + d] * v[ko + d];
          }
          const s = score(p, dot);
          const pr = Math.exp(s - L);
          const ds = pr * (dp - di) * (p.softcap ? 1 - (s / p.softcap) ** 2 : 1);
          for (let d = 0; d < D; d++) {
            gq[qo + d] += scale * ds * k[ko + d];
            gk[ko + d] += scale * ds * q[qo + d];
            gv[ko + d] += pr * gOut[qo + d];
          }
        }
      }
    }
  }
}
