/** AdamW against a hand-written two-step torch.optim.AdamW update. */
import { test } from 'node:test';
import { refKernels as K } from '../../../src/backend/ref/index.js';
import { close } from './util.js';

test('adamw: two steps equal the torch.optim.AdamW formulas', () => {
  const lr = 0.1, beta1 = 0.9, beta2 = 0.99, eps = 1e-8, wd = 0.01;
  const p0 = [1, -2, 0.5], g1 = [0.5, -1, 0], g2 = [-0.25, 2, 1e-3];
  const param = Float64Array.from(p0), m = new Float64Array(3), v = new Float64Array(3);
  // Hand computation, element by element.
  const want = p0.map((p, i) => {
    let mi = 0, vi = 0;
    for (const [step, g] of [[1, g1[i]], [2, g2[i]]]) {
      p *= 1 - lr * wd;
      mi = beta1 * mi + (1 - beta1) * g;
      vi = beta2 * vi + (1 - beta2) * g * g;
      const denom = Math.sqrt(vi) / Math.sqrt(1 - beta2 ** step) + eps;
      p -= (lr / (1 - beta1 ** step)) * (mi / denom);
    }
    return p;
  });
  K.adamw({ param, grad: Float64Array.from(g1), m, v, n: 3, lr, beta1, beta2, eps, weightDecay: wd, step: 1 });
  // step 1: m̂ = g, v̂ = g², so p ← p·(1 − lr·wd) − lr·g/(|g| + eps)
  close('step 1', param, p0.map((p, i) => p * (1 - lr * wd) - (lr * g1[i]) / (Math.abs(g1[i]) + eps)), 1e-15, 1e-14);
  K.adamw({ param, grad: Float64Array.from(g2), m, v, n: 3, lr, beta1, beta2, eps, weightDecay: wd, step: 2 });
  close('step 2', param, want, 1e-15, 1e-13);
  close('m', m, g1.map((g, i) => 0.9 * 0.1 * g + 0.1 * g2[i]), 1e-16, 1e-13);
  close('v', v, g1.map((g, i) => 0.99 * 0.01 * g * g + 0.01 * g2[i] * g2[i]), 1e-18, 1e-13);
});
