/**
 * Gated MLP activations as one op: SwiGLU (llama: silu(gate)·up) and GeGLU (Gemma:
 * gelu_pytorch_tanh(gate)·up). The backward needs only gate and up, so act(gate) (an
 * intermediate-sized tensor per layer) is never kept for backward, and the forward and backward
 * are one pass each instead of three.
 */
import { ShapeError, fmtShape } from '../errors.js';
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import type { GatedAct } from '../backend/types.js';
import { K, sameDType } from './util.js';

function gated(name: string, act: GatedAct, g: Tensor, u: Tensor): Tensor {
  sameDType(name, g, u);
  if (g.size !== u.size || g.ndim !== u.ndim || g.shape.some((d, i) => d !== u.shape[i])) {
    throw new ShapeError(name, `gate ${fmtShape(g.shape)} and up ${fmtShape(u.shape)} must have the same shape`);
  }
  const out = Tensor.empty(g.shape, g.dtype);
  K(g).swiglu(g.data, u.data, out.data, g.size, act);
  return record(name, out, [g, u], (gy, needs) => {
    const gg = needs[0] ? Tensor.empty(g.shape, g.dtype) : null;
    const gu = needs[1] ? Tensor.empty(u.shape, u.dtype) : null;
    K(g).swigluBackward(g.data, u.data, gy.data, gg?.data ?? null, gu?.data ?? null, g.size, act);
    return [gg, gu];
  });
}

/** silu(g)·u = g·σ(g)·u, elementwise over equal shapes. */
export function swiglu(g: Tensor, u: Tensor): Tensor {
  return gated('swiglu', 'silu', g, u);
}

/** gelu_pytorch_tanh(g)·u = 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))·u (Gemma's MLP), elementwise. */
export function geglu(g: Tensor, u: Tensor): Tensor {
  return gated('geglu', 'gelu_tanh', g, u);
}
