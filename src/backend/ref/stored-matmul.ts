/**
 * GEMM with a stored frozen weight (see StoredMatmulArgs): W is dequantized a tile of rows at a
 * time (quant/storage.ts dequantizeRows, the same float32 values the native kernel makes) and
 * multiplied in float64. bf16 storage is a bf16 GEMM (A rounded to bf16); under bf16 precision
 * float32 operands are rounded too, as `matmul` does. `widen`: bf16 storage as the float32 values it
 * widens to (rounded only under bf16 precision, as the other kinds).
 */
import type { StoredMatmulArgs } from '../types.js';
import { bf16ToF32, f32ToBf16 } from '../../io/half.js';
import { dequantizeRows } from '../../quant/storage.js';
import { matmulPrecision } from './matmul.js';

const TILE_VALUES = 1 << 16;

export function storedMatmul(p: StoredMatmulArgs): void {
  const { a, w, c, m, xWt, beta } = p;
  const R = w.rows, K = w.cols;
  const round = (w.kind === 'bf16' && !p.widen) || (matmulPrecision() === 'bfloat16' && a instanceof Float32Array);
  const r = (x: number) => (round ? bf16ToF32(f32ToBf16(x)) : x);
  const ar = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) ar[i] = r(a[i]);
  const tile = Math.max(1, Math.min(R, Math.floor(TILE_VALUES / Math.max(K, 1))));
  const buf = new Float32Array(tile * K);
  // gW sums over every tile: float64 accumulators, written once.
  const acc = xWt ? null : new Float64Array(m * K);
  for (let r0 = 0; r0 < R; r0 += tile) {
    const nt = Math.min(tile, R - r0);
    dequantizeRows(w, r0, r0 + nt, buf);
    if (round) for (let i = 0; i < nt * K; i++) buf[i] = r(buf[i]);
    if (xWt) {
      // C[i, r0 + t] = Σ_k A[i, k]·W[r0 + t, k]
      for (let i = 0; i < m; i++) {
        for (let t = 0; t < nt; t++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += ar[i * K + k] * buf[t * K + k];
          const o = i * R + r0 + t;
          c[o] = beta === 0 ? s : s + beta * c[o];
        }
      }
    } else {
      // acc[i, :] += Σ_t A[i, r0 + t]·W[r0 + t, :]
      for (let i = 0; i < m; i++) {
        for (let t = 0; t < nt; t++) {
          const av = ar[i * R + r0 + t];
          for (let k = 0; k < K; k++) acc![i * K + k] += av * buf[t * K + k];
        }
      }
    }
  }
  if (acc) for (let i = 0; i < m * K; i++) c[i] = beta === 0 ? acc[i] : acc[i] + beta * c[i];
}
