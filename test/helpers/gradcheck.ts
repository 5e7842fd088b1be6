/**
 * Finite-difference gradient checks in float64 (micrograd/tinygrad style): for f(inputs) → Tensor,
 * compare autograd's d/dx Σ(f·R) (R fixed random) with central differences, for every input.
 */
import assert from 'node:assert/strict';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/rng.js';
import { mul, sum } from '../../src/ops/index.js';

export function randn(shape: number[], rng: Rng, scale = 1, dtype: 'float32' | 'float64' = 'float64'): Tensor {
  const t = Tensor.empty(shape, dtype);
  for (let i = 0; i < t.size; i++) {
    // Box–Muller
    const u = Math.max(rng.nextFloat(), 1e-12), v = rng.nextFloat();
    t.data[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return t;
}

/**
 * Checks autograd's gradient of Σ f(inputs)·R (R fixed, random) against central differences
 * (x ± eps) for every element of every input (or those with `check[i]`): |num − ana| ≤ atol + rtol·|num|.
 * Inputs should be float64 so the ref kernels run and the differences are accurate.
 */
export function gradcheck(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { eps?: number; atol?: number; rtol?: number; seed?: number; check?: boolean[] } = {}): void {
  const eps = opts.eps ?? 1e-6, atol = opts.atol ?? 1e-6, rtol = opts.rtol ?? 1e-5;
  const rng = new Rng(opts.seed ?? 7);
  for (const x of inputs) {
    x.requiresGrad = true;
    x.grad = null;
  }
  const y0 = f(...inputs);
  const R = randn(y0.shape.slice(), rng);
  const loss = (...xs: Tensor[]) => sum(mul(f(...xs), R));
  backward(loss(...inputs));
  inputs.forEach((x, xi) => {
    if (opts.check && !opts.check[xi]) return;
    assert.ok(x.grad, `${name}: input ${xi} got no gradient`);
    for (let i = 0; i < x.size; i++) {
      const old = x.data[i];
      x.data[i] = old + eps;
      const lp = noGrad(() => loss(...inputs).item());
      x.data[i] = old - eps;
      const lm = noGrad(() => loss(...inputs).item());
      x.data[i] = old;
      const num = (lp - lm) / (2 * eps);
      const ana = x.grad!.data[i];
      assert.ok(Math.abs(num - ana) <= atol + rtol * Math.abs(num), `${name}: d/dinput${xi}[${i}] autograd ${ana} vs numeric ${num}`);
    }
  });
}
