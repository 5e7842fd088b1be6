/**
 * Causal self-attention with grouped-query heads, a key padding mask, packed-sequence ids and an
 * optional sliding window, as one fused op: only the per-row log-sum-exp is kept for backward,
 * never the (B, H, T, T) probabilities.
 */
import { ShapeError, fmtShape } from '../errors.js';
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { K, sameDType } from './util.js';

export interface AttentionOptions {
  causal?: boolean;
  keyMask?: Uint8Array | null;
  segIds?: Int32Array | null;
  /** With segIds: per token the id of an earlier segment whose keys it also sees (−1 none); see AttentionArgs. */
  segParents?: Int32Array | null;
  window?: number;
  scale?: number;
  /** Gemma 2's attn_logit_softcapping: scores → cap·tanh(scores / cap) before the mask; 0 / absent = none. */
  softcap?: number;
}

/** q (B, T, Hq, D), k/v (B, T, Hkv, D) → (B, T, Hq, D) */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  sameDType('attention', q, k, v);
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) throw new ShapeError('attention', `expects (B, T, H, D) tensors, got q ${fmtShape(q.shape)} k ${fmtShape(k.shape)} v ${fmtShape(v.shape)}`);
  const [B, T, Hq, D] = q.shape;
  const Hkv = k.shape[2];
  if (k.shape[0] !== B || k.shape[1] !== T || k.shape[3] !== D || v.shape.some((d, i) => d !== k.shape[i]) || Hq % Hkv !== 0) {
    throw new ShapeError('attention', `q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)} do not fit (need equal B, T, D and Hq a multiple of Hkv)`);
  }
  const keyMask = opts.keyMask ?? null;
  const segIds = opts.segIds ?? null;
  if (keyMask && keyMask.length !== B * T) throw new ShapeError('attention', `keyMask has ${keyMask.length} entries for B·T = ${B * T}`);
  if (segIds && segIds.length !== B * T) throw new ShapeError('attention', `segIds has ${segIds.length} entries for B·T = ${B * T}`);
  const segParents = opts.segParents ?? null;
  if (segParents && (!segIds || segParents.length !== B * T)) throw new ShapeError('attention', `segParents needs segIds and B·T = ${B * T} entries, got ${segParents.length}`);
  // The window counts packed positions, which a shared prompt's keys are not contiguous with.
  if (segParents && opts.window && opts.window < T) throw new ShapeError('attention', `a sliding window (${opts.window}) cannot be combined with shared-prompt segments (segParents)`);
  if (opts.window !== undefined && !(Number.isInteger(opts.window) && opts.window >= 0)) throw new ShapeError('attention', `window ${opts.window} must be a non-negative integer (0 = unlimited)`);
  if (opts.softcap !== undefined && !(Number.isFinite(opts.softcap) && opts.softcap >= 0)) throw new ShapeError('attention', `softcap ${opts.softcap} must be a non-negative number (0 = none)`);
  const out = Tensor.empty(q.shape, q.dtype);
  const lse = Tensor.empty([B, Hq, T], q.dtype);
  const args = {
    q: q.data, k: k.data, v: v.data, out: out.data, lse: lse.data, B, T, Hq, Hkv, D,
    scale: opts.scale ?? 1 / Math.sqrt(D), causal: opts.causal ?? true, keyMask, segIds, segParents, window: opts.window ?? 0, softcap: opts.softcap ?? 0,
  };
  K(q).attention(args);
  return record('attention', out, [q, k, v], (g) => {
    const gq = Tensor.empty(q.shape, q.dtype);
    const gk = Tensor.empty(k.shape, k.dtype);
    const gv = Tensor.empty(v.shape, v.dtype);
    K(q).attentionBackward({ ...args, gOut: g.data, gq: gq.data, gk: gk.data, gv: gv.data });
    return [gq, gk, gv];
  });
}
