/** matmul against a naive triple loop: every transpose combination, batch strides (incl. 0), alpha/beta. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels as K } from '../../../src/backend/ref/index.js';
import { Rng } from '../../../src/tensor/rng.js';
import { close, rand, type FArray } from './util.js';

/** C[bi] = alpha·op(A[bi])·op(B[bi]) + beta·C[bi], element by element. */
function naive(a: FArray, b: FArray, c: FArray, batch: number, m: number, n: number, k: number, ta: boolean, tb: boolean, sa: number, sb: number, sc: number, alpha: number, beta: number): Float64Array {
  const out = Float64Array.from(c);
  for (let bi = 0; bi < batch; bi++)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let kk = 0; kk < k; kk++) {
          const av = ta ? a[bi * sa + kk * m + i] : a[bi * sa + i * k + kk];
          const bv = tb ? b[bi * sb + j * k + kk] : b[bi * sb + kk * n + j];
          s += av * bv;
        }
        const o = bi * sc + i * n + j;
        out[o] = alpha * s + (beta === 0 ? 0 : beta * c[o]);
      }
  return out;
}

test('matmul: all transposes, batch strides incl. broadcast (stride 0), alpha/beta, f32 and f64', () => {
  const rng = new Rng(1);
  for (const f32 of [false, true]) {
    for (const [batch, m, n, k] of [[1, 1, 1, 1], [2, 3, 4, 5], [3, 5, 1, 7], [1, 7, 6, 1], [2, 4, 4, 0]]) {
      for (const ta of [false, true]) for (const tb of [false, true]) {
        for (const [bcastA, bcastB] of [[false, false], [true, false], [false, true]]) {
          for (const [alpha, beta] of [[1, 0], [0.5, 1], [-2, 0.25]]) {
            const sa = bcastA ? 0 : m * k, sb = bcastB ? 0 : k * n, sc = m * n;
            const a = rand(rng, Math.max(1, (bcastA ? 1 : batch) * m * k), 1, f32);
            const b = rand(rng, Math.max(1, (bcastB ? 1 : batch) * k * n), 1, f32);
            const c = rand(rng, batch * m * n, 1, f32);
            const want = naive(a, b, c, batch, m, n, k, ta, tb, sa, sb, sc, alpha, beta);
            K.matmul({ a, b, c, batch, m, n, k, transA: ta, transB: tb, strideA: sa, strideB: sb, strideC: sc, alpha, beta });
            const tol = f32 ? 1e-6 : 1e-14;
            close(`matmul f32=${f32} ${batch}x${m}x${n}x${k} ta=${ta} tb=${tb} sa=${sa} sb=${sb} a=${alpha} b=${beta}`, c, f32 ? Float32Array.from(want) : want, tol, tol);
          }
        }
      }
    }
  }
});

test('matmul: hand-checked 2x2, and beta = 0 ignores NaN in C', () => {
  const a = new Float64Array([1, 2, 3, 4]), b = new Float64Array([5, 6, 7, 8]);
  const c = new Float64Array(4).fill(NaN);
  K.matmul({ a, b, c, batch: 1, m: 2, n: 2, k: 2, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
  assert.deepEqual([...c], [19, 22, 43, 50]);
  K.matmul({ a, b, c, batch: 1, m: 2, n: 2, k: 2, transA: true, transB: true, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 1 });
  // Aᵀ·Bᵀ = [[23, 31], [34, 46]]
  assert.deepEqual([...c], [42, 53, 77, 96]);
});

test('matmul: NaN in A or B propagates to the outputs it touches', () => {
  const a = new Float64Array([NaN, 0, 0, 1]), b = new Float64Array([1, 2, 3, 4]);
  const c = new Float64Array(4);
  K.matmul({ a, b, c, batch: 1, m: 2, n: 2, k: 2, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
  assert.ok(Number.isNaN(c[0]) && Number.isNaN(c[1]));
  assert.deepEqual([c[2], c[3]], [3, 4]);
});
