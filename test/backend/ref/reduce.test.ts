/** sumAxis over the middle axis of (outer, dim, inner) and the float64 sum of squares. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels as K } from '../../../src/backend/ref/index.js';

test('sumAxis: every axis of a (2, 3, 4) tensor', () => {
  const x = Float64Array.from({ length: 24 }, (_, i) => i);
  const at = (i: number, j: number, l: number) => x[i * 12 + j * 4 + l];
  // axis 0: (outer 1, dim 2, inner 12)
  const o0 = new Float64Array(12);
  K.sumAxis(x, o0, 1, 2, 12);
  assert.deepEqual([...o0], Array.from({ length: 12 }, (_, r) => x[r] + x[12 + r]));
  // axis 1: (outer 2, dim 3, inner 4)
  const o1 = new Float64Array(8);
  K.sumAxis(x, o1, 2, 3, 4);
  assert.deepEqual([...o1], Array.from({ length: 8 }, (_, r) => at(r >> 2, 0, r & 3) + at(r >> 2, 1, r & 3) + at(r >> 2, 2, r & 3)));
  // axis 2: (outer 6, dim 4, inner 1)
  const o2 = new Float32Array(6);
  K.sumAxis(x, o2, 6, 4, 1);
  assert.deepEqual([...o2], [6, 22, 38, 54, 70, 86]);
  // dim 0 sums to zero (overwrites old contents)
  const o3 = new Float64Array([7, 7]);
  K.sumAxis(x, o3, 2, 0, 1);
  assert.deepEqual([...o3], [0, 0]);
});

test('sumSquares accumulates in float64 and propagates NaN', () => {
  assert.equal(K.sumSquares(new Float32Array([1, 2, 3, 99]), 3), 14);
  // 1e20² overflows float32 but not the float64 accumulator
  assert.equal(K.sumSquares(new Float32Array([1e20, 1e20]), 2), 2 * Math.fround(1e20) ** 2);
  assert.ok(Number.isNaN(K.sumSquares(new Float64Array([1, NaN]), 2)));
});
