/**
 * One weight-storage abstraction for a frozen (out, in) matrix: float32, bf16, f16, NF4/FP4
 * (bitsandbytes' 4-bit formats, with or without nested quantization of the absmax) and int8
 * (LLM.int8's row-wise absmax format). The linear op (ops/linear-stored.ts) consumes any of them;
 * the GEMM kernels dequantize a tile of rows at a time (dequantizeRows here for the reference
 * backend, native/src/stored-gemm.cc for the native one), so no float32 copy of a layer is kept.
 *
 * Formats (as bitsandbytes stores them):
 * - nf4 / fp4: the row-major weight flattened, blocks of 64 values; per block absmax = max|w|
 *   (float32); code = quantize(w · (1/absmax)) (codes.ts); two codes per byte, the even element in
 *   the high nibble. w ≈ table[code] · absmax.
 * - nested (use_bnb_nested_quant / bnb_4bit_use_double_quant): offset = mean(absmax); the
 *   absmax − offset are quantized blockwise (blocks of 256) with the 8-bit dynamic map:
 *   absmax ≈ DYNAMIC8[q] · absmax2 + offset.
 * - int8: per row SCB = max|w|, CB = round(w · (127/SCB)) (int8); w ≈ CB · SCB · (1/127).
 *
 * @example
 * const s = quantizeWeight(w.data, 4096, 4096, 'nf4', { nested: true });
 * const rows = new Float32Array(2 * 4096); dequantizeRows(s, 0, 2, rows);
 */
import { bf16ToF32, decodeBf16, encodeHalf, f16ToF32 } from '../io/half.js';
import { DpoError } from '../errors.js';
import type { LoadKernels } from '../backend/types.js';
import { DYNAMIC8, FP4, NF4, quantizeDynamic8, quantizeFp4, quantizeNf4 } from './codes.js';
import { loadKernels } from './load-kernels.js';

export type StorageKind = 'f32' | 'bf16' | 'f16' | 'nf4' | 'fp4' | 'int8';
export const STORAGE_KINDS: readonly StorageKind[] = ['f32', 'bf16', 'f16', 'nf4', 'fp4', 'int8'];

/** bitsandbytes' 4-bit block size (Params4bit's default). */
export const BLOCKSIZE_4BIT = 64;
/** Block size of the nested (double) quantization of the 4-bit absmax. */
export const BLOCKSIZE_NESTED = 256;

export interface WeightStorage {
  kind: StorageKind;
  /** (rows, cols) = (out, in) of the linear layer. */
  rows: number;
  cols: number;
  /** f32: values; bf16/f16: bits; nf4/fp4: packed codes (⌈rows·cols/2⌉ bytes); int8: CB. */
  data: Float32Array | Uint16Array | Uint8Array | Int8Array;
  /** nf4/fp4: absmax per block of 64 (absmax2 per 256 blocks when nested); int8: SCB per row. */
  absmax: Float32Array | null;
  /** nf4/fp4 nested: the 8-bit codes of absmax − offset, one per block of 64. */
  qabsmax: Uint8Array | null;
  /** nf4/fp4 nested: the mean subtracted before the nested quantization. */
  offset: number;
}

/** Whether `x` is a stored matrix (not a typed array or tensor). */
export function isStorage(x: unknown): x is WeightStorage {
  return typeof x === 'object' && x !== null && 'kind' in x && 'rows' in x && 'cols' in x && 'absmax' in x;
}

/** Options of quantizeWeight. */
export interface QuantizeOptions {
  /** nf4/fp4: nested quantization of the absmax (use_bnb_nested_quant). */
  nested?: boolean;
}

const f = Math.fround;

/** Wraps float32 values or 16-bit bits (no copy). */
export function plainStorage(kind: 'f32' | 'bf16' | 'f16', data: Float32Array | Uint16Array, rows: number, cols: number): WeightStorage {
  if (data.length !== rows * cols) throw new DpoError(`weight storage: ${data.length} values for a ${rows}×${cols} matrix`);
  if ((kind === 'f32') !== data instanceof Float32Array) throw new DpoError(`weight storage: ${kind} needs ${kind === 'f32' ? 'a Float32Array' : 'Uint16Array bits'}`);
  return { kind, rows, cols, data, absmax: null, qabsmax: null, offset: 0 };
}

/**
 * Stores float32 values `w` (rows × cols) in `kind`: rounded (bf16, f16), quantized (nf4, fp4, int8)
 * or kept (f32). `w` may be a bf16 checkpoint's bits (a Uint16Array), stored as their exact float32
 * values: the native quantizers read the bits directly (no float32 copy of the layer); otherwise
 * they are widened first. Nothing returned refers to `w` except an f32 storage of float32 input.
 */
export function quantizeWeight(w: Float32Array | Uint16Array, rows: number, cols: number, kind: StorageKind, opts: QuantizeOptions = {}): WeightStorage {
  const n = rows * cols;
  if (w.length !== n) throw new DpoError(`weight storage: ${w.length} values for a ${rows}×${cols} matrix`);
  if (w instanceof Uint16Array && !(loadKernels() && (kind === 'nf4' || kind === 'fp4' || kind === 'int8'))) {
    const f32 = new Float32Array(n);
    decodeBf16(w, f32);
    return quantizeWeight(f32, rows, cols, kind, opts);
  }
  switch (kind) {
    case 'f32':
      return plainStorage('f32', w as Float32Array, rows, cols);
    case 'bf16':
    case 'f16': {
      const bits = new Uint16Array(n);
      encodeHalf(kind === 'bf16' ? 'BF16' : 'F16', w as Float32Array, 0, bits);
      return plainStorage(kind, bits, rows, cols);
    }
    case 'nf4':
    case 'fp4': {
      const lk = loadKernels();
      const { packed, absmax } = lk ? native4bit(lk, w, kind) : quantize4bit(w as Float32Array, kind);
      if (!opts.nested) return { kind, rows, cols, data: packed, absmax, qabsmax: null, offset: 0 };
      const nq = lk ? nativeNested(lk, absmax) : quantizeNested(absmax);
      return { kind, rows, cols, data: packed, absmax: nq.absmax2, qabsmax: nq.q, offset: nq.offset };
    }
    case 'int8': {
      const lk = loadKernels();
      const { cb, scb } = lk ? nativeInt8(lk, w, rows, cols) : quantizeInt8Rows(w as Float32Array, rows, cols);
      return { kind, rows, cols, data: cb, absmax: scb, qabsmax: null, offset: 0 };
    }
  }
}

function native4bit(lk: LoadKernels, w: Float32Array | Uint16Array, kind: 'nf4' | 'fp4'): { packed: Uint8Array; absmax: Float32Array } {
  const packed = new Uint8Array(Math.ceil(w.length / 2)), absmax = new Float32Array(Math.ceil(w.length / BLOCKSIZE_4BIT));
  lk.quantize4bit(w, kind, packed, absmax);
  return { packed, absmax };
}

function nativeNested(lk: LoadKernels, absmax: Float32Array): { q: Uint8Array; absmax2: Float32Array; offset: number } {
  const q = new Uint8Array(absmax.length), absmax2 = new Float32Array(Math.ceil(absmax.length / BLOCKSIZE_NESTED));
  return { q, absmax2, offset: lk.quantizeNested(absmax, q, absmax2) };
}

function nativeInt8(lk: LoadKernels, w: Float32Array | Uint16Array, rows: number, cols: number): { cb: Int8Array; scb: Float32Array } {
  const cb = new Int8Array(rows * cols), scb = new Float32Array(rows);
  lk.quantizeInt8Rows(w, rows, cols, cb, scb);
  return { cb, scb };
}

/** Blockwise 4-bit quantization (kQuantizeBlockwise with NF4 / FP4, blocksize 64). */
export function quantize4bit(w: Float32Array, kind: 'nf4' | 'fp4'): { packed: Uint8Array; absmax: Float32Array } {
  const n = w.length, bs = BLOCKSIZE_4BIT;
  const absmax = new Float32Array(Math.ceil(n / bs));
  const packed = new Uint8Array(Math.ceil(n / 2));
  const q = kind === 'nf4' ? quantizeNf4 : quantizeFp4;
  for (let b = 0; b < absmax.length; b++) {
    const s = b * bs, e = Math.min(n, s + bs);
    let m = 0;
    for (let i = s; i < e; i++) m = Math.max(m, Math.abs(w[i]));
    absmax[b] = m;
    const inv = f(1 / m);
    for (let i = s; i < e; i++) {
      const code = q(f(w[i] * inv));
      packed[i >> 1] |= i & 1 ? code : code << 4;
    }
  }
  return { packed, absmax };
}

/** Nested quantization of absmax: offset = mean, then 8-bit dynamic blockwise (blocksize 256). */
export function quantizeNested(absmax: Float32Array): { q: Uint8Array; absmax2: Float32Array; offset: number } {
  let sum = 0;
  for (let i = 0; i < absmax.length; i++) sum += absmax[i];
  // torch's float32 mean; here the float64 mean rounded to float32 (at most an ulp apart).
  const offset = f(sum / absmax.length);
  const n = absmax.length, bs = BLOCKSIZE_NESTED;
  const q = new Uint8Array(n);
  const absmax2 = new Float32Array(Math.ceil(n / bs));
  const centred = new Float32Array(bs);
  for (let b = 0; b < absmax2.length; b++) {
    const s = b * bs, e = Math.min(n, s + bs);
    let m = 0;
    for (let i = s; i < e; i++) {
      centred[i - s] = f(absmax[i] - offset);
      m = Math.max(m, Math.abs(centred[i - s]));
    }
    absmax2[b] = m;
    const inv = f(1 / m);
    for (let i = s; i < e; i++) q[i] = quantizeDynamic8(f(centred[i - s] * inv));
  }
  return { q, absmax2, offset };
}

/** LLM.int8's row-wise absmax quantization of a weight: CB = round(w · 127/SCB), SCB = max|row|. */
export function quantizeInt8Rows(w: Float32Array, rows: number, cols: number): { cb: Int8Array; scb: Float32Array } {
  const cb = new Int8Array(rows * cols);
  const scb = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let m = 0;
    for (let j = 0; j < cols; j++) m = Math.max(m, Math.abs(w[o + j]));
    scb[r] = m;
    const s = f(127 / m);
    for (let j = 0; j < cols; j++) cb[o + j] = roundHalfEven(f(w[o + j] * s));
  }
  return { cb, scb };
}

function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return 0;
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The float32 absmax of 4-bit block b (nested ones dequantized: DYNAMIC8[q]·absmax2 + offset). */
export function blockAbsmax(s: WeightStorage, b: number): number {
  if (!s.qabsmax) return s.absmax![b];
  return f(f(DYNAMIC8[s.qabsmax[b]] * s.absmax![Math.floor(b / BLOCKSIZE_NESTED)]) + s.offset);
}

/** Rows [r0, r1) of the matrix as float32 values into out ((r1 − r0) × cols). */
export function dequantizeRows(s: WeightStorage, r0: number, r1: number, out: Float32Array): void {
  const c = s.cols, i0 = r0 * c, i1 = r1 * c;
  switch (s.kind) {
    case 'f32':
      out.set((s.data as Float32Array).subarray(i0, i1));
      return;
    case 'bf16':
    case 'f16': {
      const bits = s.data as Uint16Array, dec = s.kind === 'bf16' ? bf16ToF32 : f16ToF32;
      for (let i = i0; i < i1; i++) out[i - i0] = dec(bits[i]);
      return;
    }
    case 'nf4':
    case 'fp4': {
      const table = s.kind === 'nf4' ? NF4 : FP4, p = s.data as Uint8Array;
      let block = -1, am = 0;
      for (let i = i0; i < i1; i++) {
        const b = Math.floor(i / BLOCKSIZE_4BIT);
        if (b !== block) {
          block = b;
          am = blockAbsmax(s, b);
        }
        const code = i & 1 ? p[i >> 1] & 15 : p[i >> 1] >> 4;
        out[i - i0] = f(table[code] * am);
      }
      return;
    }
    case 'int8': {
      const cb = s.data as Int8Array, scb = s.absmax!;
      const inv = f(1 / 127);
      for (let r = r0; r < r1; r++) {
        const sc = scb[r];
        for (let j = 0; j < c; j++) out[(r - r0) * c + j] = f(f(cb[r * c + j] * sc) * inv);
      }
      return;
    }
  }
}

/** The whole matrix as float32 (for merging or exporting; never on the training path). */
export function toFloat32(s: WeightStorage): Float32Array {
  if (s.kind === 'f32') return s.data as Float32Array;
  const out = new Float32Array(s.rows * s.cols);
  dequantizeRows(s, 0, s.rows, out);
  return out;
}

/** Bytes the stored form takes. */
export function storageBytes(s: WeightStorage): number {
  return s.data.byteLength + (s.absmax?.byteLength ?? 0) + (s.qabsmax?.byteLength ?? 0);
}

/** Bytes per weight of a (rows × cols) matrix in `kind`, for estimates before anything is loaded. */
export function bytesPerWeight(kind: StorageKind, cols: number, nested = false): number {
  switch (kind) {
    case 'f32':
      return 4;
    case 'bf16':
    case 'f16':
      return 2;
    case 'int8':
      return 1 + 4 / cols;
    default:
      return 0.5 + (nested ? 1 / BLOCKSIZE_4BIT + 4 / (BLOCKSIZE_4BIT * BLOCKSIZE_NESTED) : 4 / BLOCKSIZE_4BIT);
  }
}
