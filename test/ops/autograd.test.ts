/** Autograd behaviour through the ops: accumulation, frozen inputs skipping their kernels, scopes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward, noGrad, record } from '../../src/autograd/tape.js';
import { refKernels } from '../../src/backend/ref/index.js';
import type { Kernels } from '../../src/backend/types.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { scope } from '../../src/tensor/pool.js';
import { Rng } from '../../src/tensor/rng.js';
import * as op from '../../src/ops/index.js';
import { gradcheck, randn } from '../helpers/gradcheck.js';

const rng = new Rng(3);
const r = (...shape: number[]) => randn(shape, rng);

/**
 * Runs fn with the named ref kernels (what float64 tensors use) wrapped to record their calls;
 * returns the recorded argument lists per kernel.
 */
function spy<T>(names: (keyof Kernels)[], fn: () => T): Record<string, unknown[][]> {
  const calls: Record<string, unknown[][]> = {};
  const table = refKernels as unknown as Record<string, (...a: unknown[]) => unknown>;
  const saved = names.map((n) => table[n]);
  names.forEach((n, i) => {
    calls[n] = [];
    table[n] = (...a: unknown[]) => {
      calls[n].push(a);
      return saved[i](...a);
    };
  });
  try {
    fn();
  } finally {
    names.forEach((n, i) => (table[n] = saved[i]));
  }
  return calls;
}

test('a reused tensor accumulates gradient from every use', () => {
  const x = Tensor.from([1, 2, 3], [3], 'float64').param();
  // y = Σ x·x + Σ 3x → dy/dx = 2x + 3
  backward(op.add(op.sum(op.mul(x, x)), op.sum(op.scale(x, 3))));
  assert.deepEqual(Array.from(x.grad!.data), [5, 7, 9]);
  // A second backward accumulates into .grad
  backward(op.sum(x));
  assert.deepEqual(Array.from(x.grad!.data), [6, 8, 10]);
});

test('an intermediate used twice accumulates before flowing on', () => {
  const x = Tensor.from([0.5, -1], [2], 'float64').param();
  const h = op.tanh(x); // used by two branches
  backward(op.sum(op.add(op.mul(h, h), op.scale(h, 2))));
  // d/dx (h² + 2h) = (2h + 2)(1 − h²)
  x.data.forEach((v, i) => {
    const t = Math.tanh(v);
    assert.ok(Math.abs(x.grad!.data[i] - (2 * t + 2) * (1 - t * t)) < 1e-15);
  });
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

test('frozen weights (LoRA base) get no gradient and cost no weight-gradient kernel work', () => {
  // linear: x trainable, W and b frozen → backward runs exactly one GEMM (dx) and no bias reduction
  const x = r(2, 3, 4).param();
  const w = r(5, 4), b = r(5);
  const loss = op.sum(op.linear(x, w, b));
  const lin = spy(['matmul', 'sumAxis'], () => backward(loss));
  assert.equal(lin.matmul.length, 1, 'one GEMM (dx)');
  assert.equal(lin.sumAxis.length, 0, 'no bias-gradient reduction');
  assert.equal(w.grad, null);
  assert.equal(b.grad, null);
  assert.ok(x.grad);

  // linear: W trainable, x frozen (the first layer's input) → only the dW GEMM
  const w2 = r(5, 4).param();
  const y2 = op.sum(op.linear(r(3, 4), w2));
  const lin2 = spy(['matmul'], () => backward(y2));
  assert.equal(lin2.matmul.length, 1);

  // matmul with a frozen b
  const a3 = r(2, 3, 4).param();
  const y3 = op.sum(op.matmul(a3, r(4, 5)));
  const mm = spy(['matmul'], () => backward(y3));
  assert.equal(mm.matmul.length, 1);

  // mul with a frozen factor: one binary product for the trainable side (+ the sum's expand)
  const m = r(3).param();
  const y4 = op.sum(op.mul(m, r(3)));
  const bin = spy(['binary'], () => backward(y4));
  assert.equal(bin.binary.length, 2);

  // tokenLogprobs with a frozen lm_head: the forward makes softmax·w and backward needs no kernel
  const h = r(3, 4).param();
  const fw = spy(['tokenLogprobs'], () => op.sum(op.tokenLogprobs(h, r(6, 4), Int32Array.from([1, 2, 5]), { chunk: 4 }).logp));
  assert.ok((fw.tokenLogprobs[0][0] as { expected: unknown }).expected, 'forward asked for softmax·w');
  const lp = op.sum(op.tokenLogprobs(h, r(6, 4), Int32Array.from([1, 2, 5]), { chunk: 4 }).logp);
  const tl = spy(['tokenLogprobsBackward', 'matmul'], () => backward(lp));
  assert.equal(tl.tokenLogprobsBackward.length + tl.matmul.length, 0, 'no vocabulary pass in backward');
  assert.ok(h.grad);

  // norms with frozen weights: the kernels get null weight-gradient buffers
  const xn = r(2, 5).param();
  const yr = op.sum(op.rmsNorm(xn, r(5), 1e-6));
  const rn = spy(['rmsnormBackward'], () => backward(yr));
  assert.equal(rn.rmsnormBackward[0][5], null);
  const yl = op.sum(op.layerNorm(xn, r(5), r(5), 1e-6));
  const ln = spy(['layernormBackward'], () => backward(yl));
  assert.equal(ln.layernormBackward[0][6], null);
  assert.equal(ln.layernormBackward[0][7], null);

  // concat with one frozen part
  const c1 = r(2, 2).param(), c2 = r(2, 3);
  backward(op.sum(op.concat([c1, c2], 1)));
  assert.equal(c2.grad, null);
  assert.ok(c1.grad);

  // an op on frozen inputs only records nothing at all
  const e = op.embedding(r(4, 3), Int32Array.from([1, 2]), [2]);
  assert.equal(e.requiresGrad, false);
  assert.equal(e.node, null);
});

test('noGrad records nothing', () => {
  const x = Tensor.from([1, 2], [2]).param();
  const y = noGrad(() => op.mul(x, x));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
});

test('the gradient checker catches a wrong backward', () => {
  // y = x² with a deliberately wrong backward (x instead of 2x)
  const bad = (x: Tensor) => {
    const out = Tensor.empty(x.shape, x.dtype);
    refKernels.unary('square', x.data, out.data, x.size, 0);
    return record('badSquare', out, [x], (g) => [op.mul(g.detach(), x.detach())]);
  };
  assert.throws(() => gradcheck('badSquare', bad, [r(3)]), /badSquare: d\/dinput0\[0\] autograd/);
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

test('a tied embedding / lm_head with an existing .grad is accumulated into in place, as a fresh gradient plus the old one', () => {
  const rng = new Rng(21);
  const V = 11, C = 4, N = 6;
  const w0 = randn([V, C], rng), g0 = randn([V, C], rng);
  const ids = Int32Array.from({ length: N }, () => rng.nextInt(V));
  const targets = Int32Array.from({ length: N }, () => rng.nextInt(V));
  const run = (preset: boolean) => {
    const w = Tensor.from(w0.data, w0.shape).param();
    if (preset) w.grad = Tensor.from(g0.data, g0.shape).keep();
    const grad = w.grad;
    scope(() => backward(op.sum(op.tokenLogprobs(op.embedding(w, ids, [N]), w, targets, { chunk: 4 }).logp)));
    if (preset) assert.equal(w.grad, grad, 'the existing gradient buffer is reused');
    return w.grad!.data;
  };
  const fresh = run(false), summed = run(true);
  for (let i = 0; i < fresh.length; i++) assert.ok(Math.abs(summed[i] - (fresh[i] + g0.data[i])) < 1e-5, `grad[${i}]: ${summed[i]} vs ${fresh[i] + g0.data[i]}`);
});
