/**
 * SwiGLU, the llama MLP's gate: silu(gate)·up as one op. Its backward needs only gate and up, so
 * silu(gate) (an intermediate-sized tensor per layer) is never kept for backward, and the forward
 * and backward are one pass each instead of three.
 */
import { ShapeError, fmtShape } from '../errors.js';
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { K, sameDType } from './util.js';

/** silu(g)·u = g·σ(g)·u, elementwise over equal shapes. */
export function swiglu(g: Tensor, u: Tensor): Tensor {
  sameDType('swiglu', g, u);
  if (g.size !== u.size || g.ndim !== u.ndim || g.shape.some((d, i) => d !== u.shape[i])) {
    throw new ShapeError('swiglu', `gate ${fmtShape(g.shape)} and up ${fmtShape(u.shape)} must have the same shape`);
  }
  const out = Tensor.empty(g.shape, g.dtype);
  K(g).swiglu(g.data, u.data, out.data, g.size);
  return record('swiglu', out, [g, u], (gy, needs) => {
    const gg = needs[0] ? Tensor.empty(g.shape, g.dtype) : null;
    const gu = needs[1] ? Tensor.empty(u.shape, u.dtype) : null;
    K(g).swigluBackward(g.data, u.data, gy.data, gg?.data ?? null, gu?.data ?? null, g.size);
    return [gg, gu];
  });
}
