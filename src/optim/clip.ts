/**
 * torch.nn.utils.clip_grad_norm_ as transformers' Trainer uses it: the global L2 norm over every
 * gradient, then each gradient scaled by min(1, max_norm / (norm + 1e-6)). Returns the pre-clip norm
 * (the logged grad_norm). maxNorm ≤ 0 or Infinity only measures, as the Trainer does when
 * max_grad_norm ≤ 0 (it calls clip_grad_norm_ with inf). A NaN norm scales gradients to NaN, as torch.
 *
 * @example const gradNorm = clipGradNorm(opt.tensors(), 1.0);
 */
import type { Tensor } from '../tensor/tensor.js';
import { kernelsFor } from '../backend/index.js';

export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  const norm = gradNorm(params);
  if (maxNorm > 0 && maxNorm !== Infinity) {
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    if (!(coef >= 1)) for (const p of params) if (p.grad) kernelsFor(p.dtype).unary('scale', p.grad.data, p.grad.data, p.grad.size, coef);
  }
  return norm;
}

/** √(Σ over every gradient element of g²); parameters without a gradient are ignored. */
export function gradNorm(params: readonly Tensor[]): number {
  let ss = 0;
  for (const p of params) if (p.grad) ss += kernelsFor(p.dtype).sumSquares(p.grad.data, p.grad.size);
  return Math.sqrt(ss);
}
