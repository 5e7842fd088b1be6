/**
 * The per-sequence inputs of the DPO losses from per-token quantities, in TRL's dense layout:
 * rows = 2B ([chosen; rejected]), the SHIFTED completion mask (rows, T−1) = completion_mask[:, 1:],
 * position t scoring token t+1. Pure functions on plain arrays; the trainer's fused path
 * (logps.ts) computes the same numbers on compacted tokens.
 */

/** completion_mask[:, 1:] as (rows, T−1). */
export function shiftMask(completionMask: ArrayLike<number>, rows: number, T: number): Uint8Array {
  const out = new Uint8Array(rows * (T - 1));
  for (let r = 0; r < rows; r++) for (let t = 1; t < T; t++) out[r * (T - 1) + t - 1] = completionMask[r * T + t] ? 1 : 0;
  return out;
}

/** Σ_t mask[r, t] per row (use the UNSHIFTED mask for ipo / sigmoid_norm lengths). */
export function rowCounts(mask: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) for (let t = 0; t < cols; t++) out[r] += mask[r * cols + t] ? 1 : 0;
  return out;
}

/**
 * Weights of each scored token in its row's sum (rows, cols) over the shifted mask: 1 on completion
 * tokens, 0 elsewhere; with LD-DPO (ldAlpha ≠ null) the k-th completion token of a row (k from 1)
 * weighs 1 while k ≤ min(n_chosen, n_rejected) of its pair and ldAlpha after (the verbose tail).
 */
export function ldAlphaTokenWeights(shifted: ArrayLike<number>, rows: number, cols: number, ldAlpha: number | null): Float64Array {
  const w = new Float64Array(rows * cols);
  const n = rowCounts(shifted, rows, cols);
  const B = rows / 2;
  for (let r = 0; r < rows; r++) {
    const shared = Math.min(n[r % B], n[(r % B) + B]);
    let k = 0;
    for (let t = 0; t < cols; t++) {
      if (!shifted[r * cols + t]) continue;
      k++;
      w[r * cols + t] = ldAlpha === null || k <= shared ? 1 : ldAlpha;
    }
  }
  return w;
}

/**
 * WPO's per-row statistic: mean over the row's scored completion tokens of
 * logp_t − (lse(2·z_t) − 2·lse(z_t)), z_t the policy's logits at t; the row count is clamped ≥ 1.
 * Pair weight = exp(stat_chosen)·exp(stat_rejected) (wpoPairWeights), with no gradient.
 */
export function wpoMeanLogps(tokenLogps: ArrayLike<number>, lse: ArrayLike<number>, lse2: ArrayLike<number>, shifted: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0, n = 0;
    for (let t = 0; t < cols; t++) {
      const i = r * cols + t;
      if (!shifted[i]) continue;
      s += tokenLogps[i] - (lse2[i] - 2 * lse[i]);
      n++;
    }
    out[r] = s / Math.max(n, 1);
  }
  return out;
}
