/**
 * Fused lm_head + log_softmax + gather against the naive full (N, V) computation, for chunk sizes
 * that do and do not divide V, with statistics, negative targets, and the backward.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels as K } from '../../../src/backend/ref/index.js';
import { Rng } from '../../../src/tensor/rng.js';
import { close, dot, numericGrad, rand } from './util.js';

interface Naive { logits: Float64Array; logp: Float64Array; lse: Float64Array; entropy: Float64Array; logitSum: Float64Array; argmax: Int32Array; lse2: Float64Array }

/** Every statistic from the full logits matrix: logits = h·wᵀ, log_softmax, gather. */
function naive(h: Float64Array, w: Float64Array, targets: Int32Array, N: number, C: number, V: number): Naive {
  const logits = new Float64Array(N * V);
  for (let n = 0; n < N; n++) for (let v = 0; v < V; v++) logits[n * V + v] = dot(h.subarray(n * C, n * C + C), w.subarray(v * C, v * C + C));
  const r: Naive = { logits, logp: new Float64Array(N), lse: new Float64Array(N), entropy: new Float64Array(N), logitSum: new Float64Array(N), argmax: new Int32Array(N), lse2: new Float64Array(N) };
  for (let n = 0; n < N; n++) {
    const row = Array.from(logits.subarray(n * V, n * V + V));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, l) => s + Math.exp(l - m), 0));
    const logp = row.map((l) => l - lse);
    r.lse[n] = lse;
    r.logp[n] = targets[n] < 0 ? 0 : logp[targets[n]];
    r.entropy[n] = -logp.reduce((s, lp) => s + Math.exp(lp) * lp, 0);
    r.logitSum[n] = row.reduce((s, l) => s + l, 0);
    r.argmax[n] = row.indexOf(m);
    r.lse2[n] = 2 * m + Math.log(row.reduce((s, l) => s + Math.exp(2 * (l - m)), 0));
  }
  return r;
}

function problem(rng: Rng, N: number, C: number, V: number, scale = 1) {
  const h = rand(rng, N * C, scale) as Float64Array, w = rand(rng, V * C, scale) as Float64Array;
  const targets = Int32Array.from({ length: N }, (_, n) => (n % 4 === 3 ? -100 : rng.nextInt(V)));
  return { h, w, targets };
}

test('tokenLogprobs: logp, lse, entropy, logitSum, argmax, lse2 equal the naive full computation for every chunk size', () => {
  const rng = new Rng(12);
  const N = 9, C = 5, V = 11;
  const { h, w, targets } = problem(rng, N, C, V, 1.5);
  const want = naive(h, w, targets, N, C, V);
  for (const chunk of [1, 2, 3, 4, 5, 11, 64]) {
    const logp = new Float64Array(N).fill(NaN), lse = new Float64Array(N), entropy = new Float64Array(N), logitSum = new Float64Array(N), lse2 = new Float64Array(N);
    const argmax = new Int32Array(N).fill(-1);
    K.tokenLogprobs({ h, w, targets, N, C, V, chunk, logp, lse, entropy, logitSum, argmax, lse2 });
    close(`logp chunk=${chunk}`, logp, want.logp, 1e-13, 1e-12);
    close(`lse chunk=${chunk}`, lse, want.lse, 1e-13, 1e-12);
    close(`entropy chunk=${chunk}`, entropy, want.entropy, 1e-13, 1e-11);
    close(`logitSum chunk=${chunk}`, logitSum, want.logitSum, 1e-13, 1e-12);
    close(`lse2 chunk=${chunk}`, lse2, want.lse2, 1e-13, 1e-12);
    assert.deepEqual([...argmax], [...want.argmax], `argmax chunk=${chunk}`);
    for (let n = 3; n < N; n += 4) assert.equal(logp[n], 0, 'negative target → logp 0');
  }
  // Statistics are optional.
  const logp = new Float64Array(N), lse = new Float64Array(N);
  K.tokenLogprobs({ h, w, targets, N, C, V, chunk: 4, logp, lse, entropy: null, logitSum: null, argmax: null, lse2: null });
  close('logp without stats', logp, want.logp, 1e-13, 1e-12);
});

test('tokenLogprobs: float32 logits around ±1e4 stay finite; argmax takes the first of tied maxima across chunks', () => {
  // C = 1, h = 1: the logits are w itself.
  const w = new Float32Array([-1e4, 1e4 - 1, 1e4, 3, 1e4, 1e4 - 2]);
  const out = { logp: new Float32Array(1), lse: new Float32Array(1), entropy: new Float32Array(1), logitSum: new Float32Array(1), argmax: new Int32Array(1), lse2: new Float32Array(1) };
  for (const chunk of [1, 2, 4, 6]) {
    K.tokenLogprobs({ h: new Float32Array([1]), w, targets: new Int32Array([2]), N: 1, C: 1, V: 6, chunk, ...out });
    const e1 = Math.exp(-1), e2 = Math.exp(-2), z = 2 + e1 + e2;
    close(`lse chunk=${chunk}`, out.lse, [1e4 + Math.log(z)], 0, 1e-7);
    close(`logp chunk=${chunk}`, out.logp, [-Math.log(z)], 1e-5, 1e-5);
    close(`entropy chunk=${chunk}`, out.entropy, [Math.log(z) + (e1 + 2 * e2) / z], 1e-3, 1e-3);
    assert.equal(out.argmax[0], 2, `first maximum wins, chunk=${chunk}`);
  }
});

test('tokenLogprobs: a NaN in h makes its row NaN (argmax points at the NaN like torch) and leaves other rows intact', () => {
  const h = new Float64Array([1, NaN, 0.5, 0.25]), w = new Float64Array([1, 0, 0, 1, 1, 1]); // N=2, C=2, V=3
  const out = { logp: new Float64Array(2), lse: new Float64Array(2), entropy: new Float64Array(2), logitSum: new Float64Array(2), argmax: new Int32Array(2), lse2: new Float64Array(2) };
  K.tokenLogprobs({ h, w, targets: new Int32Array([0, 1]), N: 2, C: 2, V: 3, chunk: 2, ...out });
  for (const k of ['logp', 'lse', 'entropy', 'logitSum', 'lse2'] as const) {
    assert.ok(Number.isNaN(out[k][0]), `${k}[0] should be NaN`);
    assert.ok(Number.isFinite(out[k][1]), `${k}[1] should be finite`);
  }
  assert.equal(out.argmax[0], 0); // every logit of row 0 is NaN: the first one
  assert.equal(out.argmax[1], 2); // logits [0.5, 0.25, 0.75]
  // A NaN logit after a larger finite one (column 2 of 3, its own chunk): torch's argmax returns the NaN's index.
  const w2 = new Float64Array([5, 0, 1, 0, NaN, 0]);
  K.tokenLogprobs({ h: new Float64Array([1, 0]), w: w2, targets: new Int32Array([0]), N: 1, C: 2, V: 3, chunk: 1, ...out, lse2: null });
  assert.equal(out.argmax[0], 2);
  assert.ok(Number.isNaN(out.logp[0]) && Number.isNaN(out.entropy[0]));
});

test('tokenLogprobsBackward: gh and gw equal the naive gradient and finite differences; negative targets give none', () => {
  const rng = new Rng(13);
  const N = 8, C = 4, V = 10;
  const { h, w, targets } = problem(rng, N, C, V);
  const gLogp = rand(rng, N) as Float64Array;
  const lse = new Float64Array(N);
  K.tokenLogprobs({ h, w, targets, N, C, V, chunk: 3, logp: new Float64Array(N), lse, entropy: null, logitSum: null, argmax: null, lse2: null });
  // Naive: dlogits = g·(onehot − softmax), zero rows for negative targets; gh = dl·w, gw = dlᵀ·h.
  const nv = naive(h, w, targets, N, C, V);
  const ghWant = new Float64Array(N * C), gwWant = new Float64Array(V * C);
  for (let n = 0; n < N; n++) {
    if (targets[n] < 0) continue;
    for (let v = 0; v < V; v++) {
      const dl = gLogp[n] * ((v === targets[n] ? 1 : 0) - Math.exp(nv.logits[n * V + v] - nv.lse[n]));
      for (let c = 0; c < C; c++) {
        ghWant[n * C + c] += dl * w[v * C + c];
        gwWant[v * C + c] += dl * h[n * C + c];
      }
    }
  }
  const f = () => dot(naive(h, w, targets, N, C, V).logp, gLogp);
  close('naive gh vs finite differences', ghWant, numericGrad(h, f), 1e-8, 1e-6);
  close('naive gw vs finite differences', gwWant, numericGrad(w, f), 1e-8, 1e-6);
  for (const chunk of [1, 3, 4, 10, 32]) {
    const gh = new Float64Array(N * C).fill(NaN), gw = new Float64Array(V * C).fill(NaN); // overwritten
    K.tokenLogprobsBackward({ h, w, targets, N, C, V, chunk, lse, gLogp, gh, gw });
    close(`gh chunk=${chunk}`, gh, ghWant, 1e-14, 1e-12);
    close(`gw chunk=${chunk}`, gw, gwWant, 1e-14, 1e-12);
    for (let n = 3; n < N; n += 4) assert.ok(gh.subarray(n * C, n * C + C).every((x) => x === 0));
  }
  // Either output may be skipped.
  const gh = new Float64Array(N * C);
  K.tokenLogprobsBackward({ h, w, targets, N, C, V, chunk: 4, lse, gLogp, gh, gw: null });
  close('gh only', gh, ghWant, 1e-14, 1e-12);
  const gw = new Float64Array(V * C);
  K.tokenLogprobsBackward({ h, w, targets, N, C, V, chunk: 4, lse, gLogp, gh: null, gw });
  close('gw only', gw, gwWant, 1e-14, 1e-12);
});
