/** Autograd behaviour: accumulation, frozen inputs, error messages. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { scope } from '../../src/tensor/pool.js';
import * as op from '../../src/ops/index.js';

test('a reused tensor accumulates gradient from every use', () => {
  const x = Tensor.from([1, 2, 3], [3], 'float64').param();
  // y = Σ x·x + Σ 3x → dy/dx = 2x + 3
  backward(op.add(op.sum(op.mul(x, x)), op.sum(op.scale(x, 3))));
  assert.deepEqual(Array.from(x.grad!.data), [5, 7, 9]);
  // A second backward accumulates into .grad
  backward(op.sum(x));
  assert.deepEqual(Array.from(x.grad!.data), [6, 8, 10]);
});

test('residual connections do not share gradient buffers', () => {
  const x = Tensor.from([1, 2], [2], 'float64').param();
  const w = Tensor.from([3, 4], [2], 'float64').param();
  // h = x + x·w ; loss = Σ h·h  → dh = 2h, dx = dh·(1 + w), dw = dh·x
  const h = op.add(x, op.mul(x, w));
  backward(op.sum(op.mul(h, h)));
  const hv = [1 + 3, 2 + 8];
  assert.deepEqual(Array.from(x.grad!.data), [2 * hv[0] * 4, 2 * hv[1] * 5]);
  assert.deepEqual(Array.from(w.grad!.data), [2 * hv[0] * 1, 2 * hv[1] * 2]);
});

test('frozen inputs get no gradient and skip their work', () => {
  const x = Tensor.from([1, 2, 3, 4], [2, 2], 'float64').param();
  const w = Tensor.from([1, 0, 0, 1], [2, 2], 'float64'); // frozen
  backward(op.sum(op.linear(x, w)));
  assert.equal(w.grad, null);
  assert.deepEqual(Array.from(x.grad!.data), [1, 1, 1, 1]);
});

test('noGrad records nothing', () => {
  const x = Tensor.from([1, 2], [2]).param();
  const y = noGrad(() => op.mul(x, x));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
});

test('shape errors name the op and the shapes', () => {
  const a = Tensor.zeros([2, 3]);
  const b = Tensor.zeros([4, 5]);
  assert.throws(() => op.matmul(a, b), /matmul: inner dims differ: a \[2, 3\] @ b \[4, 5\]/);
  assert.throws(() => op.add(Tensor.zeros([2, 3]), Tensor.zeros([4])), /add: shapes \[2, 3\] and \[4\] do not broadcast/);
  assert.throws(() => op.linear(Tensor.zeros([2, 3]), Tensor.zeros([4, 5])), /linear: input \[2, 3\] does not fit weight \[4, 5\]/);
  assert.throws(() => op.embedding(Tensor.zeros([4, 2]), Int32Array.from([7]), [1]), /embedding: token id 7 at position 0 is outside the vocabulary \[0, 4\)/);
  assert.throws(() => op.add(Tensor.zeros([2], 'float32'), Tensor.zeros([2], 'float64')), /add: dtype mismatch/);
});

test('scopes recycle buffers except what is returned or kept', () => {
  const kept = scope(() => {
    const a = Tensor.full([64], 1);
    const b = op.scale(a, 2);
    return b;
  });
  assert.equal(kept.released, false);
  assert.equal(kept.data[0], 2);
  let inner: Tensor | null = null;
  scope(() => {
    inner = Tensor.full([64], 1);
  });
  assert.equal(inner!.released, true);
});
