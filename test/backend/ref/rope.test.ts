/** Rotary embedding (HF rotate_half): hand-checked rotation, inverse undoes forward, inverse is the adjoint. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels as K } from '../../../src/backend/ref/index.js';
import { Rng } from '../../../src/tensor/rng.js';
import { close, dot, rand } from './util.js';

/** HF tables: emb = cat(freqs, freqs), freqs[p, i] = p·base^(−2i/D). */
function tables(maxPos: number, D: number, base = 10000): { cos: Float64Array; sin: Float64Array } {
  const cos = new Float64Array(maxPos * D), sin = new Float64Array(maxPos * D);
  for (let p = 0; p < maxPos; p++)
    for (let i = 0; i < D / 2; i++) {
      const a = p * base ** (-(2 * i) / D);
      cos[p * D + i] = cos[p * D + i + D / 2] = Math.cos(a);
      sin[p * D + i] = sin[p * D + i + D / 2] = Math.sin(a);
    }
  return { cos, sin };
}

test('rope: pairs (i, i + D/2) rotate by the angle of their position', () => {
  const D = 4;
  const { cos, sin } = tables(8, D);
  const x = new Float64Array([1, 2, 3, 4]);
  const out = new Float64Array(4);
  K.rope(x, out, cos, sin, new Int32Array([3]), 1, 1, D, false);
  const a0 = 3, a1 = 3 * 10000 ** -0.5;
  // (x_i, x_{i+D/2}) → (x_i·cos − x_{i+D/2}·sin, x_{i+D/2}·cos + x_i·sin)
  close('rope', out, [1 * Math.cos(a0) - 3 * Math.sin(a0), 2 * Math.cos(a1) - 4 * Math.sin(a1), 3 * Math.cos(a0) + 1 * Math.sin(a0), 4 * Math.cos(a1) + 2 * Math.sin(a1)]);
  K.rope(x, out, cos, sin, new Int32Array([0]), 1, 1, D, false);
  assert.deepEqual([...out], [1, 2, 3, 4]); // position 0 is the identity
});

test('rope: inverse undoes forward (also in place) and is the adjoint (backward)', () => {
  const rng = new Rng(8);
  const rows = 5, H = 3, D = 6, n = rows * H * D;
  const { cos, sin } = tables(16, D);
  const pos = Int32Array.from({ length: rows }, () => rng.nextInt(16));
  const x = rand(rng, n) as Float64Array;
  const y = new Float64Array(n);
  K.rope(x, y, cos, sin, pos, rows, H, D, false);
  const back = y.slice();
  K.rope(back, back, cos, sin, pos, rows, H, D, true); // out aliases x
  close('inverse∘forward', back, x, 1e-14, 1e-12);
  // ⟨rope(x), g⟩ = ⟨x, rope⁻¹(g)⟩ since the rotation is orthogonal
  const g = rand(rng, n) as Float64Array, gx = new Float64Array(n);
  K.rope(g, gx, cos, sin, pos, rows, H, D, true);
  assert.ok(Math.abs(dot(y, g) - dot(x, gx)) < 1e-12);
});
