/** softmax / log_softmax: normalisation, ±1e4 magnitudes, NaN and −∞ rows, backward vs finite differences. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels as K } from '../../../src/backend/ref/index.js';
import { Rng } from '../../../src/tensor/rng.js';
import { close, dot, numericGrad, rand } from './util.js';

test('softmax rows sum to 1 and equal exp(log_softmax); hand-checked row', () => {
  const rng = new Rng(4);
  const rows = 5, cols = 7;
  const x = rand(rng, rows * cols, 3);
  const p = new Float64Array(rows * cols), lp = new Float64Array(rows * cols);
  K.softmax(x, p, rows, cols, false);
  K.softmax(x, lp, rows, cols, true);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += p[r * cols + j];
    assert.ok(Math.abs(s - 1) < 1e-14);
  }
  close('exp(log_softmax)', lp.map(Math.exp), p, 1e-15, 1e-13);
  const q = new Float64Array(3);
  K.softmax(new Float64Array([0, Math.log(2), Math.log(3)]), q, 1, 3, false);
  close('softmax [1,2,3]/6', q, [1 / 6, 2 / 6, 3 / 6], 1e-16, 1e-14);
});

test('softmax: ±1e4 magnitudes do not overflow (float32), NaN and all −∞ rows give NaN like torch', () => {
  const x = new Float32Array([1e4, 1e4 - 1, -1e4, -1e4, -1e4 + 2, -1e4 + 1]);
  const p = new Float32Array(6), lp = new Float32Array(6);
  K.softmax(x, p, 2, 3, false);
  K.softmax(x, lp, 2, 3, true);
  const e = Math.exp(-1);
  close('softmax big', p, [1 / (1 + e), e / (1 + e), 0, Math.exp(-2) / (1 + e + Math.exp(-2)), 1 / (1 + e + Math.exp(-2)), e / (1 + e + Math.exp(-2))], 1e-7, 1e-6);
  assert.ok(lp.every(Number.isFinite) && Math.abs(lp[0] + Math.log1p(e)) < 1e-6);
  const y = new Float64Array(6);
  K.softmax(new Float64Array([1, NaN, 2, -Infinity, -Infinity, -Infinity]), y, 2, 3, false);
  assert.ok(y.every(Number.isNaN));
  // Some −∞ entries in a finite row are exact zeros (log: −∞).
  K.softmax(new Float64Array([0, -Infinity, 0]), y, 1, 3, true);
  assert.deepEqual([...y.subarray(0, 3)], [-Math.LN2, -Infinity, -Math.LN2]);
});

test('softmaxBackward matches finite differences of Σ R·softmax(x) (both forms)', () => {
  const rng = new Rng(5);
  const rows = 3, cols = 6, n = rows * cols;
  for (const log of [false, true]) {
    const x = rand(rng, n, 2) as Float64Array, R = rand(rng, n);
    const y = new Float64Array(n), gx = new Float64Array(n);
    const f = () => {
      K.softmax(x, y, rows, cols, log);
      return dot(y, R);
    };
    const want = numericGrad(x, f);
    K.softmax(x, y, rows, cols, log);
    K.softmaxBackward(y, R, gx, rows, cols, log);
    close(`softmaxBackward log=${log}`, gx, want, 1e-8, 1e-6);
  }
});
