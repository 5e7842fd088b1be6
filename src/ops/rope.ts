/** Rotary position embedding (HF rotate_half convention) and its cos/sin tables. */
import { ShapeError, fmtShape } from '../errors.js';
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { K } from './util.js';

const f32 = Math.fround;

export interface Llama3Scaling {
  type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/**
 * inv_freq exactly as transformers computes it, every step rounded to float32 like torch's float32
 * tensors: `1.0 / (base ** (arange(0, dim, 2) / dim))`, then llama3's wavelength-dependent scaling
 * (_compute_llama3_parameters). torch evaluates `scalar / t` as `t.reciprocal() * scalar`, and
 * casts Python scalars to float32 inside each op; both are mirrored so the bits match.
 */
export function invFreq(headDim: number, theta: number, scaling: Llama3Scaling | null = null): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = f32(1 / f32(f32(theta) ** f32((2 * i) / headDim)));
  if (!scaling) return inv;
  const { factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: old } = scaling;
  const fac = f32(factor);
  const loWave = f32(old / lo), hiWave = f32(old / hi);
  for (let i = 0; i < half; i++) {
    const wavelen = f32(f32(1 / inv[i]) * f32(2 * Math.PI));
    const llama = wavelen > loWave ? f32(inv[i] / fac) : inv[i];
    // smooth = (old / wavelen − lo) / (hi − lo); smoothed = (1 − smooth)·llama / factor + smooth·llama
    const smooth = f32(f32(f32(f32(1 / wavelen) * f32(old)) - f32(lo)) / f32(hi - lo));
    const smoothed = f32(f32(f32(f32(1 - smooth) * llama) / fac) + f32(smooth * llama));
    const medium = !(wavelen < hiWave) && !(wavelen > loWave);
    inv[i] = medium ? smoothed : llama;
  }
  return inv;
}

/**
 * cos/sin tables (maxPos, 2·inv.length) from inverse frequencies, as a transformers RotaryEmbedding's
 * forward makes them: freqs = p·inv_freq in float32, emb = cat(freqs, freqs), cos = emb.cos()·scaling
 * (yarn's / longrope's attention scaling; 1 leaves the tables unscaled).
 */
export function ropeTablesFrom(inv: ArrayLike<number>, maxPos: number, attentionScaling = 1, dtype: 'float32' | 'float64' = 'float32'): { cos: Tensor; sin: Tensor } {
  const half = inv.length, dim = 2 * half;
  const sc = f32(attentionScaling);
  const cos = Tensor.empty([maxPos, dim], dtype);
  const sin = Tensor.empty([maxPos, dim], dtype);
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < half; i++) {
      const a = f32(p * inv[i]);
      const c = sc === 1 ? Math.cos(a) : f32(f32(Math.cos(a)) * sc), s = sc === 1 ? Math.sin(a) : f32(f32(Math.sin(a)) * sc);
      cos.data[p * dim + i] = c;
      cos.data[p * dim + i + half] = c;
      sin.data[p * dim + i] = s;
      sin.data[p * dim + i + half] = s;
    }
  }
  return { cos, sin };
}

/**
 * x (B, T, H, D) rotated at positions pos (B·T) by tables (maxPos, R): the first R dims of each head
 * (R = D, or less for partial rotary as Phi-3's apply_rotary_pos_emb), the rest passed through.
 * Backward is the transposed rotation (the inverse one when the tables carry no attention scaling).
 */
export function rope(x: Tensor, cos: Tensor, sin: Tensor, pos: Int32Array): Tensor {
  if (x.ndim !== 4) throw new ShapeError('rope', `x must be (B, T, H, D), got ${fmtShape(x.shape)}`);
  const [B, T, H, D] = x.shape;
  const R = cos.ndim === 2 ? cos.shape[1] : -1;
  if (R === D && D % 2 !== 0) throw new ShapeError('rope', `head dim ${D} of x ${fmtShape(x.shape)} must be even`);
  if (cos.ndim !== 2 || R > D || R % 2 !== 0 || R === 0 || sin.ndim !== 2 || sin.shape[0] !== cos.shape[0] || sin.shape[1] !== R) {
    throw new ShapeError('rope', `tables cos ${fmtShape(cos.shape)}, sin ${fmtShape(sin.shape)} do not match head dim ${D} of x ${fmtShape(x.shape)} (need equal (maxPos, R) tables, R even and at most ${D})`);
  }
  if (pos.length !== B * T) throw new ShapeError('rope', `${pos.length} positions for ${B}×${T} tokens`);
  for (let i = 0; i < pos.length; i++) if (pos[i] < 0 || pos[i] >= cos.shape[0]) throw new ShapeError('rope', `position ${pos[i]} outside the table of ${cos.shape[0]}`);
  const c = cos.dtype === x.dtype ? cos : Tensor.from(cos.data, cos.shape, x.dtype);
  const s = sin.dtype === x.dtype ? sin : Tensor.from(sin.data, sin.shape, x.dtype);
  const out = Tensor.empty(x.shape, x.dtype);
  K(x).rope(x.data, out.data, c.data, s.data, pos, B * T, H, D, false, R);
  return record('rope', out, [x], (g) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    K(x).rope(g.data, gx.data, c.data, s.data, pos, B * T, H, D, true, R);
    return [gx];
  });
}
