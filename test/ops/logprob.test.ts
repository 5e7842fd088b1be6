/** Fused token log-probs against the slow twin (matmul → logSoftmax → gather) and finite differences. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward } from '../../src/autograd/tape.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as op from '../../src/ops/index.js';
import { gradcheck, randn } from '../helpers/gradcheck.js';

const rng = new Rng(9);
const r = (...shape: number[]) => randn(shape, rng);

test('tokenLogprobs gradients: chunk not dividing V, chunk 1, chunk ≥ V, a negative target', () => {
  const targets = Int32Array.from([3, -100, 0, 6]);
  for (const chunk of [3, 1, 7, 100]) {
    gradcheck(`tokenLogprobs chunk ${chunk}`, (h, w) => op.tokenLogprobs(h, w, targets, { chunk }).logp, [r(4, 5), r(7, 5)]);
  }
});

test('tokenLogprobs with a frozen lm_head: gradient for h from softmax·w (no backward vocabulary pass)', () => {
  const targets = Int32Array.from([3, -100, 0, 6]);
  const w = r(7, 5); // frozen: requiresGrad stays false
  for (const chunk of [3, 1, 100]) gradcheck(`tokenLogprobs frozen w, chunk ${chunk}`, (h) => op.tokenLogprobs(h, w, targets, { chunk }).logp, [r(4, 5)]);
  // The same gradient as the path that differentiates w too.
  const h = r(4, 5).param(), g = () => Tensor.from([0.5, -1, 2, 0.25], [4], 'float64');
  backward(op.tokenLogprobs(h, w, targets, { chunk: 3 }).logp, g());
  const frozen = Float64Array.from(h.grad!.data);
  h.grad = null;
  w.requiresGrad = true;
  backward(op.tokenLogprobs(h, w, targets, { chunk: 3 }).logp, g());
  frozen.forEach((v, i) => assert.ok(Math.abs(v - h.grad!.data[i]) < 1e-12, `dh[${i}]: ${v} vs ${h.grad!.data[i]}`));
});

test('tokenLogprobs equals log_softmax(h·wᵀ) gathered, with stats; ignored rows give 0 and no gradient', () => {
  const N = 5, C = 4, V = 11;
  const targets = Int32Array.from([10, 0, -1, 5, 5]);
  const h = r(N, C).param(), w = r(V, C).param();
  const res = op.tokenLogprobs(h, w, targets, { chunk: 4, stats: true });
  const logits = op.matmul(h, w, { transB: true }); // (N, V)
  const lsm = op.logSoftmax(logits);
  for (let n = 0; n < N; n++) {
    const want = targets[n] < 0 ? 0 : lsm.data[n * V + targets[n]];
    assert.ok(Math.abs(res.logp.data[n] - want) < 1e-12, `logp[${n}]`);
    let ent = 0, sum = 0, best = 0;
    for (let v = 0; v < V; v++) {
      const lp = lsm.data[n * V + v];
      ent -= Math.exp(lp) * lp;
      sum += logits.data[n * V + v];
      if (logits.data[n * V + v] > logits.data[n * V + best]) best = v;
    }
    assert.ok(Math.abs(res.entropy![n] - ent) < 1e-12, `entropy[${n}]`);
    assert.ok(Math.abs(res.logitSum![n] - sum) < 1e-12, `logitSum[${n}]`);
    assert.equal(res.argmax![n], best, `argmax[${n}]`);
  }
  // backward() takes ownership of the seed gradient (returns it to the pool), so make one per call.
  const g = () => Tensor.from([0.5, -1, 2, 0.25, 1], [N], 'float64');
  backward(res.logp, g());
  const gh = Float64Array.from(h.grad!.data), gw = Float64Array.from(w.grad!.data);
  h.grad = w.grad = null;
  // slow twin: gather by a one-hot mask (ignored rows have an all-zero row)
  const onehot = Tensor.zeros([N, V], 'float64');
  targets.forEach((t, n) => t >= 0 && (onehot.data[n * V + t] = 1));
  const slow = op.sum(op.mul(op.logSoftmax(op.matmul(h, w, { transB: true })), onehot), 1);
  backward(slow, g());
  gh.forEach((v, i) => assert.ok(Math.abs(v - h.grad!.data[i]) < 1e-12, `dh[${i}]`));
  gw.forEach((v, i) => assert.ok(Math.abs(v - w.grad!.data[i]) < 1e-12, `dw[${i}]`));
  for (let c = 0; c < C; c++) assert.equal(gh[2 * C + c], 0, 'ignored row gets no gradient');
});

test('tokenLogprobs rejects a target ≥ V and mismatched shapes', () => {
  assert.throws(() => op.tokenLogprobs(r(2, 3), r(5, 3), Int32Array.from([1, 5])), /tokenLogprobs: target id 5 at row 1 is outside the vocabulary \[0, 5\)/);
  assert.throws(() => op.tokenLogprobs(r(2, 3), r(5, 4), Int32Array.from([1, 2])), /tokenLogprobs: hidden \[2, 3\] does not fit lm_head \[5, 4\]/);
  assert.throws(() => op.tokenLogprobs(r(2, 3), r(5, 3), Int32Array.from([1])), /tokenLogprobs: 1 targets for 2 rows/);
});

test('tokenLogprobs with a final-logit soft-cap (Gemma 2) equals log_softmax(cap·tanh(h·wᵀ / cap)) gathered, with stats and gradients', () => {
  const N = 5, C = 4, V = 11, cap = 1.5;
  const targets = Int32Array.from([10, 0, -1, 5, 5]);
  const big = (...s: number[]) => randn(s, rng, 2); // logits of a few units: tanh bends
  const h = big(N, C).param(), w = big(V, C).param();
  const res = op.tokenLogprobs(h, w, targets, { chunk: 4, stats: true, wpo: true, softcap: cap });
  const logits = op.softcap(op.matmul(h, w, { transB: true }), cap); // (N, V), as Gemma2ForCausalLM returns them
  const lsm = op.logSoftmax(logits);
  let moved = 0;
  const plain = op.tokenLogprobs(h, w, targets, { chunk: 4 });
  for (let n = 0; n < N; n++) {
    const want = targets[n] < 0 ? 0 : lsm.data[n * V + targets[n]];
    assert.ok(Math.abs(res.logp.data[n] - want) < 1e-12, `logp[${n}] ${res.logp.data[n]} vs ${want}`);
    moved = Math.max(moved, Math.abs(res.logp.data[n] - plain.logp.data[n]));
    let ent = 0, sum = 0, best = 0, lse2 = -Infinity;
    for (let v = 0; v < V; v++) {
      const lp = lsm.data[n * V + v], l = logits.data[n * V + v];
      ent -= Math.exp(lp) * lp;
      sum += l;
      if (l > logits.data[n * V + best]) best = v;
      lse2 = Math.max(lse2, 2 * l);
    }
    let s2 = 0;
    for (let v = 0; v < V; v++) s2 += Math.exp(2 * logits.data[n * V + v] - lse2);
    assert.ok(Math.abs(res.entropy![n] - ent) < 1e-12, `entropy[${n}]`);
    assert.ok(Math.abs(res.logitSum![n] - sum) < 1e-12, `logitSum[${n}]`);
    assert.ok(Math.abs(res.lse2![n] - (lse2 + Math.log(s2))) < 1e-12, `lse2[${n}]`);
    assert.equal(res.argmax![n], best, `argmax[${n}]`);
  }
  assert.ok(moved > 1e-2, `the cap changes the log-probs (${moved})`);
  for (const chunk of [3, 100]) gradcheck(`tokenLogprobs softcap chunk ${chunk}`, (a, b) => op.tokenLogprobs(a, b, targets, { chunk, softcap: cap }).logp, [big(N, C), big(V, C)]);
  // frozen lm_head (LoRA): the general backward for h, not the softmax·w shortcut
  const wf = big(V, C);
  gradcheck('tokenLogprobs softcap frozen w', (a) => op.tokenLogprobs(a, wf, targets, { chunk: 4, softcap: cap }).logp, [big(N, C)]);
  assert.throws(() => op.tokenLogprobs(h, w, targets, { softcap: -2 }), (e: Error) => e.message === 'tokenLogprobs: softcap -2 must be a non-negative number (0 = none)');
});
