/** rmsnorm (HF LlamaRMSNorm) and layernorm (torch, biased variance): values and gradients. */
import { test } from 'node:test';
import { refKernels as K } from '../../../src/backend/ref/index.js';
import { Rng } from '../../../src/tensor/rng.js';
import { close, dot, numericGrad, rand } from './util.js';

test('rmsnorm and layernorm: hand-checked rows', () => {
  const x = new Float64Array([1, 2, 3, 4, -2, 0, 0, 2]);
  const w = new Float64Array([1, 2, 1, 0.5]), b = new Float64Array([0, 1, 0, -1]);
  const out = new Float64Array(8), rstd = new Float64Array(2), mean = new Float64Array(2);
  K.rmsnorm(x, w, out, rstd, 2, 4, 1e-6);
  const r0 = 1 / Math.sqrt(7.5 + 1e-6), r1 = 1 / Math.sqrt(2 + 1e-6);
  close('rms rstd', rstd, [r0, r1]);
  close('rms out', out, [r0, 4 * r0, 3 * r0, 2 * r0, -2 * r1, 0, 0, r1]);
  K.layernorm(x, w, b, out, mean, rstd, 2, 4, 1e-5);
  // row 0: mean 2.5, biased var 1.25; row 1: mean 0, var 2
  const l0 = 1 / Math.sqrt(1.25 + 1e-5), l1 = 1 / Math.sqrt(2 + 1e-5);
  close('ln mean', mean, [2.5, 0]);
  close('ln rstd', rstd, [l0, l1]);
  close('ln out', out, [-1.5 * l0, -0.5 * l0 * 2 + 1, 0.5 * l0, 1.5 * l0 * 0.5 - 1, -2 * l1, 1, 0, 2 * l1 * 0.5 - 1]);
});

test('rmsnormBackward: gx overwritten and gw accumulated, vs finite differences', () => {
  const rng = new Rng(6);
  const rows = 3, dim = 5, eps = 1e-5;
  const x = rand(rng, rows * dim, 2) as Float64Array, w = rand(rng, dim) as Float64Array, R = rand(rng, rows * dim);
  const out = new Float64Array(rows * dim), rstd = new Float64Array(rows);
  const f = () => {
    K.rmsnorm(x, w, out, rstd, rows, dim, eps);
    return dot(out, R);
  };
  const wantX = numericGrad(x, f), wantW = numericGrad(w, f);
  f();
  const gx = new Float64Array(rows * dim).fill(NaN), gw = new Float64Array(dim).fill(1);
  K.rmsnormBackward(x, w, rstd, R as Float64Array, gx, gw, rows, dim);
  close('rms gx', gx, wantX, 1e-8, 1e-6);
  close('rms gw', gw, wantW.map((v) => v + 1), 1e-8, 1e-6);
  K.rmsnormBackward(x, w, rstd, R as Float64Array, gx, null, rows, dim); // gw = null skips it
  close('rms gx again', gx, wantX, 1e-8, 1e-6);
});

test('layernormBackward: gx overwritten, gw and gb accumulated, vs finite differences', () => {
  const rng = new Rng(7);
  const rows = 3, dim = 6, eps = 1e-5;
  const x = rand(rng, rows * dim, 2) as Float64Array, w = rand(rng, dim) as Float64Array, b = rand(rng, dim) as Float64Array;
  const R = rand(rng, rows * dim) as Float64Array;
  const out = new Float64Array(rows * dim), mean = new Float64Array(rows), rstd = new Float64Array(rows);
  const f = () => {
    K.layernorm(x, w, b, out, mean, rstd, rows, dim, eps);
    return dot(out, R);
  };
  const wantX = numericGrad(x, f), wantW = numericGrad(w, f), wantB = numericGrad(b, f);
  f();
  const gx = new Float64Array(rows * dim).fill(NaN), gw = new Float64Array(dim).fill(2), gb = new Float64Array(dim).fill(-1);
  K.layernormBackward(x, w, mean, rstd, R, gx, gw, gb, rows, dim);
  close('ln gx', gx, wantX, 1e-8, 1e-6);
  close('ln gw', gw, wantW.map((v) => v + 2), 1e-8, 1e-6);
  close('ln gb', gb, wantB.map((v) => v - 1), 1e-8, 1e-6);
});
