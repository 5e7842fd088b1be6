/** torch.optim.AdamW (single-tensor path): decoupled decay, bias-corrected moments. */
import type { AdamWArgs } from '../types.js';

export function adamw(p: AdamWArgs): void {
  const { param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step } = p;
  const bc1 = 1 - beta1 ** step;
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  const stepSize = lr / bc1;
  const decay = 1 - lr * weightDecay;
  for (let i = 0; i < n; i++) {
    const g = grad[i];
    param[i] *= decay;
    m[i] += (1 - beta1) * (g - m[i]); // torch: m.lerp_(g, 1 − β1)
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    param[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
  }
}
