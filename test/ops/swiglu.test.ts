/** Fused SwiGLU against finite differences and against the unfused silu(g)·u it replaces. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward } from '../../src/autograd/tape.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as op from '../../src/ops/index.js';
import { gradcheck, randn } from '../helpers/gradcheck.js';

const rng = new Rng(11);
const r = (...shape: number[]) => randn(shape, rng);

test('swiglu gradients (both inputs, and with a frozen up)', () => {
  gradcheck('swiglu', (g, u) => op.swiglu(g, u), [r(3, 7), r(3, 7)]);
  const up = r(2, 5);
  gradcheck('swiglu frozen up', (g) => op.swiglu(g, up), [r(2, 5)]);
});

test('swiglu equals mul(silu(g), u) in values and gradients; shapes must match', () => {
  const g = r(4, 6).param(), u = r(4, 6).param();
  const R = r(4, 6);
  const fused = op.swiglu(g, u);
  backward(op.sum(op.mul(fused, R)));
  const [gg, gu] = [Float64Array.from(g.grad!.data), Float64Array.from(u.grad!.data)];
  g.grad = u.grad = null;
  const slow = op.mul(op.silu(g), u);
  backward(op.sum(op.mul(slow, R)));
  fused.data.forEach((v, i) => assert.ok(Math.abs(v - slow.data[i]) < 1e-12, `out[${i}]`));
  gg.forEach((v, i) => assert.ok(Math.abs(v - g.grad!.data[i]) < 1e-12, `dg[${i}]`));
  gu.forEach((v, i) => assert.ok(Math.abs(v - u.grad!.data[i]) < 1e-12, `du[${i}]`));
  assert.throws(() => op.swiglu(r(2, 3), r(3, 2)), /swiglu: gate \[2, 3\] and up \[3, 2\] must have the same shape/);
});

test('geglu (Gemma: gelu_pytorch_tanh(g)·u): gradients, equals mul(geluTanh(g), u), shapes must match', () => {
  gradcheck('geglu', (g, u) => op.geglu(g, u), [randn([3, 7], rng, 3), r(3, 7)]);
  const up = r(2, 5);
  gradcheck('geglu frozen up', (g) => op.geglu(g, up), [r(2, 5)]);
  const g = randn([4, 6], rng, 3).param(), u = r(4, 6).param();
  const R = r(4, 6);
  const fused = op.geglu(g, u);
  backward(op.sum(op.mul(fused, R)));
  const [gg, gu] = [Float64Array.from(g.grad!.data), Float64Array.from(u.grad!.data)];
  g.grad = u.grad = null;
  const slow = op.mul(op.geluTanh(g), u);
  backward(op.sum(op.mul(slow, R)));
  fused.data.forEach((v, i) => assert.ok(Math.abs(v - slow.data[i]) < 1e-12, `out[${i}]`));
  gg.forEach((v, i) => assert.ok(Math.abs(v - g.grad!.data[i]) < 1e-12, `dg[${i}]`));
  gu.forEach((v, i) => assert.ok(Math.abs(v - u.grad!.data[i]) < 1e-12, `du[${i}]`));
  // gelu_pytorch_tanh of torch at a few points (torch.nn.functional.gelu(x, approximate='tanh'), float64)
  const x = Tensor.from([-3, -0.5, 0, 0.7, 2.5], [5], 'float64');
  const want = [-0.0036373920817729943, -0.15428599017485606, 0, 0.5305701347051167, 2.484915733910001];
  op.geglu(x, Tensor.full([5], 1, 'float64')).data.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-12, `gelu(${x.data[i]}) ${v} vs ${want[i]}`));
  assert.throws(() => op.geglu(r(2, 3), r(3, 2)), /geglu: gate \[2, 3\] and up \[3, 2\] must have the same shape/);
});
