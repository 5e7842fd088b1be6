/** torch.nn.utils.clip_grad_norm_: global L2 norm over all gradients, scaled by min(1, max/(norm+1e-6)). */
import type { Tensor } from '../tensor/tensor.js';
import { kernelsFor } from '../backend/index.js';

export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  let ss = 0;
  for (const p of params) if (p.grad) ss += kernelsFor(p.dtype).sumSquares(p.grad.data, p.grad.size);
  const norm = Math.sqrt(ss);
  if (maxNorm > 0) {
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    if (coef < 1) for (const p of params) if (p.grad) kernelsFor(p.dtype).unary('scale', p.grad.data, p.grad.data, p.grad.size, coef);
  }
  return norm;
}
