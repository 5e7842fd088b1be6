/**
 * Finite-difference gradient checks (float64 → ref kernels) for every op: d/dx Σ(f(x)·R) from
 * autograd vs central differences, for every differentiable input. Attention, tokenLogprobs and
 * rope have their own files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as op from '../../src/ops/index.js';
import { gradcheck, randn } from '../helpers/gradcheck.js';

const rng = new Rng(1);
const r = (...shape: number[]) => randn(shape, rng);
/** Entries with |x| ≥ lo (keeps kinks and poles of relu/abs/clamp/log away from ±eps). */
const away = (t: Tensor, lo = 0.2, positive = false) => {
  t.data.forEach((v, i) => (t.data[i] = (positive || v >= 0 ? 1 : -1) * (lo + Math.abs(v))));
  return t;
};

test('add/sub/mul/div with broadcasting', () => {
  const cases: [number[], number[]][] = [
    [[2, 3, 4], [3, 1]],
    [[3, 1], [2, 3, 4]],
    [[2, 1, 4], [1, 3, 1]],
    [[3, 4], [3, 4]],
    [[3, 4], []],
    [[], [2, 3]],
    [[4], [3, 1]],
  ];
  for (const [sa, sb] of cases) {
    const tag = `[${sa}] ∘ [${sb}]`;
    gradcheck(`add ${tag}`, op.add, [r(...sa), r(...sb)]);
    gradcheck(`sub ${tag}`, op.sub, [r(...sa), r(...sb)]);
    gradcheck(`mul ${tag}`, op.mul, [r(...sa), r(...sb)]);
    gradcheck(`div ${tag}`, op.div, [r(...sa), away(r(...sb), 0.5)]);
  }
  gradcheck('add number', (x) => op.add(x, 1.5), [r(2, 3)]);
  gradcheck('sub number', (x) => op.sub(x, 1.5), [r(2, 3)]);
  gradcheck('mul number', (x) => op.mul(x, -3), [r(2, 3)]);
  gradcheck('div number', (x) => op.div(x, 4), [r(2, 3)]);
  gradcheck('x·x (same tensor twice)', (x) => op.mul(x, x), [r(5)]);
});

test('scale, neg, addScalar, clamp', () => {
  gradcheck('scale', (x) => op.scale(x, -2.5), [r(5)]);
  gradcheck('addScalar', (x) => op.addScalar(x, 3), [r(2, 5)]);
  gradcheck('neg', op.neg, [r(5)]);
  const x = Tensor.from([-2, -0.5, 0.3, 0.9, 2, -1.3], [2, 3], 'float64');
  gradcheck('clamp', (t) => op.clamp(t, -1, 1), [x]);
  gradcheck('clamp one-sided', (t) => op.clamp(t, -Infinity, 0.5), [Tensor.from([-2, 0.1, 0.9, 3], [4], 'float64')]);
  // forward like torch.clamp: boundary values pass; NaN stays NaN with gradient 0; min > max gives max
  assert.deepEqual(Array.from(op.clamp(Tensor.from([-1, 1, NaN], [3], 'float64'), -1, 1).data), [-1, 1, NaN]);
  assert.deepEqual(Array.from(op.clamp(Tensor.from([0, 5], [2], 'float64'), 3, 2).data), [2, 2]);
});

test('activations', () => {
  for (const [name, f] of Object.entries({ exp: op.exp, square: op.square, sigmoid: op.sigmoid, logsigmoid: op.logsigmoid, tanh: op.tanh, silu: op.silu, geluTanh: op.geluTanh })) {
    gradcheck(name, f, [r(3, 7)]);
  }
  gradcheck('logsigmoid large |x|', op.logsigmoid, [Tensor.from([-30, -8, 8, 30], [4], 'float64')]);
  gradcheck('relu', op.relu, [away(r(9))]);
  gradcheck('abs', op.abs, [away(r(9))]);
  gradcheck('log', op.log, [away(r(6), 0.3, true)]);
  gradcheck('sqrt', op.sqrt, [away(r(6), 0.3, true)]);
});

test('matmul: every transpose combo, batched, 2-D b broadcast over one or two batch dims', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const tag = `transA=${transA} transB=${transB}`;
      const a = (...batch: number[]) => (transA ? r(...batch, 4, 3) : r(...batch, 3, 4)); // op(a): (…, 3, 4)
      const b = (...batch: number[]) => (transB ? r(...batch, 5, 4) : r(...batch, 4, 5)); // op(b): (…, 4, 5)
      const f = (x: Tensor, y: Tensor) => op.matmul(x, y, { transA, transB });
      gradcheck(`matmul 2-D ${tag}`, f, [a(), b()]);
      gradcheck(`matmul batched ${tag}`, f, [a(2), b(2)]);
      gradcheck(`matmul 2-D b ${tag}`, f, [a(2), b()]);
      gradcheck(`matmul 2 batch dims, 2-D b ${tag}`, f, [a(2, 2), b()]);
      gradcheck(`matmul 2 batch dims ${tag}`, f, [a(3, 2), b(3, 2)]);
    }
  }
  gradcheck('matmul 1×1', (x, y) => op.matmul(x, y), [r(1, 1), r(1, 1)]);
  gradcheck('matmul outer product', (x, y) => op.matmul(x, y), [r(3, 1), r(1, 4)]);
});

test('linear with and without bias', () => {
  gradcheck('linear', (x, w, b) => op.linear(x, w, b), [r(2, 3, 4), r(5, 4), r(5)]);
  gradcheck('linear nobias', (x, w) => op.linear(x, w), [r(3, 4), r(2, 4)]);
  gradcheck('linear 1-D x', (x, w, b) => op.linear(x, w, b), [r(4), r(3, 4), r(3)]);
});

test('sum and mean over all, one, several and negative axes', () => {
  gradcheck('sum all', (x) => op.sum(x), [r(2, 3)]);
  gradcheck('sum axis', (x) => op.sum(x, 1), [r(2, 3, 4)]);
  gradcheck('sum axes keepdim', (x) => op.sum(x, [0, 2], true), [r(2, 3, 4)]);
  gradcheck('sum axes', (x) => op.sum(x, [2, 0]), [r(2, 3, 4)]);
  gradcheck('sum of a scalar', (x) => op.sum(x), [r()]);
  gradcheck('mean last', (x) => op.mean(x, -1), [r(3, 5)]);
  gradcheck('mean all', (x) => op.mean(x), [r(3, 5)]);
  gradcheck('mean keepdim', (x) => op.mean(x, [0, 1], true), [r(2, 3, 2)]);
  assert.deepEqual(op.sum(r(2, 3, 4), [0, 2]).shape, [3]);
  assert.deepEqual(op.mean(r(2, 3, 4), 1, true).shape, [2, 1, 4]);
  assert.deepEqual(op.sum(r(2, 3)).shape, []);
});

test('shape ops: reshape, transpose, permute, slice, concat, indexSelect', () => {
  gradcheck('reshape', (x) => op.reshape(x, [4, -1]), [r(2, 3, 2)]);
  gradcheck('reshape chain', (x) => op.mul(op.reshape(x, [6]), op.reshape(x, [6])), [r(2, 3)]);
  gradcheck('transpose', (x) => op.transpose(x, 0, 2), [r(2, 3, 4)]);
  gradcheck('transpose negative axes', (x) => op.transpose(x, -1, -2), [r(2, 3, 4)]);
  gradcheck('permute', (x) => op.permute(x, [1, 2, 0]), [r(2, 3, 4)]);
  gradcheck('permute 4-D', (x) => op.permute(x, [0, 2, 1, 3]), [r(2, 3, 2, 2)]);
  gradcheck('slice middle axis', (x) => op.slice(x, 1, 1, 3), [r(2, 4, 3)]);
  gradcheck('slice first axis', (x) => op.slice(x, 0, 1, 2), [r(3, 2)]);
  gradcheck('slice last axis', (x) => op.slice(x, -1, 0, 2), [r(2, 2, 5)]);
  gradcheck('concat axis 1', (x, y) => op.concat([x, y], 1), [r(2, 1, 3), r(2, 2, 3)]);
  gradcheck('concat axis 0, three inputs', (x, y, z) => op.concat([x, y, z], 0), [r(1, 3), r(2, 3), r(3, 3)]);
  gradcheck('concat last axis', (x, y) => op.concat([x, y], -1), [r(2, 2), r(2, 3)]);
  gradcheck('indexSelect rows, repeated', (x) => op.indexSelect(x, 0, Int32Array.from([2, 0, 2, 1])), [r(3, 4)]);
  gradcheck('indexSelect axis 1', (x) => op.indexSelect(x, 1, Int32Array.from([1, 1, 0])), [r(2, 3, 2)]);
});

test('reshape is a view: it shares storage and records its base', () => {
  const x = r(2, 3);
  const y = op.reshape(x, [3, -1]);
  assert.deepEqual(y.shape, [3, 2]);
  assert.equal(y.data, x.data);
  assert.equal(y.base, x);
  assert.equal(op.reshape(y, [6]).base, x, 'a view of a view points at the owner');
});

test('softmax and logSoftmax (last axis, any rank)', () => {
  gradcheck('softmax', op.softmax, [r(3, 5)]);
  gradcheck('logSoftmax', op.logSoftmax, [r(3, 5)]);
  gradcheck('softmax 3-D', op.softmax, [r(2, 2, 4)]);
  gradcheck('logSoftmax 1-D', op.logSoftmax, [r(6)]);
});

test('embedding with repeated ids', () => {
  gradcheck('embedding', (w) => op.embedding(w, Int32Array.from([1, 3, 1, 0, 1, 2]), [2, 3]), [r(4, 3)]);
  assert.deepEqual(op.embedding(r(4, 3), Int32Array.from([1, 2]), [2]).shape, [2, 3]);
});

test('rmsNorm and layerNorm', () => {
  gradcheck('rmsNorm', (x, w) => op.rmsNorm(x, w, 1e-5), [r(3, 6), r(6)]);
  gradcheck('rmsNorm 3-D, big eps', (x, w) => op.rmsNorm(x, w, 0.5), [r(2, 2, 5), r(5)]);
  gradcheck('layerNorm', (x, w, b) => op.layerNorm(x, w, b, 1e-5), [r(3, 6), r(6), r(6)]);
  gradcheck('layerNorm 3-D', (x, w, b) => op.layerNorm(x, w, b, 1e-5), [r(2, 2, 5), r(5), r(5)]);
});

test('dropout: identity in eval, masks and rescales in training, gradient through the same mask', () => {
  const x = r(1000);
  assert.equal(op.dropout(x, 0.3, new Rng(1), false), x);
  assert.equal(op.dropout(x, 0, new Rng(1), true), x);
  const y = op.dropout(x, 0.3, new Rng(1), true);
  let kept = 0;
  for (let i = 0; i < x.size; i++) {
    if (y.data[i] !== 0) {
      kept++;
      assert.ok(Math.abs(y.data[i] - x.data[i] / 0.7) < 1e-12);
    }
  }
  assert.ok(kept > 620 && kept < 780, `kept ${kept}`);
  const z = op.dropout(x, 0.3, new Rng(1), true);
  assert.deepEqual(Array.from(z.data), Array.from(y.data), 'same seed, same mask');
  assert.ok(op.dropout(r(4), 1, new Rng(1), true).data.every((v) => v === 0), 'p = 1 drops everything');
  assert.throws(() => op.dropout(x, 1.5, new Rng(1), true), /dropout: probability 1.5 is not in \[0, 1\]/);
  gradcheck('dropout', (t) => op.dropout(t, 0.4, new Rng(3), true), [r(3, 4)]);
});
