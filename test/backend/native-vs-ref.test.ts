/**
 * Every native kernel against the reference kernel on random inputs: odd sizes, size-1 axes, large
 * magnitudes (softmax / log-sum-exp overflow) and NaN propagation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBackend } from '../../src/backend/native/index.js';
import { refBackend, refKernels } from '../../src/backend/ref/index.js';
import type { Kernels, UnaryOp } from '../../src/backend/types.js';
import { Rng } from '../../src/tensor/rng.js';

const native = loadNativeBackend();
const N = native.backend?.kernels as Kernels;
const skip = native.backend ? false : `native core not built (${native.error})`;
const rng = new Rng(11);
const rand = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rng.nextFloat() * 2 - 1) * scale);
const ids = (n: number, max: number) => Int32Array.from({ length: n }, () => rng.nextInt(max));

function close(name: string, a: ArrayLike<number>, b: ArrayLike<number>, rtol = 1e-5, atol = 1e-5): void {
  assert.equal(a.length, b.length, `${name}: length`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (x === y) continue;
    if (Number.isNaN(y)) {
      assert.ok(Number.isNaN(x), `${name}[${i}]: native ${x}, ref NaN`);
      continue;
    }
    assert.ok(Math.abs(x - y) <= atol + rtol * Math.abs(y), `${name}[${i}]: native ${x} vs ref ${y}`);
  }
}

/** Runs fn on both backends with fresh copies of `outs` and compares them. */
function both(name: string, outs: Float32Array[], fn: (k: Kernels, o: Float32Array[]) => void, rtol?: number, atol?: number): void {
  const a = outs.map((o) => o.slice()), b = outs.map((o) => o.slice());
  fn(N, a);
  fn(refKernels, b);
  a.forEach((x, i) => close(`${name}#${i}`, x, b[i], rtol, atol));
}

test('matmul: transposes, strides, broadcast batch, beta', { skip }, () => {
  for (const [bt, m, n, k] of [[1, 1, 1, 1], [3, 17, 5, 129], [2, 64, 33, 7], [1, 130, 1, 70]]) {
    for (const ta of [false, true]) for (const tb of [false, true]) for (const [sa, beta] of [[m * k, 0], [0, 0.5]]) {
      const a = rand((sa ? bt : 1) * m * k), b = rand(bt * k * n), c = rand(bt * m * n);
      both(`matmul ${bt}x${m}x${n}x${k} ${ta}${tb} sa=${sa} beta=${beta}`, [c], (K, [o]) => K.matmul({ a, b, c: o, batch: bt, m, n, k, transA: ta, transB: tb, strideA: sa, strideB: k * n, strideC: m * n, alpha: 0.7, beta }), 1e-4, 1e-4);
    }
  }
  // beta = 0 ignores NaN in C
  const c = new Float32Array(4).fill(NaN);
  N.matmul({ a: rand(4), b: rand(4), c, batch: 1, m: 2, n: 2, k: 2, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
  assert.ok(c.every((v) => Number.isFinite(v)));
});

test('unary and unaryBackward, all ops, with NaN', { skip }, () => {
  const ops: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'square', 'sigmoid', 'logsigmoid', 'tanh', 'relu', 'silu', 'gelu_tanh', 'scale', 'abs'];
  for (const op of ops) {
    const x = rand(1001, 30);
    if (op === 'log' || op === 'sqrt') x.forEach((v, i) => (x[i] = Math.abs(v) + 0.1));
    if (op === 'exp') x.forEach((v, i) => (x[i] = v / 3));
    x[5] = NaN;
    const y = new Float32Array(x.length);
    refKernels.unary(op, x, y, x.length, 1.7);
    const gy = rand(x.length);
    both(`unary ${op}`, [new Float32Array(x.length)], (K, [o]) => K.unary(op, x, o, x.length, 1.7), 2e-5, 1e-6);
    both(`unaryBackward ${op}`, [new Float32Array(x.length)], (K, [o]) => K.unaryBackward(op, x, y, gy, o, x.length, 1.7), 2e-5, 1e-6);
  }
});

test('swiglu forward/backward (large |gate|, a NaN, one gradient skipped), across thread blocks', { skip }, () => {
  for (const n of [1001, 40000]) {
    const g = rand(n, 30), u = rand(n), gy = rand(n);
    g[5] = NaN;
    both(`swiglu ${n}`, [new Float32Array(n)], (K, [o]) => K.swiglu(g, u, o, n), 2e-5, 1e-6);
    both(`swigluBackward ${n}`, [new Float32Array(n), new Float32Array(n)], (K, [a, b]) => K.swigluBackward(g, u, gy, a, b, n), 2e-5, 1e-6);
    both(`swigluBackward gate only ${n}`, [new Float32Array(n)], (K, [a]) => K.swigluBackward(g, u, gy, a, null, n), 2e-5, 1e-6);
    // GeGLU (gelu_tanh gate): the vectorised tanh against Math.tanh
    both(`geglu ${n}`, [new Float32Array(n)], (K, [o]) => K.swiglu(g, u, o, n, 'gelu_tanh'), 2e-5, 1e-6);
    both(`gegluBackward ${n}`, [new Float32Array(n), new Float32Array(n)], (K, [a, b]) => K.swigluBackward(g, u, gy, a, b, n, 'gelu_tanh'), 2e-5, 1e-6);
    both(`gegluBackward up only ${n}`, [new Float32Array(n)], (K, [b]) => K.swigluBackward(g, u, gy, null, b, n, 'gelu_tanh'), 2e-5, 1e-6);
  }
  const g = rand(40, 3), u = rand(40);
  both('geglu small gates', [new Float32Array(40)], (K, [o]) => K.swiglu(g, u, o, 40, 'gelu_tanh'), 2e-5, 1e-6);
});

test('binary broadcasting, axpy, maskScale, sumAxis, sumSquares', { skip }, () => {
  for (const op of ['add', 'sub', 'mul', 'div'] as const) {
    const a = rand(3 * 5 * 7), b = rand(5 * 1);
    b.forEach((v, i) => (b[i] = v + 2));
    both(`binary ${op}`, [new Float32Array(105)], (K, [o]) => K.binary(op, a, b, o, [3, 5, 7], [35, 7, 1], [0, 1, 0]));
  }
  const x = rand(100003), y = rand(100003);
  both('axpy', [y], (K, [o]) => K.axpy(o, x, x.length, -0.3));
  const mask = Uint8Array.from({ length: 999 }, () => rng.nextInt(2));
  const xm = x.slice(0, 999);
  xm[0] = NaN; // a dropped NaN stays NaN (x·mask·scale), as torch
  both('maskScale', [new Float32Array(999)], (K, [o]) => K.maskScale(xm, mask, o, 999, 1.25));
  for (const [outer, dim, inner] of [[1, 1, 1], [3, 17, 1], [2, 5, 300], [1, 1000, 7]]) {
    both(`sumAxis ${outer},${dim},${inner}`, [new Float32Array(outer * inner)], (K, [o]) => K.sumAxis(x, o, outer, dim, inner), 1e-5, 1e-4);
  }
  const s1 = N.sumSquares(x, x.length), s2 = refKernels.sumSquares(x, x.length);
  assert.ok(Math.abs(s1 - s2) / s2 < 1e-9);
});

test('softmax / log_softmax with ±1e4 magnitudes and NaN rows', { skip }, () => {
  const rows = 7, cols = 129;
  const x = rand(rows * cols, 1e4);
  x[3 * cols + 2] = NaN;
  for (const log of [false, true]) {
    both(`softmax log=${log}`, [new Float32Array(rows * cols)], (K, [o]) => K.softmax(x, o, rows, cols, log), 1e-5, 1e-5);
    const y = new Float32Array(rows * cols);
    refKernels.softmax(x, y, rows, cols, log);
    const gy = rand(rows * cols);
    both(`softmaxBackward log=${log}`, [new Float32Array(rows * cols)], (K, [o]) => K.softmaxBackward(y, gy, o, rows, cols, log), 1e-4, 1e-4);
  }
});

test('embedding, rmsnorm, layernorm, rope', { skip }, () => {
  const V = 13, C = 9, n = 31;
  const w = rand(V * C), id = ids(n, V);
  both('embedding', [new Float32Array(n * C)], (K, [o]) => K.embedding(w, id, o, n, C));
  const g = rand(n * C);
  both('embeddingBackward', [rand(V * C)], (K, [o]) => K.embeddingBackward(g, id, o, n, C));
  const rows = 33, dim = 17, x = rand(rows * dim, 3), nw = rand(dim), nb = rand(dim), gy = rand(rows * dim);
  both('rmsnorm', [new Float32Array(rows * dim), new Float32Array(rows)], (K, [o, r]) => K.rmsnorm(x, nw, o, r, rows, dim, 1e-5));
  const rstd = new Float32Array(rows);
  refKernels.rmsnorm(x, nw, new Float32Array(rows * dim), rstd, rows, dim, 1e-5);
  both('rmsnormBackward', [new Float32Array(rows * dim), rand(dim)], (K, [gx, gw]) => K.rmsnormBackward(x, nw, rstd, gy, gx, gw, rows, dim), 1e-4, 1e-5);
  both('layernorm', [new Float32Array(rows * dim), new Float32Array(rows), new Float32Array(rows)], (K, [o, m, r]) => K.layernorm(x, nw, nb, o, m, r, rows, dim, 1e-5), 1e-5, 1e-5);
  const mean = new Float32Array(rows), rs = new Float32Array(rows);
  refKernels.layernorm(x, nw, nb, new Float32Array(rows * dim), mean, rs, rows, dim, 1e-5);
  both('layernormBackward', [new Float32Array(rows * dim), rand(dim), rand(dim)], (K, [gx, gw, gb]) => K.layernormBackward(x, nw, mean, rs, gy, gx, gw, gb, rows, dim), 1e-4, 1e-5);
  const H = 3, D = 8, P = 20, cos = rand(P * D), sin = rand(P * D), pos = ids(rows, P), xr = rand(rows * H * D);
  for (const inv of [false, true]) both(`rope inverse=${inv}`, [new Float32Array(rows * H * D)], (K, [o]) => K.rope(xr, o, cos, sin, pos, rows, H, D, inv));
  // partial rotary (Phi-3): tables (P, R) for the first R = 6 of D = 8 dims; the rest copied
  const R = 6, pc = rand(P * R), ps = rand(P * R);
  for (const inv of [false, true]) both(`rope partial inverse=${inv}`, [rand(rows * H * D)], (K, [o]) => K.rope(xr, o, pc, ps, pos, rows, H, D, inv, R));
});

test('attention forward/backward: GQA, padding, segments (contiguous blocks, a returning id, shared-prompt parents, a later parent), window, fully masked rows, non-causal', { skip }, () => {
  for (const [B, T, Hq, Hkv, D, window] of [[2, 9, 4, 2, 8, 0], [1, 1, 1, 1, 3, 0], [3, 17, 3, 1, 5, 4]]) {
    const q = rand(B * T * Hq * D, 2), k = rand(B * T * Hkv * D, 2), v = rand(B * T * Hkv * D);
    const keyMask = Uint8Array.from({ length: B * T }, (_, i) => (i % T < T - 2 || T < 3 ? 1 : 0));
    const segIds = Int32Array.from({ length: B * T }, (_, i) => Math.floor((i % T) / 5));
    // id 0 again after id 1: the kernel cannot use per-run blocks and must mask instead
    const returning = Int32Array.from({ length: B * T }, (_, i) => Math.floor((i % T) / 3) % 2);
    // Shared prompts: runs of 5 ids, every odd run the child of the run before it (a tree block);
    // `orphans` name a parent that comes later, which the kernel must handle by masking.
    const parents = Int32Array.from({ length: B * T }, (_, i) => (Math.floor((i % T) / 5) % 2 ? Math.floor((i % T) / 5) - 1 : -1));
    const orphans = Int32Array.from({ length: B * T }, (_, i) => (Math.floor((i % T) / 5) === 0 && T > 5 ? 1 : -1));
    const cases = [[null, null, true, null], [keyMask, null, true, null], [keyMask, segIds, true, null], [null, segIds, false, null], [keyMask, returning, true, null]] as const;
    const treeCases = window ? [] : ([[keyMask, segIds, true, parents], [null, segIds, true, orphans]] as const);
    // Gemma 2's soft-cap (scores of q, k ~ ±2 reach it) under padding, segments and parents
    const capCases = ([[keyMask, segIds, true, window ? null : parents, 1.5], [null, null, false, null, 0.7]] as const);
    for (const [km, sg, causal, sp, softcap] of [...cases.map((c) => [...c, 0] as const), ...treeCases.map((c) => [...c, 0] as const), ...capCases]) {
      const args = { q, k, v, B, T, Hq, Hkv, D, scale: 1 / Math.sqrt(D), causal, keyMask: km, segIds: sg, segParents: sp, window, softcap };
      both(`attention ${B},${T},${Hq},${Hkv},${D}`, [new Float32Array(q.length), new Float32Array(B * Hq * T)], (K, [out, lse]) => K.attention({ ...args, out, lse }), 1e-4, 1e-5);
      const out = new Float32Array(q.length), lse = new Float32Array(B * Hq * T);
      refKernels.attention({ ...args, out, lse });
      const gOut = rand(q.length);
      both('attentionBackward', [new Float32Array(q.length), new Float32Array(k.length), new Float32Array(v.length)], (K, [gq, gk, gv]) => K.attentionBackward({ ...args, out, lse, gOut, gq, gk, gv }), 1e-4, 1e-4);
    }
  }
});

test('tokenLogprobs forward/backward: chunks, ignored targets, expected embedding, ±1e4 logits, NaN', { skip }, () => {
  for (const [Nr, C, V, chunk] of [[5, 7, 50, 16], [1, 3, 1, 1], [33, 16, 1000, 300]]) {
    const h = rand(Nr * C, Nr === 1 ? 1 : 3), w = rand(V * C, 3), targets = ids(Nr, V);
    targets[0] = -100;
    const outs = () => [new Float32Array(Nr), new Float32Array(Nr), new Float32Array(Nr), new Float32Array(Nr), new Float32Array(Nr)];
    const argA = new Int32Array(Nr), argB = new Int32Array(Nr);
    const a = outs(), b = outs();
    const expA = new Float32Array(Nr * C), expB = new Float32Array(Nr * C);
    N.tokenLogprobs({ h, w, targets, N: Nr, C, V, chunk, logp: a[0], lse: a[1], entropy: a[2], logitSum: a[3], argmax: argA, lse2: a[4], expected: expA });
    refKernels.tokenLogprobs({ h, w, targets, N: Nr, C, V, chunk, logp: b[0], lse: b[1], entropy: b[2], logitSum: b[3], argmax: argB, lse2: b[4], expected: expB });
    a.forEach((x, i) => close(`tokenLogprobs out ${i}`, x, b[i], 1e-4, 1e-4));
    close('tokenLogprobs expected (softmax·w)', expA, expB, 1e-4, 1e-4);
    assert.deepEqual(argA, argB);
    const gLogp = rand(Nr);
    both('tokenLogprobsBackward', [new Float32Array(Nr * C), new Float32Array(V * C)], (K, [gh, gw]) => K.tokenLogprobsBackward({ h, w, targets, N: Nr, C, V, chunk, lse: b[1], gLogp, gh, gw }), 1e-4, 1e-4);
    // Gemma 2's final-logit soft-cap (logits of tens against cap 20: bent, not saturated, so argmax has no float32 ties): forward stats and backward
    const sa = outs(), sb = outs();
    N.tokenLogprobs({ h, w, targets, N: Nr, C, V, chunk, logp: sa[0], lse: sa[1], entropy: sa[2], logitSum: sa[3], argmax: argA, lse2: sa[4], softcap: 20 });
    refKernels.tokenLogprobs({ h, w, targets, N: Nr, C, V, chunk, logp: sb[0], lse: sb[1], entropy: sb[2], logitSum: sb[3], argmax: argB, lse2: sb[4], softcap: 20 });
    sa.forEach((x, i) => close(`softcap tokenLogprobs out ${i}`, x, sb[i], 1e-4, 1e-4));
    assert.deepEqual(argA, argB);
    both('softcap tokenLogprobsBackward', [new Float32Array(Nr * C), rand(V * C)], (K, [gh, gw]) => K.tokenLogprobsBackward({ h, w, targets, N: Nr, C, V, chunk, lse: sb[1], gLogp, gh, gw, accumulateGw: true, softcap: 20 }), 1e-4, 1e-4);
    assert.throws(() => N.tokenLogprobs({ h, w, targets, N: Nr, C, V, chunk, logp: sa[0], lse: sa[1], entropy: null, logitSum: null, argmax: null, lse2: null, expected: expA, softcap: 5 }), /expected embedding is not computed with a softcap/);
  }
  // Logits ~±1e4 must not overflow; NaN in h makes that row NaN.
  const h = Float32Array.from([100, -50, 30, 1, 2, 3]), w = Float32Array.from([80, 10, -90, 40, 0, 0, 1, 1, 1]);
  const t = Int32Array.from([1, 2]);
  const a = [new Float32Array(2), new Float32Array(2)], b = [new Float32Array(2), new Float32Array(2)];
  h[4] = NaN;
  const amA = new Int32Array(2), amB = new Int32Array(2);
  N.tokenLogprobs({ h, w, targets: t, N: 2, C: 3, V: 3, chunk: 2, logp: a[0], lse: a[1], entropy: null, logitSum: null, argmax: amA, lse2: null });
  refKernels.tokenLogprobs({ h, w, targets: t, N: 2, C: 3, V: 3, chunk: 2, logp: b[0], lse: b[1], entropy: null, logitSum: null, argmax: amB, lse2: null });
  assert.deepEqual(amA, amB, 'argmax, first NaN in a NaN row');
  close('large logits', a[0], b[0], 1e-5, 1e-3);
  assert.ok(Number.isFinite(a[0][0]) && Number.isNaN(a[0][1]));
});

test('bf16 matmul precision: native and ref round operands the same way; the result moves by bf16 rounding only', { skip }, () => {
  const nb = native.backend!;
  const setBoth = (p: 'float32' | 'bfloat16') => {
    nb.setMatmulPrecision(p);
    refBackend.setMatmulPrecision(p);
  };
  try {
    const [bt, m, n, k] = [2, 37, 19, 300];
    const a = rand(bt * m * k), b = rand(k * n), c0 = rand(bt * m * n);
    const run = (K: Kernels, ta: boolean, tb: boolean, beta: number) => {
      const c = c0.slice();
      K.matmul({ a, b, c, batch: bt, m, n, k, transA: ta, transB: tb, strideA: m * k, strideB: 0, strideC: m * n, alpha: 0.5, beta });
      return c;
    };
    for (const ta of [false, true]) for (const tb of [false, true]) {
      setBoth('bfloat16');
      const nat = run(N, ta, tb, 0.25), ref = run(refKernels, ta, tb, 0.25);
      setBoth('float32');
      const f32 = run(refKernels, ta, tb, 0.25);
      close(`bf16 matmul ${ta}${tb}`, nat, ref, 1e-5, 1e-5);
      // operands rounded to 8 mantissa bits: each product is off by ≤ 2^-8 relative, so
      // |Δ| ≤ 0.5·Σ|a||b|·2^-8 ≈ 0.5·300·0.25·2^-8; the errors are random, so far less in practice.
      let maxd = 0;
      for (let i = 0; i < f32.length; i++) maxd = Math.max(maxd, Math.abs(nat[i] - f32[i]));
      assert.ok(maxd > 1e-4 && maxd < 0.15, `bf16 vs f32 max diff ${maxd} is not the size of bf16 rounding`);
    }
    // The fused log-prob goes through the same GEMM on both backends.
    const [Nr, C, V, chunk] = [9, 40, 700, 128];
    const h = rand(Nr * C, 2), w = rand(V * C, 2), targets = ids(Nr, V);
    setBoth('bfloat16');
    const la = [new Float32Array(Nr), new Float32Array(Nr)], lb = [new Float32Array(Nr), new Float32Array(Nr)];
    N.tokenLogprobs({ h, w, targets, N: Nr, C, V, chunk, logp: la[0], lse: la[1], entropy: null, logitSum: null, argmax: null, lse2: null });
    refKernels.tokenLogprobs({ h, w, targets, N: Nr, C, V, chunk, logp: lb[0], lse: lb[1], entropy: null, logitSum: null, argmax: null, lse2: null });
    close('bf16 tokenLogprobs', la[0], lb[0], 1e-4, 1e-4);
    const gLogp = rand(Nr);
    both('bf16 tokenLogprobsBackward', [new Float32Array(Nr * C), new Float32Array(V * C)], (K, [gh, gw]) => K.tokenLogprobsBackward({ h, w, targets, N: Nr, C, V, chunk, lse: lb[1], gLogp, gh, gw }), 1e-4, 1e-4);
    // the soft-cap on the bf16 route: capped after the bf16 GEMM on both backends
    N.tokenLogprobs({ h, w, targets, N: Nr, C, V, chunk, logp: la[0], lse: la[1], entropy: null, logitSum: null, argmax: null, lse2: null, softcap: 3 });
    refKernels.tokenLogprobs({ h, w, targets, N: Nr, C, V, chunk, logp: lb[0], lse: lb[1], entropy: null, logitSum: null, argmax: null, lse2: null, softcap: 3 });
    close('bf16 softcap tokenLogprobs', la[0], lb[0], 1e-4, 1e-4);
    both('bf16 softcap tokenLogprobsBackward', [new Float32Array(Nr * C), new Float32Array(V * C)], (K, [gh, gw]) => K.tokenLogprobsBackward({ h, w, targets, N: Nr, C, V, chunk, lse: lb[1], gLogp, gh, gw, softcap: 3 }), 1e-4, 1e-4);
  } finally {
    setBoth('float32');
  }
});

test('adamw matches the reference update', { skip }, () => {
  const n = 70001, g = rand(n);
  both('adamw', [rand(n), rand(n, 0.1), Float32Array.from(rand(n), Math.abs)], (K, [p, m, v]) => K.adamw({ param: p, grad: g, m, v, n, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 3 }), 1e-5, 1e-6);
});
