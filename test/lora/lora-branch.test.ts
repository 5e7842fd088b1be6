/**
 * The LoRA branch as one graph node (lora/lora-branch.ts):
 * - finite differences in float64 for x, A, B and the base's weight and bias, with dropout and without;
 * - the same output bits and the same gradients as the op-by-op graph (add(base, s·B(A(dropout(x))))),
 *   on float32 and stored (nf4) bases, native and reference kernels;
 * - what the graph keeps until backward: the base output alone (the op-by-op graph also kept the
 *   dropout output, x·Aᵀ, B's output, its scaling and the sum);
 * - under gradient checkpointing the mask is replayed: the checkpointed gradients are the plain ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addLoraBranch } from '../../src/lora/lora-branch.js';
import { add, dropout, linear, linearStored, mul, scale, sum } from '../../src/ops/index.js';
import { backward } from '../../src/autograd/tape.js';
import { checkpoint } from '../../src/autograd/checkpoint.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { poolStats, scope } from '../../src/tensor/pool.js';
import { nativeAvailable, setBackend } from '../../src/backend/index.js';
import { quantizeWeight } from '../../src/quant/storage.js';
import { gradcheck, randn } from '../helpers/gradcheck.js';

const opByOp = (y: Tensor, x: Tensor, A: Tensor, B: Tensor, s: number, p: number, rng: Rng) => add(y, scale(linear(linear(dropout(x, p, rng, true), A), B), s));

test('lora branch: finite differences (float64) for x, A, B, W and the bias, with and without dropout', () => {
  const rng = new Rng(3);
  for (const p of [0, 0.3]) {
    const x = randn([2, 3, 5], rng), W = randn([4, 5], rng), b = randn([4], rng), A = randn([2, 5], rng), B = randn([4, 2], rng);
    // A fresh generator per call: every evaluation draws the same mask.
    gradcheck(`lora branch p=${p}`, (x, W, b, A, B) => addLoraBranch(linear(x, W, b), x, A, B, 0.7, p, new Rng(11), true), [x, W, b, A, B]);
  }
});

const backends = nativeAvailable() ? (['native', 'ref'] as const) : (['ref'] as const);
for (const backend of backends) {
  test(`lora branch (${backend}): the op-by-op graph's output bits and gradients, float32 and nf4 bases`, () => {
    setBackend(backend);
    try {
      const rng = new Rng(5);
      const rows = 24, I = 64, O = 48, r = 8;
      const f32 = (shape: number[]) => randn(shape, rng, 0.5, 'float32');
      const Wd = f32([O, I]);
      const stored = quantizeWeight(Wd.data as Float32Array, O, I, 'nf4', { nested: true });
      for (const base of ['f32', 'nf4'] as const) {
        for (const p of [0, 0.25]) {
          const x0 = f32([rows, I]), A = f32([r, I]), B = f32([O, r]), R = f32([rows, O]);
          const run = (fused: boolean) => {
            const x = new Tensor(Float32Array.from(x0.data), x0.shape);
            x.requiresGrad = true;
            A.grad = null;
            B.grad = null;
            A.requiresGrad = B.requiresGrad = true;
            const y0 = base === 'f32' ? linear(x, Wd) : linearStored(x, stored);
            const rg = new Rng(9);
            const y = fused ? addLoraBranch(y0, x, A, B, 2, p, rg, true) : opByOp(y0, x, A, B, 2, p, rg);
            const out = Float32Array.from(y.data);
            backward(sum(mul(y, R)));
            return { out, gx: Float32Array.from(x.grad!.data), gA: Float32Array.from(A.grad!.data), gB: Float32Array.from(B.grad!.data) };
          };
          const a = run(true), e = run(false);
          assert.deepEqual(a.out, e.out, `${base} p=${p}: output bits`);
          for (const k of ['gx', 'gA', 'gB'] as const) {
            let m = 0;
            for (let i = 0; i < e[k].length; i++) m = Math.max(m, Math.abs(a[k][i] - e[k][i]) / (1 + Math.abs(e[k][i])));
            assert.ok(m <= 1e-6, `${base} p=${p} ${k}: ${m}`);
          }
        }
      }
    } finally {
      setBackend(nativeAvailable() ? 'native' : 'ref');
    }
  });
}

test('lora branch: until backward the graph keeps the base output alone, not the branch\'s five intermediates', () => {
  const rng = new Rng(8);
  const rows = 512, I = 256, O = 384, r = 16;
  const f32 = (shape: number[]) => randn(shape, rng, 0.5, 'float32');
  const W = f32([O, I]), A = f32([r, I]).param(), B = f32([O, r]).param();
  const x = f32([rows, I]).param();
  const kept = (fused: boolean) =>
    scope(() => {
      const before = poolStats().liveBytes;
      const y0 = linear(x, W);
      const y = fused ? addLoraBranch(y0, x, A, B, 2, 0.1, new Rng(1), true) : opByOp(y0, x, A, B, 2, 0.1, new Rng(1));
      const bytes = poolStats().liveBytes - before;
      backward(sum(y));
      return bytes;
    });
  const fused = kept(true), plain = kept(false);
  // The base output: rows·O floats (its pool bucket may round it up by < 12.5%).
  assert.ok(fused >= 4 * rows * O && fused < 4 * rows * O * 1.125, `fused keeps ${fused} bytes`);
  // Op by op: also the dropout output (I), x·Aᵀ (r), B's output, its scaling and the sum (3·O).
  assert.ok(plain >= fused + 4 * rows * (I + r + 3 * O), `op by op keeps ${plain} bytes`);
});

test('lora branch under gradient checkpointing: the mask is replayed, the gradients are the plain ones', () => {
  const rng = new Rng(4);
  const f32 = (shape: number[]) => randn(shape, rng, 0.5, 'float32');
  const W = f32([12, 10]), A = f32([3, 10]).param(), B = f32([12, 3]).param(), x0 = f32([7, 10]), R = f32([7, 12]);
  const grads = (ckpt: boolean) => {
    A.grad = B.grad = null;
    const x = new Tensor(Float32Array.from(x0.data), x0.shape).param();
    const gen = new Rng(21);
    const f = (h: Tensor) => addLoraBranch(linear(h, W), h, A, B, 1.5, 0.4, gen, true);
    const y = ckpt ? checkpoint(f, x, [A, B]) : f(x);
    backward(sum(mul(y, R)));
    return [x.grad!.data, A.grad!.data, B.grad!.data].map((d) => Float32Array.from(d));
  };
  const [c, p] = [grads(true), grads(false)];
  for (let i = 0; i < 3; i++) assert.deepEqual(c[i], p[i], `input ${i}`);
});
