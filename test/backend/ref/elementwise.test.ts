/** binary (broadcasting), unary values and derivatives, axpy, maskScale. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels as K } from '../../../src/backend/ref/index.js';
import type { BinaryOp, UnaryOp } from '../../../src/backend/types.js';
import { Rng } from '../../../src/tensor/rng.js';
import { close, rand } from './util.js';

const ALL: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'square', 'sigmoid', 'logsigmoid', 'tanh', 'relu', 'silu', 'gelu_tanh', 'scale', 'abs'];

test('binary: broadcasting over any axis matches per-element multi-index arithmetic', () => {
  const rng = new Rng(2);
  const shape = [2, 3, 1, 4];
  const n = 24;
  // a is (2, 3, 1, 4) contiguous; b is (3, 1) broadcast as (1, 3, 1, 1) → strides [0, 1, 0, 0]
  const as = [12, 4, 4, 1], bs = [0, 1, 0, 0];
  const a = rand(rng, n), b = rand(rng, 3);
  const fns: Record<BinaryOp, (x: number, y: number) => number> = { add: (x, y) => x + y, sub: (x, y) => x - y, mul: (x, y) => x * y, div: (x, y) => x / y };
  for (const op of ['add', 'sub', 'mul', 'div'] as BinaryOp[]) {
    const out = new Float64Array(n);
    K.binary(op, a, b, out, shape, as, bs);
    const want = new Float64Array(n);
    for (let i0 = 0; i0 < 2; i0++) for (let i1 = 0; i1 < 3; i1++) for (let i3 = 0; i3 < 4; i3++) {
      const o = i0 * 12 + i1 * 4 + i3;
      want[o] = fns[op](a[o], b[i1]);
    }
    close(`binary ${op}`, out, want, 0, 0);
  }
  // Scalar-like: rank 0, and a 0-size output does nothing.
  const o1 = new Float32Array(1);
  K.binary('div', new Float32Array([3]), new Float32Array([4]), o1, [], [], []);
  assert.equal(o1[0], 0.75);
  K.binary('add', new Float32Array(0), new Float32Array(0), new Float32Array(0), [0, 3], [3, 1], [3, 1]);
  // Both operands broadcast (outer product): out[i, j] = a[i]·b[j]
  const o2 = new Float64Array(6);
  K.binary('mul', new Float64Array([1, 2]), new Float64Array([3, 4, 5]), o2, [2, 3], [1, 0], [0, 1]);
  assert.deepEqual([...o2], [3, 4, 5, 6, 8, 10]);
});

test('unary: values match torch (float64), stable at ±1000, NaN propagates', () => {
  const x = [-1000, -50, -3, -1, 0, 0.5, 1, 3, 50, 1000];
  // torch 2.13, float64
  const want: Partial<Record<UnaryOp, number[]>> = {
    gelu_tanh: [-0, -0, -3.63739208177299433e-3, -1.58808009391723237e-1, 0, 3.45714009825143942e-1, 8.41191990608276763e-1, 2.99636260791822684, 50, 1000],
    logsigmoid: [-1000, -50, -3.04858735157374205, -1.31326168751822281, -6.93147180559945286e-1, -4.74076984180106686e-1, -3.13261687518222864e-1, -4.85873515737420617e-2, -1.92874984796391782e-22, 0],
    sigmoid: [0, 1.92874984796391806e-22, 4.74258731775667811e-2, 2.68941421369995104e-1, 0.5, 6.22459331201854593e-1, 7.31058578630004896e-1, 9.52574126822433365e-1, 1, 1],
    silu: [-0, -9.64374923981959028e-21, -1.42277619532700350e-1, -2.68941421369995104e-1, 0, 3.11229665600927297e-1, 7.31058578630004896e-1, 2.85772238046729976, 50, 1000],
    relu: [0, 0, 0, 0, 0, 0.5, 1, 3, 50, 1000],
    abs: [1000, 50, 3, 1, 0, 0.5, 1, 3, 50, 1000],
    neg: [1000, 50, 3, 1, -0, -0.5, -1, -3, -50, -1000],
    square: [1e6, 2500, 9, 1, 0, 0.25, 1, 9, 2500, 1e6],
    scale: [-2500, -125, -7.5, -2.5, 0, 1.25, 2.5, 7.5, 125, 2500],
  };
  for (const [op, w] of Object.entries(want) as [UnaryOp, number[]][]) {
    const out = new Float64Array(x.length);
    K.unary(op, Float64Array.from(x), out, x.length, 2.5);
    close(`unary ${op}`, out, w, 1e-300, 1e-14);
  }
  for (const op of ALL) {
    const out = new Float32Array(1);
    K.unary(op, new Float32Array([NaN]), out, 1, 2);
    assert.ok(Number.isNaN(out[0]), `${op}(NaN) should be NaN`);
  }
});

test('unary: out may alias x; exp/log/sqrt/tanh are the Math functions', () => {
  const x = new Float64Array([0.25, 1, 4]);
  K.unary('sqrt', x, x, 3, 0);
  assert.deepEqual([...x], [0.5, 1, 2]);
  for (const [op, f] of [['exp', Math.exp], ['log', Math.log], ['tanh', Math.tanh]] as const) {
    const y = new Float64Array(3);
    K.unary(op, new Float64Array([0.3, 1.7, 2.9]), y, 3, 0);
    assert.deepEqual([...y], [f(0.3), f(1.7), f(2.9)]);
  }
});

test('unaryBackward: every op matches central finite differences (float64)', () => {
  const rng = new Rng(3);
  const n = 40;
  for (const op of ALL) {
    const x = rand(rng, n, 4) as Float64Array;
    if (op === 'log' || op === 'sqrt') x.forEach((v, i) => (x[i] = Math.abs(v) + 0.2));
    if (op === 'relu' || op === 'abs') x.forEach((v, i) => (x[i] = Math.abs(v) < 1e-3 ? 0.5 : v)); // away from the kink
    const y = new Float64Array(n), gy = rand(rng, n) as Float64Array, gx = new Float64Array(n);
    K.unary(op, x, y, n, 1.7);
    K.unaryBackward(op, x, y, gy, gx, n, 1.7);
    const f = (v: number): number => {
      const o = new Float64Array(1);
      K.unary(op, new Float64Array([v]), o, 1, 1.7);
      return o[0];
    };
    const want = Array.from(x, (v, i) => (gy[i] * (f(v + 1e-6) - f(v - 1e-6))) / 2e-6);
    close(`unaryBackward ${op}`, gx, want, 1e-7, 1e-6);
  }
});

test('unaryBackward: special points (relu/abs at 0, logsigmoid tails), gx may alias gy', () => {
  const one = (op: UnaryOp, x: number, gy = 1): number => {
    const xs = new Float64Array([x]), ys = new Float64Array(1), g = new Float64Array([gy]);
    K.unary(op, xs, ys, 1, 1);
    K.unaryBackward(op, xs, ys, g, g, 1, 1); // gx aliases gy
    return g[0];
  };
  assert.equal(one('relu', 0), 0);
  assert.equal(one('relu', 2, 3), 3);
  assert.equal(one('abs', 0), 0);
  assert.equal(one('abs', -2, 3), -3);
  // d/dx log σ(x) = σ(−x): torch gives 1.92874984796391782e-22 at 50 (not 1 − σ(50) = 0), 1 at −1000.
  close('logsigmoid\' tails', [one('logsigmoid', 50), one('logsigmoid', -1000), one('logsigmoid', 1000)], [1.92874984796391782e-22, 1, 0], 1e-300, 1e-14);
  close('sigmoid\' at ±1000', [one('sigmoid', 1000), one('sigmoid', -1000)], [0, 0], 0, 0);
  assert.equal(one('scale', 123, 2), 2);
  assert.equal(one('sqrt', 4), 0.25);
  assert.equal(one('log', 4), 0.25);
});

test('axpy and maskScale', () => {
  const y = new Float64Array([1, 2, 3]);
  K.axpy(y, new Float64Array([10, 20, 30]), 3, -0.5);
  assert.deepEqual([...y], [-4, -8, -12]);
  const out = new Float32Array(4);
  K.maskScale(new Float32Array([1, 2, 3, 4]), new Uint8Array([1, 0, 1, 0]), out, 4, 2);
  assert.deepEqual([...out], [2, 0, 6, 0]);
  // torch computes x·mask·scale, so a dropped NaN stays NaN.
  K.maskScale(new Float32Array([NaN, NaN]), new Uint8Array([1, 0]), out, 2, 2);
  assert.ok(Number.isNaN(out[0]) && Number.isNaN(out[1]));
});
