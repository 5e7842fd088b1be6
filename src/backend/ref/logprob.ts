/**
 * Fused lm_head + log_softmax + gather over vocabulary chunks: logits = h·wᵀ are produced `chunk`
 * columns at a time, with an online max / log-sum-exp (and entropy, logit sum, argmax) per row, so
 * at most N·chunk logits exist. Backward recomputes each chunk: dlogits = g·(onehot − softmax).
 * Optionally the forward also gives softmax·w (the expected output embedding), from which a frozen
 * lm_head's backward for h needs no vocabulary pass. A stored (frozen) lm_head is dequantized one
 * chunk of rows at a time into an array of h's type, so it multiplies as its float32 values would.
 */
import type { F, TokenLogprobArgs, TokenLogprobBackwardArgs } from '../types.js';
import { dequantizeRows, isStorage, type WeightStorage } from '../../quant/storage.js';
import { matmul } from './matmul.js';

/** Rows [v0, v0 + n) of the lm_head (V, C): a view of w's values, or a stored w's rows as values of h's type. */
function headRows(h: F, w: F | WeightStorage, v0: number, n: number, C: number): F {
  if (!isStorage(w)) return w.subarray(v0 * C, (v0 + n) * C);
  const rows = new Float32Array(n * C);
  dequantizeRows(w, v0, v0 + n, rows);
  return h instanceof Float64Array ? Float64Array.from(rows) : rows;
}

/** buf (N, n) = h·wcᵀ for the chunk's rows wc (n, C), soft-capped (cap·tanh(l / cap)) when cap > 0. */
function chunkLogits(h: F, wc: F, buf: Float64Array, N: number, C: number, n: number, cap: number): void {
  matmul({ a: h, b: wc, c: buf, batch: 1, m: N, n, k: C, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
  if (cap > 0) for (let i = 0; i < N * n; i++) buf[i] = cap * Math.tanh(buf[i] / cap);
}

function checkSoftcap(cap: number, expected: boolean): void {
  if (!(cap >= 0 && Number.isFinite(cap))) throw new Error(`tokenLogprobs: softcap ${cap} must be a finite number ≥ 0`);
  if (cap > 0 && expected) throw new Error('tokenLogprobs: the expected embedding is not computed with a softcap');
}

export function tokenLogprobs(p: TokenLogprobArgs): void {
  const { h, w, targets, N, C, V, logp, lse, entropy, logitSum, argmax, lse2 } = p;
  const expected = p.expected ?? null;
  const cap = p.softcap ?? 0;
  checkSoftcap(cap, !!expected);
  const E = expected ? new Float64Array(N * C) : null; // Σ_v exp(l_v − m)·w_v, rescaled with m
  const chunk = Math.max(1, Math.min(p.chunk, V));
  const buf = new Float64Array(N * chunk);
  const m = new Float64Array(N).fill(-Infinity);
  const s = new Float64Array(N);
  const e = new Float64Array(N);
  const s2 = new Float64Array(N);
  const sum = new Float64Array(N);
  const tgt = new Float64Array(N);
  const best = new Int32Array(N);
  const nanAt = new Int32Array(N).fill(-1); // first NaN logit per row: torch's argmax treats NaN as the max
  for (let v0 = 0; v0 < V; v0 += chunk) {
    const n = Math.min(chunk, V - v0);
    const wc = headRows(h, w, v0, n, C);
    chunkLogits(h, wc, buf, N, C, n, cap);
    for (let r = 0; r < N; r++) {
      const row = r * n;
      let cm = -Infinity;
      for (let j = 0; j < n; j++) {
        const l = buf[row + j];
        if (l !== l && nanAt[r] < 0) nanAt[r] = v0 + j;
        if (l > cm) cm = l;
        sum[r] += l;
      }
      // First index of the chunk max; it becomes the argmax only if strictly greater than the old max.
      if (cm > m[r]) {
        for (let j = 0; j < n; j++) if (buf[row + j] === cm) { best[r] = v0 + j; break; }
        const scale = Math.exp(m[r] - cm);
        s[r] *= scale;
        e[r] *= scale;
        s2[r] *= scale * scale;
        if (E) for (let c = 0; c < C; c++) E[r * C + c] *= scale;
        m[r] = cm;
      }
      const mr = m[r];
      for (let j = 0; j < n; j++) {
        const l = buf[row + j];
        const x = Math.exp(l - mr);
        s[r] += x;
        e[r] += x * l;
        s2[r] += x * x;
        if (E) for (let c = 0; c < C; c++) E[r * C + c] += x * wc[j * C + c];
      }
      const t = targets[r];
      if (t >= v0 && t < v0 + n) tgt[r] = buf[row + (t - v0)];
    }
  }
  for (let r = 0; r < N; r++) {
    const nan = nanAt[r] >= 0;
    const L = nan ? NaN : m[r] + Math.log(s[r]);
    lse[r] = L;
    logp[r] = targets[r] < 0 ? 0 : tgt[r] - L;
    if (entropy) entropy[r] = L - e[r] / s[r];
    if (logitSum) logitSum[r] = sum[r];
    if (argmax) argmax[r] = nan ? nanAt[r] : best[r];
    if (lse2) lse2[r] = nan ? NaN : 2 * m[r] + Math.log(s2[r]);
    if (expected && E) for (let c = 0; c < C; c++) expected[r * C + c] = nan ? NaN : E[r * C + c] / s[r];
  }
}

export function tokenLogprobsBackward(p: TokenLogprobBackwardArgs): void {
  const { h, w, targets, N, C, V, lse, gLogp, gh, gw } = p;
  const cap = p.softcap ?? 0;
  checkSoftcap(cap, false);
  if (gw && isStorage(w)) throw new Error('tokenLogprobsBackward: a stored lm_head is frozen; it has no gradient');
  const chunk = Math.max(1, Math.min(p.chunk, V));
  const buf = new Float64Array(N * chunk);
  if (gh) gh.fill(0);
  for (let v0 = 0; v0 < V; v0 += chunk) {
    const n = Math.min(chunk, V - v0);
    const wc = headRows(h, w, v0, n, C);
    chunkLogits(h, wc, buf, N, C, n, cap);
    for (let r = 0; r < N; r++) {
      const row = r * n;
      const t = targets[r];
      if (t < 0) {
        buf.fill(0, row, row + n);
        continue;
      }
      const g = gLogp[r];
      // d/dl of cap·tanh(l / cap) is 1 − (l' / cap)², l' the capped logit
      for (let j = 0; j < n; j++) {
        const l = buf[row + j];
        buf[row + j] = (-g * Math.exp(l - lse[r]) + (v0 + j === t ? g : 0)) * (cap > 0 ? 1 - (l / cap) ** 2 : 1);
      }
    }
    // gh (N, C) += dl (N, n) · w_chunk (n, C)
    if (gh) matmul({ a: buf, b: wc, c: gh, batch: 1, m: N, n: C, k: n, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 1 });
    // gw_chunk (n, C) = dlᵀ (n, N) · h (N, C)
    if (gw) matmul({ a: buf, b: h, c: gw.subarray(v0 * C, (v0 + n) * C), batch: 1, m: n, n: C, k: N, transA: true, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: p.accumulateGw ? 1 : 0 });
  }
}
