/**
 * Fused attention: finite-difference gradients under every masking feature, and agreement (values and
 * gradients) with a slow twin built from primitive ops (matmul, softmax, repeat_kv via indexSelect).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward } from '../../src/autograd/tape.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as op from '../../src/ops/index.js';
import type { AttentionOptions } from '../../src/ops/index.js';
import { gradcheck, randn } from '../helpers/gradcheck.js';
import { cachedAttention } from '../../src/generate/kv-cache.js';

const rng = new Rng(5);
const r = (...shape: number[]) => randn(shape, rng);

/** Eager attention the way HF's eager path does it: scores + additive mask → softmax → · v. */
function slowAttention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions): Tensor {
  const [B, T, Hq, D] = q.shape;
  const Hkv = k.shape[2];
  const rep = Int32Array.from({ length: Hq }, (_, h) => Math.floor(h / (Hq / Hkv)));
  const qh = op.permute(q, [0, 2, 1, 3]); // (B, Hq, T, D)
  const kh = op.indexSelect(op.permute(k, [0, 2, 1, 3]), 1, rep); // (B, Hq, T, D)
  const vh = op.indexSelect(op.permute(v, [0, 2, 1, 3]), 1, rep);
  let s = op.scale(op.matmul(qh, kh, { transB: true }), o.scale ?? 1 / Math.sqrt(D)); // (B, Hq, T, T)
  if (o.softcap) s = op.softcap(s, o.softcap); // Gemma 2: before the mask
  const mask = Tensor.zeros([B, 1, T, T], q.dtype);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < T; j++) {
        const ok = (!(o.causal ?? true) || j <= t) && (!o.window || j > t - o.window) && (!o.keyMask || o.keyMask[b * T + j]) && (!o.segIds || o.segIds[b * T + j] === o.segIds[b * T + t] || o.segParents?.[b * T + t] === o.segIds[b * T + j]);
        if (!ok) mask.data[(b * T + t) * T + j] = -1e30;
      }
    }
  }
  const p = op.softmax(op.add(s, mask));
  return op.permute(op.matmul(p, vh), [0, 2, 1, 3]); // (B, T, Hq, D)
}

function compareWithSlow(name: string, shapes: { B: number; T: number; Hq: number; Hkv: number; D: number }, o: AttentionOptions): void {
  const { B, T, Hq, Hkv, D } = shapes;
  const q = r(B, T, Hq, D).param(), k = r(B, T, Hkv, D).param(), v = r(B, T, Hkv, D).param();
  const R = r(B, T, Hq, D);
  const fused = op.attention(q, k, v, o);
  backward(op.sum(op.mul(fused, R)));
  const g1 = [q, k, v].map((t) => Float64Array.from(t.grad!.data));
  [q, k, v].forEach((t) => (t.grad = null));
  const slow = slowAttention(q, k, v, o);
  backward(op.sum(op.mul(slow, R)));
  const close = (what: string, a: ArrayLike<number>, b: ArrayLike<number>) => {
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-12, `${name} ${what}[${i}]: fused ${a[i]} vs slow ${b[i]}`);
  };
  close('out', fused.data, slow.data);
  ['dq', 'dk', 'dv'].forEach((w, i) => close(w, g1[i], [q, k, v][i].grad!.data));
}

test('attention gradients: causal + GQA (Hq 4, Hkv 2) + right padding + segments + window together', () => {
  const B = 2, T = 6, D = 3;
  const keyMask = Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
  const segIds = Int32Array.from([0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1]);
  const opts = { keyMask, segIds, window: 2 };
  gradcheck('attention all', (q, k, v) => op.attention(q, k, v, opts), [r(B, T, 4, D), r(B, T, 2, D), r(B, T, 2, D)]);
});

test('attention gradients: each feature alone, non-causal, custom scale', () => {
  const B = 2, T = 5, D = 4;
  const keyMask = Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
  gradcheck('attention gqa+mask', (q, k, v) => op.attention(q, k, v, { keyMask }), [r(B, T, 4, D), r(B, T, 2, D), r(B, T, 2, D)]);
  const segIds = Int32Array.from([0, 0, 1, 1, 1, 0, 1, 1, 2, 2]);
  gradcheck('attention segments', (q, k, v) => op.attention(q, k, v, { segIds }), [r(B, T, 2, D), r(B, T, 1, D), r(B, T, 1, D)]);
  gradcheck('attention window', (q, k, v) => op.attention(q, k, v, { window: 2 }), [r(1, T, 2, D), r(1, T, 2, D), r(1, T, 2, D)]);
  gradcheck('attention non-causal', (q, k, v) => op.attention(q, k, v, { causal: false, keyMask, scale: 0.3 }), [r(B, T, 2, D), r(B, T, 2, D), r(B, T, 2, D)]);
});

// A packed pair sharing its prompt: prompt (seg 0), chosen (seg 1) and rejected (seg 2) both
// seeing the prompt, then an unshared sequence (seg 3); batch row 2 has a padded tail.
const treeSeg = Int32Array.from([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 0, 0, 1, 1, 1, 2, 5, 5, 5, 5]);
const treePar = Int32Array.from([-1, -1, -1, 0, 0, 0, 0, 0, -1, -1, -1, -1, 0, 0, 0, 0, -1, -1, -1, -1]);

test('attention gradients: shared-prompt segments (segParents), with GQA and padding', () => {
  const B = 2, T = 10, D = 3;
  const keyMask = Uint8Array.from({ length: B * T }, (_, i) => (i < 18 ? 1 : 0));
  gradcheck('attention tree', (q, k, v) => op.attention(q, k, v, { segIds: treeSeg, segParents: treePar, keyMask }), [r(B, T, 4, D), r(B, T, 2, D), r(B, T, 2, D)]);
});

test('attention with a shared prompt equals attending the prompt + completion rows separately', () => {
  // [P C R] packed with C and R seeing P, against the padded rows [P C] and [P R].
  const P = 3, C = 2, R = 3, H = 2, D = 4;
  const q = r(1, P + C + R, H, D), k = r(1, P + C + R, 1, D), v = r(1, P + C + R, 1, D);
  const seg = Int32Array.from([0, 0, 0, 1, 1, 2, 2, 2]), par = Int32Array.from([-1, -1, -1, 0, 0, 0, 0, 0]);
  const tree = op.attention(q, k, v, { segIds: seg, segParents: par });
  for (const [start, n] of [[P, C], [P + C, R]]) {
    const rows = Int32Array.from([...Array(P).keys(), ...Array.from({ length: n }, (_, i) => start + i)]);
    const sep = op.attention(op.indexSelect(q, 1, rows), op.indexSelect(k, 1, rows), op.indexSelect(v, 1, rows), {});
    for (let i = 0; i < P + n; i++) {
      for (let x = 0; x < H * D; x++) {
        const got = tree.data[rows[i] * H * D + x], want = sep.data[i * H * D + x];
        assert.ok(Math.abs(got - want) < 1e-12, `row ${rows[i]}: ${got} vs ${want}`);
      }
    }
  }
  assert.throws(() => op.attention(q, k, v, { segIds: seg, segParents: par, window: 2 }), /sliding window \(2\) cannot be combined/);
  assert.throws(() => op.attention(q, k, v, { segParents: par }), /segParents needs segIds/);
});

test('attention: left padding leaves fully masked queries at 0 with no gradient', () => {
  const B = 1, T = 4, D = 2;
  const keyMask = Uint8Array.from([0, 0, 1, 1]);
  const f = (q: Tensor, k: Tensor, v: Tensor) => op.attention(q, k, v, { keyMask });
  gradcheck('attention left pad', f, [r(B, T, 2, D), r(B, T, 1, D), r(B, T, 1, D)]);
  const q = r(B, T, 2, D).param();
  const out = f(q, r(B, T, 1, D), r(B, T, 1, D));
  assert.deepEqual(Array.from(out.data.subarray(0, 2 * 2 * D)), new Array(2 * 2 * D).fill(0), 'queries 0, 1 see no key');
  backward(op.sum(out));
  assert.deepEqual(Array.from(q.grad!.data.subarray(0, 2 * 2 * D)), new Array(2 * 2 * D).fill(0));
});

test('fused attention equals the eager slow twin (values and gradients)', () => {
  compareWithSlow('plain causal', { B: 2, T: 5, Hq: 2, Hkv: 2, D: 4 }, {});
  compareWithSlow('gqa + right pad + window', { B: 2, T: 6, Hq: 6, Hkv: 2, D: 3 }, { keyMask: Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]), window: 3 });
  compareWithSlow('shared-prompt segments + GQA + padding', { B: 2, T: 10, Hq: 4, Hkv: 2, D: 3 }, { segIds: treeSeg, segParents: treePar, keyMask: Uint8Array.from({ length: 20 }, (_, i) => (i < 18 ? 1 : 0)) });
  compareWithSlow('segments, non-causal', { B: 1, T: 6, Hq: 2, Hkv: 1, D: 4 }, { causal: false, segIds: Int32Array.from([0, 0, 1, 1, 1, 2]) });
});

test('attention soft-capping (Gemma 2): gradients, the eager slow twin, and the KV-cache path', () => {
  const B = 2, T = 6, D = 3;
  const keyMask = Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
  // scores of size ~cap, where tanh bends: q, k scaled up
  const big = (...shape: number[]) => randn(shape, rng, 3);
  gradcheck('attention softcap', (q, k, v) => op.attention(q, k, v, { keyMask, softcap: 2, scale: 0.7 }), [big(B, T, 4, D), big(B, T, 2, D), r(B, T, 2, D)]);
  gradcheck('attention softcap + window + segments', (q, k, v) => op.attention(q, k, v, { window: 3, segIds: Int32Array.from([0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1]), softcap: 1.5 }), [big(B, T, 2, D), big(B, T, 1, D), r(B, T, 1, D)]);
  compareWithSlow('softcap + gqa + pad', { B: 2, T: 6, Hq: 4, Hkv: 2, D: 3 }, { keyMask, softcap: 1.2, scale: 0.9 });
  compareWithSlow('softcap + shared-prompt segments', { B: 2, T: 10, Hq: 2, Hkv: 1, D: 3 }, { segIds: treeSeg, segParents: treePar, softcap: 0.8 });
  // the cap changes the result (it is not a no-op on these scores)
  const q = big(1, T, 2, D), k = big(1, T, 2, D), v = r(1, T, 2, D);
  const capped = op.attention(q, k, v, { softcap: 1 }), plain = op.attention(q, k, v, {});
  assert.ok(capped.data.some((x, i) => Math.abs(x - plain.data[i]) > 1e-3));
  // generation's cached attention: prefill of the whole row equals the fused op (float32)
  const f = (t: Tensor) => Tensor.from(t.data, t.shape, 'float32');
  const fused = op.attention(f(q), f(k), f(v), { softcap: 1, scale: 0.6, window: 4 });
  const cached = cachedAttention(f(q).data as Float32Array, f(k).data as Float32Array, f(v).data as Float32Array, 0, T, 2, 2, D, 4, { softcap: 1, scale: 0.6 });
  cached.forEach((x, i) => assert.ok(Math.abs(x - fused.data[i]) < 1e-5, `cached[${i}] ${x} vs fused ${fused.data[i]}`));
  assert.throws(() => op.attention(q, k, v, { softcap: -1 }), (e: Error) => e.message === 'attention: softcap -1 must be a non-negative number (0 = none)');
});
