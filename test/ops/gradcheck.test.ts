/** Finite-difference gradient checks (float64, ref backend) for every op. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as op from '../../src/ops/index.js';
import { gradcheck, randn } from '../helpers/gradcheck.js';

const rng = new Rng(1);
const r = (...shape: number[]) => randn(shape, rng);

test('broadcasting add/sub/mul/div', () => {
  gradcheck('add', op.add, [r(2, 3, 4), r(3, 1)]);
  gradcheck('sub', op.sub, [r(3, 1), r(2, 3, 4)]);
  gradcheck('mul', op.mul, [r(2, 1, 4), r(1, 3, 1)]);
  const pos = r(4);
  pos.data.forEach((v, i) => (pos.data[i] = 1 + Math.abs(v)));
  gradcheck('div', op.div, [r(3, 4), pos]);
});

test('scalar forms and clamp', () => {
  gradcheck('scale', (x) => op.scale(x, -2.5), [r(5)]);
  gradcheck('addScalar', (x) => op.addScalar(x, 3), [r(5)]);
  gradcheck('neg', op.neg, [r(5)]);
  const x = Tensor.from([-2, -0.5, 0.3, 0.9, 2], [5], 'float64');
  gradcheck('clamp', (t) => op.clamp(t, -1, 1), [x]);
});

test('activations', () => {
  for (const [name, f] of Object.entries({ exp: op.exp, square: op.square, sigmoid: op.sigmoid, logsigmoid: op.logsigmoid, tanh: op.tanh, silu: op.silu, geluTanh: op.geluTanh })) {
    gradcheck(name, f, [r(7)]);
  }
  const away = Tensor.from([-2, -0.7, 0.4, 1.3, 3], [5], 'float64');
  gradcheck('relu', op.relu, [away]);
  gradcheck('abs', op.abs, [away]);
  const pos = Tensor.from([0.3, 1, 2.5, 7], [4], 'float64');
  gradcheck('log', op.log, [pos]);
  gradcheck('sqrt', op.sqrt, [pos]);
});

test('matmul: transposes, batching, 2-D b broadcast', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const a = transA ? r(2, 4, 3) : r(2, 3, 4);
      const b = transB ? r(2, 5, 4) : r(2, 4, 5);
      gradcheck(`matmul ${transA} ${transB}`, (x, y) => op.matmul(x, y, { transA, transB }), [a, b]);
      const b2 = transB ? r(5, 4) : r(4, 5);
      if (!transA) gradcheck(`matmul 2-D b ${transB}`, (x, y) => op.matmul(x, y, { transB }), [r(2, 3, 4), b2]);
    }
  }
  gradcheck('matmul 1×1', (x, y) => op.matmul(x, y), [r(1, 1), r(1, 1)]);
});

test('linear with and without bias', () => {
  gradcheck('linear', op.linear, [r(2, 3, 4), r(5, 4), r(5)]);
  gradcheck('linear nobias', (x, w) => op.linear(x, w), [r(3, 4), r(2, 4)]);
});

test('reductions', () => {
  gradcheck('sum all', (x) => op.sum(x), [r(2, 3)]);
  gradcheck('sum axis', (x) => op.sum(x, 1), [r(2, 3, 4)]);
  gradcheck('sum axes keepdim', (x) => op.sum(x, [0, 2], true), [r(2, 3, 4)]);
  gradcheck('mean', (x) => op.mean(x, -1), [r(3, 5)]);
});

test('shape ops', () => {
  gradcheck('reshape', (x) => op.reshape(x, [4, -1]), [r(2, 3, 2)]);
  gradcheck('transpose', (x) => op.transpose(x, 0, 2), [r(2, 3, 4)]);
  gradcheck('permute', (x) => op.permute(x, [1, 2, 0]), [r(2, 3, 4)]);
  gradcheck('slice', (x) => op.slice(x, 1, 1, 3), [r(2, 4, 3)]);
  gradcheck('concat', (x, y) => op.concat([x, y], 1), [r(2, 1, 3), r(2, 2, 3)]);
  gradcheck('indexSelect', (x) => op.indexSelect(x, 0, Int32Array.from([2, 0, 2, 1])), [r(3, 4)]);
});

test('softmax and logSoftmax', () => {
  gradcheck('softmax', op.softmax, [r(3, 5)]);
  gradcheck('logSoftmax', op.logSoftmax, [r(3, 5)]);
});

test('embedding with repeated ids', () => {
  gradcheck('embedding', (w) => op.embedding(w, Int32Array.from([1, 3, 1, 0, 1, 2]), [2, 3]), [r(4, 3)]);
});

test('rmsNorm and layerNorm', () => {
  gradcheck('rmsNorm', (x, w) => op.rmsNorm(x, w, 1e-5), [r(3, 6), r(6)]);
  gradcheck('layerNorm', (x, w, b) => op.layerNorm(x, w, b, 1e-5), [r(3, 6), r(6), r(6)]);
});

test('rope with llama3 tables', () => {
  const { cos, sin } = op.ropeTables(8, 16, 10000, { type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8 }, 'float64');
  const pos = Int32Array.from([0, 5, 9, 15, 1, 2]);
  gradcheck('rope', (x) => op.rope(x, cos, sin, pos), [r(2, 3, 2, 8)]);
});

test('attention: causal, GQA, padding mask, segments, window', () => {
  const B = 2, T = 5, D = 4;
  const keyMask = Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
  gradcheck('attention gqa+mask', (q, k, v) => op.attention(q, k, v, { keyMask }), [r(B, T, 4, D), r(B, T, 2, D), r(B, T, 2, D)]);
  const segIds = Int32Array.from([0, 0, 1, 1, 1, 0, 1, 1, 2, 2]);
  gradcheck('attention segments', (q, k, v) => op.attention(q, k, v, { segIds }), [r(B, T, 2, D), r(B, T, 1, D), r(B, T, 1, D)]);
  gradcheck('attention window', (q, k, v) => op.attention(q, k, v, { window: 2 }), [r(1, T, 2, D), r(1, T, 2, D), r(1, T, 2, D)]);
});

test('tokenLogprobs: chunk not dividing V, ignored target', () => {
  const targets = Int32Array.from([3, -100, 0, 6]);
  gradcheck('tokenLogprobs', (h, w) => op.tokenLogprobs(h, w, targets, { chunk: 3 }).logp, [r(4, 5), r(7, 5)]);
});

test('dropout: identity in eval, masks and rescales in training', () => {
  const x = r(1000);
  assert.equal(op.dropout(x, 0.3, new Rng(1), false), x);
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
});
