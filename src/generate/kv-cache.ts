import { assertNoGrad } from '../autograd/tape.js';
import { DpoError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';

/**
 * A key/value cache for `batch` sequences of equal length (all rows advance together: several
 * samples of one prompt) and the attention of new queries against it. Decoding adds one query per
 * row at a time, so this small loop kernel (no autograd) is all generation needs.
 */
export class KVCache {
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  /** Tokens stored so far (in every row). */
  len = 0;
  constructor(readonly layers: number, readonly maxLen: number, readonly heads: number, readonly dim: number, readonly batch = 1) {
    this.k = Array.from({ length: layers }, () => new Float32Array(batch * maxLen * heads * dim));
    this.v = Array.from({ length: layers }, () => new Float32Array(batch * maxLen * heads * dim));
  }

  /** Floats one row holds per layer. */
  get rowSize(): number {
    return this.maxLen * this.heads * this.dim;
  }

  /** Copies row 0's tokens into every other row (a prompt prefilled once, then sampled `batch` times). */
  replicateFirstRow(): void {
    const n = this.len * this.heads * this.dim, R = this.rowSize;
    for (const buf of [...this.k, ...this.v]) for (let b = 1; b < this.batch; b++) buf.copyWithin(b * R, 0, n);
  }
}

/**
 * q (Tn, Hq, D) for positions len..len+Tn−1 whose k/v were already appended to the cache at those
 * positions; causal over the cache (and a sliding window when set). Returns (Tn, Hq, D). The
 * score scale (1/√D unless given) and soft-cap are the fused attention's (AttentionOptions).
 */
export function cachedAttention(q: Float32Array, kc: Float32Array, vc: Float32Array, start: number, Tn: number, Hq: number, Hkv: number, D: number, window: number, opts: CachedAttentionOptions = {}): Float32Array {
  const out = new Float32Array(Tn * Hq * D);
  const group = Hq / Hkv;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const cap = opts.softcap ?? 0;
  const s = new Float64Array(start + Tn);
  for (let t = 0; t < Tn; t++) {
    const pos = start + t;
    const lo = window > 0 ? Math.max(0, pos - window + 1) : 0;
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / group);
      const qo = (t * Hq + h) * D;
      let m = -Infinity;
      for (let j = lo; j <= pos; j++) {
        const ko = (j * Hkv + kh) * D;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[qo + d] * kc[ko + d];
        s[j] = cap ? cap * Math.tanh((dot * scale) / cap) : dot * scale;
        if (s[j] > m) m = s[j];
      }
      let sum = 0;
      for (let j = lo; j <= pos; j++) sum += s[j] = Math.exp(s[j] - m);
      for (let j = lo; j <= pos; j++) {
        const w = s[j] / sum;
        const vo = (j * Hkv + kh) * D;
        for (let d = 0; d < D; d++) out[qo + d] += w * vc[vo + d];
      }
    }
  }
  return out;
}

/** Score scale (default 1/√D) and Gemma 2's attention soft-cap (0 / absent = none). */
export interface CachedAttentionOptions {
  scale?: number;
  softcap?: number;
}

/**
 * Appends k/v (1, Tn, Hkv, D) of `layer` at the cache's current length and attends q (1, Tn, Hq, D)
 * over everything cached. The caller advances `cache.len` once all layers ran.
 */
export function appendAndAttend(cache: KVCache, layer: number, q: Tensor, k: Tensor, v: Tensor, window: number, opts: CachedAttentionOptions = {}): Tensor {
  assertNoGrad('cachedAttention', [q, k, v]);
  const [B, Tn, Hq, D] = q.shape;
  const Hkv = k.shape[2];
  // B < cache.batch: rows 0..B−1 only (a prompt prefilled once in row 0, see replicateFirstRow).
  if (B > cache.batch) throw new DpoError(`generation with a KV cache of ${cache.batch} rows got a batch of ${B}`);
  if (cache.len + Tn > cache.maxLen) throw new DpoError(`generation exceeds the cache of ${cache.maxLen} tokens`);
  const R = cache.rowSize, kvRow = Tn * Hkv * D, qRow = Tn * Hq * D;
  const kd = k.data as Float32Array, vd = v.data as Float32Array, qd = q.data as Float32Array;
  const out = new Float32Array(B * qRow);
  for (let b = 0; b < B; b++) {
    const kc = cache.k[layer].subarray(b * R, (b + 1) * R), vc = cache.v[layer].subarray(b * R, (b + 1) * R);
    kc.set(kd.subarray(b * kvRow, (b + 1) * kvRow), cache.len * Hkv * D);
    vc.set(vd.subarray(b * kvRow, (b + 1) * kvRow), cache.len * Hkv * D);
    out.set(cachedAttention(qd.subarray(b * qRow, (b + 1) * qRow), kc, vc, cache.len, Tn, Hq, Hkv, D, window, opts), b * qRow);
  }
  return Tensor.from(out, [B, Tn, Hq, D]);
}
