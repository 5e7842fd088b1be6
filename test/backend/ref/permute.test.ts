/** permute against explicit index arithmetic, ranks 0 to 6. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels as K } from '../../../src/backend/ref/index.js';
import { Rng } from '../../../src/tensor/rng.js';

/** out[idx] = x[idx permuted back], by decoding every output index. */
function naive(x: Float64Array, shape: number[], perm: number[]): Float64Array {
  const rank = shape.length, n = x.length;
  const outShape = perm.map((p) => shape[p]);
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i, src = 0;
    for (let d = rank - 1; d >= 0; d--) {
      const id = rem % outShape[d];
      rem = Math.floor(rem / outShape[d]);
      src += id * strides[perm[d]];
    }
    out[i] = x[src];
  }
  return out;
}

function shuffled(rng: Rng, rank: number): number[] {
  const p = Array.from({ length: rank }, (_, i) => i);
  for (let i = rank - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

test('permute: (B, T, H, D) → (B, H, T, D) by hand', () => {
  const x = Float64Array.from({ length: 12 }, (_, i) => i); // (1, 2, 3, 2)
  const out = new Float64Array(12);
  K.permute(x, out, [1, 2, 3, 2], [0, 2, 1, 3]);
  assert.deepEqual([...out], [0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11]);
});

test('permute: random permutations of ranks 0..6 with size-1 axes', () => {
  const rng = new Rng(9);
  for (let rank = 0; rank <= 6; rank++) {
    for (let rep = 0; rep < 4; rep++) {
      const shape = Array.from({ length: rank }, () => 1 + rng.nextInt(3));
      const n = shape.reduce((a, b) => a * b, 1);
      const x = Float64Array.from({ length: n }, (_, i) => i);
      const perm = shuffled(rng, rank);
      const out = new Float64Array(n);
      K.permute(x, out, shape, perm);
      assert.deepEqual([...out], [...naive(x, shape, perm)], `shape ${shape} perm ${perm}`);
    }
  }
});
