/** Shape and dtype errors are ShapeErrors whose one line names the op and the shapes involved. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError } from '../../src/errors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as op from '../../src/ops/index.js';

const z = (...shape: number[]) => Tensor.zeros(shape, 'float64');

test('shape errors name the op and both shapes', () => {
  const cases: [() => unknown, RegExp][] = [
    [() => op.matmul(z(2, 3), z(4, 5)), /^matmul: inner dims differ: a \[2, 3\] @ b \[4, 5\]$/],
    [() => op.matmul(z(2, 3, 4), z(3, 4, 5)), /^matmul: batch dims differ: a \[2, 3, 4\] @ b \[3, 4, 5\]$/],
    [() => op.matmul(z(4), z(4, 5)), /^matmul: needs ≥ 2-D operands: a \[4\] @ b \[4, 5\]$/],
    [() => op.add(z(2, 3), z(4)), /^add: shapes \[2, 3\] and \[4\] do not broadcast$/],
    [() => op.mul(z(2, 3), z(3, 2)), /^mul: shapes \[2, 3\] and \[3, 2\] do not broadcast$/],
    [() => op.div(z(5), z(2)), /^div: shapes \[5\] and \[2\] do not broadcast$/],
    [() => op.linear(z(2, 3), z(4, 5)), /^linear: input \[2, 3\] does not fit weight \[4, 5\]/],
    [() => op.linear(z(2, 3), z(4, 3), z(5)), /^linear: bias \[5\] does not fit weight \[4, 3\]$/],
    [() => op.reshape(z(2, 3), [4, -1]), /^reshape: cannot view \[2, 3\] as \[4, -1\]$/],
    [() => op.permute(z(2, 3), [0, 0]), /^permute: invalid permutation \[0,0\] for \[2, 3\]$/],
    [() => op.slice(z(2, 3), 1, 2, 4), /^slice: range \[2, 4\) out of bounds for axis 1 of \[2, 3\]$/],
    [() => op.concat([z(2, 3), z(3, 2)], 0), /^concat: shapes \[2, 3\], \[3, 2\] differ outside axis 0$/],
    [() => op.indexSelect(z(3, 2), 0, Int32Array.from([3])), /^indexSelect: index 3 out of range \[0, 3\) on axis 0 of \[3, 2\]$/],
    [() => op.sum(z(2, 3), 2), /^sum: axis 2 out of range for rank 2$/],
    [() => op.embedding(z(4, 2), Int32Array.from([0, 7]), [2]), /^embedding: token id 7 at position 1 is outside the vocabulary \[0, 4\)/],
    [() => op.embedding(z(4, 2), Int32Array.from([0, 1]), [3]), /^embedding: ids shape \[3\] does not match 2 ids$/],
    [() => op.rmsNorm(z(2, 3), z(4), 1e-6), /^rmsNorm: weight \[4\] does not match the last dim of \[2, 3\]$/],
    [() => op.layerNorm(z(2, 3), z(3), z(2), 1e-6), /^layerNorm: bias \[2\] does not match the last dim of \[2, 3\]$/],
    [() => op.rope(z(1, 2, 1, 4), z(8, 6), z(8, 6), Int32Array.from([0, 1])), /^rope: tables cos \[8, 6\], sin \[8, 6\] do not match head dim 4 of x \[1, 2, 1, 4\]/],
    [() => op.rope(z(1, 2, 1, 4), z(8, 4), z(8, 4), Int32Array.from([0, 8])), /^rope: position 8 outside the table of 8$/],
    [() => op.attention(z(1, 2, 3, 4), z(1, 2, 2, 4), z(1, 2, 2, 4)), /^attention: q \[1, 2, 3, 4\], k \[1, 2, 2, 4\], v \[1, 2, 2, 4\] do not fit/],
    [() => op.attention(z(1, 2, 2, 4), z(1, 2, 2, 4), z(1, 2, 2, 4), { keyMask: new Uint8Array(3) }), /^attention: keyMask has 3 entries for B·T = 2$/],
    [() => op.add(Tensor.zeros([2], 'float32'), z(2)), /^add: dtype mismatch: float32 \[2\] vs float64 \[2\]$/],
    [() => op.matmul(Tensor.zeros([2, 2], 'float32'), z(2, 2)), /^matmul: dtype mismatch/],
  ];
  for (const [f, re] of cases) {
    assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof ShapeError, `${String(e)} is not a ShapeError`);
      assert.match((e as Error).message, re);
      assert.ok(!(e as Error).message.includes('\n'), 'one line');
      return true;
    });
  }
});
