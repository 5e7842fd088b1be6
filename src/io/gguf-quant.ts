/**
 * float32 → the bytes of a ggml tensor type, bit for bit as gguf-py / ggml write them:
 * F16 and BF16 round to nearest even (BF16 keeps NaNs quiet, as ggml_compute_fp32_to_bf16);
 * Q8_0 is quantize_row_q8_0_ref: blocks of 32 values, d = amax / 127 stored as f16, q = round(x / d)
 * half away from zero, every step in float32.
 */
import { f32ToF16 } from './half.js';
import type { GgmlType } from './gguf.js';

const QK8_0 = 32;

export function encodeTensor(src: Float32Array, type: GgmlType): Uint8Array {
  switch (type) {
    case 'F32':
      return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    case 'F16': {
      const out = new Uint16Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = f32ToF16(src[i]);
      return new Uint8Array(out.buffer);
    }
    case 'BF16':
      return new Uint8Array(bf16Bits(src).buffer);
    case 'Q8_0':
      return quantizeQ8_0(src);
  }
}

/** ggml_compute_fp32_to_bf16: NaN → quiet NaN, else round to nearest even. */
function bf16Bits(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < u.length; i++) {
    const n = u[i];
    out[i] = (n & 0x7fffffff) > 0x7f800000 ? ((n >>> 16) | 64) & 0xffff : ((n + (0x7fff + ((n >>> 16) & 1))) / 65536) & 0xffff;
  }
  return out;
}

/** Blocks of 34 bytes: f16 scale, then 32 int8 quants. src.length must be a multiple of 32. */
export function quantizeQ8_0(src: Float32Array): Uint8Array {
  if (src.length % QK8_0 !== 0) throw new Error(`Q8_0 needs a multiple of ${QK8_0} values, got ${src.length}`);
  const nb = src.length / QK8_0;
  const out = new Uint8Array(nb * 34);
  const view = new DataView(out.buffer);
  const fr = Math.fround;
  for (let b = 0; b < nb; b++) {
    const o = b * QK8_0;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) amax = Math.max(amax, Math.abs(src[o + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(b * 34, f32ToF16(d), true);
    for (let j = 0; j < QK8_0; j++) {
      const x = fr(src[o + j] * id);
      // roundf: half away from zero
      const q = Math.sign(x) * Math.floor(Math.abs(x) + 0.5);
      view.setInt8(b * 34 + 2 + j, q);
    }
  }
  return out;
}

/** The inverse (for tests and tolerance estimates): x = d · q per block. */
export function dequantizeQ8_0(bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < n / QK8_0; b++) {
    const d = halfAt(view, b * 34);
    for (let j = 0; j < QK8_0; j++) out[b * QK8_0 + j] = d * view.getInt8(b * 34 + 2 + j);
  }
  return out;
}

function halfAt(view: DataView, at: number): number {
  const h = view.getUint16(at, true);
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
