/** Small helpers shared by the reference-kernel tests: seeded random arrays, closeness, finite differences. */
import assert from 'node:assert/strict';
import { Rng } from '../../../src/tensor/rng.js';

export type FArray = Float32Array | Float64Array;

/** Uniform in (−scale, scale), as float64 unless a float32 array is asked for. */
export function rand(rng: Rng, n: number, scale = 1, f32 = false): FArray {
  const out = f32 ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.nextFloat() * 2 - 1) * scale;
  return out;
}

/** |a − b| ≤ atol + rtol·|b| elementwise; NaN matches NaN, ±Infinity matches itself. */
export function close(name: string, a: ArrayLike<number>, b: ArrayLike<number>, atol = 1e-12, rtol = 1e-10): void {
  assert.equal(a.length, b.length, `${name}: length ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
    assert.ok(Math.abs(x - y) <= atol + rtol * Math.abs(y), `${name}[${i}]: got ${x}, expected ${y}`);
  }
}

/** Central difference of the scalar f() with respect to every element of x (x is perturbed in place). */
export function numericGrad(x: Float64Array, f: () => number, eps = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const old = x[i];
    x[i] = old + eps;
    const fp = f();
    x[i] = old - eps;
    const fm = f();
    x[i] = old;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

/** Σ a·b */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
