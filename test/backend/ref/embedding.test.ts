/** Row gather and scatter-add with repeated ids. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels as K } from '../../../src/backend/ref/index.js';

test('embedding gathers rows; embeddingBackward accumulates repeated ids', () => {
  const w = Float64Array.from({ length: 4 * 3 }, (_, i) => i); // (V=4, C=3)
  const ids = new Int32Array([2, 0, 2]);
  const out = new Float32Array(9);
  K.embedding(w, ids, out, 3, 3);
  assert.deepEqual([...out], [6, 7, 8, 0, 1, 2, 6, 7, 8]);
  const g = Float64Array.from({ length: 9 }, (_, i) => i + 1);
  const gw = new Float64Array(12).fill(1);
  K.embeddingBackward(g, ids, gw, 3, 3);
  // row 2 gets g[0] + g[2], row 0 gets g[1]; existing contents are kept (+=)
  assert.deepEqual([...gw], [5, 6, 7, 1, 1, 1, 1 + 1 + 7, 1 + 2 + 8, 1 + 3 + 9, 1, 1, 1]);
});
