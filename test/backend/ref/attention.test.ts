/**
 * Fused attention against a naive full-matrix implementation written here (causal + GQA + keyMask +
 * segIds + window), and its backward against finite differences of that naive forward.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels as K } from '../../../src/backend/ref/index.js';
import type { AttentionArgs, Idx, Mask } from '../../../src/backend/types.js';
import { Rng } from '../../../src/tensor/rng.js';
import { close, dot, numericGrad, rand } from './util.js';

interface Cfg { B: number; T: number; Hq: number; Hkv: number; D: number; causal: boolean; keyMask: Mask | null; segIds: Idx | null; window: number }

/** Scores (B, Hq, T, T) with −∞ where masked, row softmax, P·V. Returns out (B, T, Hq, D) and lse (B, Hq, T). */
function naive(q: Float64Array, k: Float64Array, v: Float64Array, c: Cfg, scale: number): { out: Float64Array; lse: Float64Array } {
  const { B, T, Hq, Hkv, D } = c;
  const out = new Float64Array(B * T * Hq * D), lse = new Float64Array(B * Hq * T);
  const S = new Float64Array(T * T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor((h * Hkv) / Hq);
      for (let t = 0; t < T; t++)
        for (let j = 0; j < T; j++) {
          const ok = (!c.causal || j <= t) && (!c.keyMask || c.keyMask[b * T + j] === 1) && (!c.segIds || c.segIds[b * T + j] === c.segIds[b * T + t]) && (c.window === 0 || j > t - c.window);
          let s = 0;
          for (let d = 0; d < D; d++) s += q[((b * T + t) * Hq + h) * D + d] * k[((b * T + j) * Hkv + kh) * D + d];
          S[t * T + j] = ok ? s * scale : -Infinity;
        }
      for (let t = 0; t < T; t++) {
        const row = S.subarray(t * T, t * T + T);
        const m = Math.max(...row);
        if (m === -Infinity) {
          lse[(b * Hq + h) * T + t] = -Infinity; // no key allowed: out stays 0
          continue;
        }
        const e = row.map((s) => Math.exp(s - m));
        const z = e.reduce((x, y) => x + y, 0);
        lse[(b * Hq + h) * T + t] = m + Math.log(z);
        for (let j = 0; j < T; j++)
          for (let d = 0; d < D; d++) out[((b * T + t) * Hq + h) * D + d] += (e[j] / z) * v[((b * T + j) * Hkv + kh) * D + d];
      }
    }
  return { out, lse };
}

function configs(): Cfg[] {
  const B = 2, T = 7;
  // Row 1 is left-padded (keys 0, 1 invalid), so with causal its queries 0 and 1 see no key at all.
  const keyMask = Uint8Array.from({ length: B * T }, (_, i) => (i >= T && i < T + 2 ? 0 : 1));
  // Two packed sequences per row: [0 0 0 1 1 1 1] and [0 0 0 0 0 1 1]
  const segIds = Int32Array.from({ length: B * T }, (_, i) => (i < T ? (i < 3 ? 0 : 1) : i - T < 5 ? 0 : 1));
  const out: Cfg[] = [];
  for (const [Hq, Hkv, D] of [[4, 2, 3], [3, 1, 2], [2, 2, 4]])
    for (const causal of [true, false])
      for (const [km, sg] of [[null, null], [keyMask, null], [keyMask, segIds]] as const)
        for (const window of [0, 3]) out.push({ B, T, Hq, Hkv, D, causal, keyMask: km, segIds: sg, window });
  return out;
}

const label = (c: Cfg) => `Hq=${c.Hq} Hkv=${c.Hkv} D=${c.D} causal=${c.causal} mask=${!!c.keyMask} seg=${!!c.segIds} window=${c.window}`;

test('attention forward: out and lse equal the naive full-matrix attention (GQA, masks, segments, window)', () => {
  const rng = new Rng(10);
  for (const c of configs()) {
    const { B, T, Hq, Hkv, D } = c;
    const q = rand(rng, B * T * Hq * D, 2) as Float64Array, k = rand(rng, B * T * Hkv * D, 2) as Float64Array, v = rand(rng, B * T * Hkv * D) as Float64Array;
    const scale = 1 / Math.sqrt(D);
    const out = new Float64Array(q.length).fill(NaN), lse = new Float64Array(B * Hq * T).fill(NaN);
    K.attention({ ...c, q, k, v, out, lse, scale });
    const want = naive(q, k, v, c, scale);
    close(`out ${label(c)}`, out, want.out, 1e-14, 1e-12);
    close(`lse ${label(c)}`, lse, want.lse, 1e-14, 1e-12);
    if (c.causal && c.keyMask) {
      // Row 1, query 0: no allowed key → out 0, lse −∞.
      assert.equal(lse[(1 * Hq + 0) * T + 0], -Infinity);
      assert.ok(out.subarray((1 * T + 0) * Hq * D, (1 * T + 1) * Hq * D).every((x) => x === 0));
    }
  }
});

test('attention backward: gq, gk, gv equal finite differences of the naive forward; masked queries give no gradient', () => {
  const rng = new Rng(11);
  for (const c of configs()) {
    const { B, T, Hq, Hkv, D } = c;
    const q = rand(rng, B * T * Hq * D, 2) as Float64Array, k = rand(rng, B * T * Hkv * D, 2) as Float64Array, v = rand(rng, B * T * Hkv * D) as Float64Array;
    const R = rand(rng, q.length) as Float64Array;
    const scale = 1 / Math.sqrt(D);
    const f = () => dot(naive(q, k, v, c, scale).out, R);
    const want = [numericGrad(q, f), numericGrad(k, f), numericGrad(v, f)];
    const out = new Float64Array(q.length), lse = new Float64Array(B * Hq * T);
    const args: AttentionArgs = { ...c, q, k, v, out, lse, scale };
    K.attention(args);
    // Outputs are overwritten, so garbage in them must not matter.
    const gq = new Float64Array(q.length).fill(NaN), gk = new Float64Array(k.length).fill(NaN), gv = new Float64Array(v.length).fill(NaN);
    K.attentionBackward({ ...args, gOut: R, gq, gk, gv });
    close(`gq ${label(c)}`, gq, want[0], 1e-8, 1e-6);
    close(`gk ${label(c)}`, gk, want[1], 1e-8, 1e-6);
    close(`gv ${label(c)}`, gv, want[2], 1e-8, 1e-6);
    if (c.causal && c.keyMask) assert.ok(gq.subarray((1 * T + 0) * Hq * D, (1 * T + 2) * Hq * D).every((x) => x === 0));
  }
});

test('attention: scores of ±1e4 do not overflow (float32); NaN in q propagates to its row only', () => {
  const B = 1, T = 4, H = 1, D = 2;
  const q = new Float32Array([100, 0, -100, 0, 100, 100, 0, 100]), k = new Float32Array([100, 0, 100, 0, -100, 100, 0, -100]);
  const v = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const out = new Float32Array(8), lse = new Float32Array(4);
  const args = { q, k, v, out, lse, B, T, Hq: H, Hkv: H, D, scale: 1, causal: true, keyMask: null, segIds: null, window: 0 };
  K.attention(args);
  assert.ok(out.every(Number.isFinite) && lse.every(Number.isFinite));
  // query 1 scores [−1e4, −1e4] → mean of v0, v1; query 2 scores [1e4, 1e4, 0] → mean of v0, v1
  close('query 1', out.subarray(2, 4), [2, 3], 1e-6, 1e-6);
  close('query 2', out.subarray(4, 6), [2, 3], 1e-6, 1e-6);
  close('lse 2', [lse[2]], [1e4 + Math.LN2], 1e-3, 1e-7);
  q[2] = NaN;
  K.attention(args);
  assert.ok(Number.isNaN(out[2]) && Number.isNaN(out[3]) && Number.isNaN(lse[1]));
  assert.ok(Number.isFinite(out[0]) && Number.isFinite(out[4]));
});
