/** RMSNorm and LayerNorm over the last axis. */
import { ShapeError, fmtShape } from '../errors.js';
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { K, sameDType } from './util.js';

function check(op: string, x: Tensor, w: Tensor): [number, number] {
  sameDType(op, x, w);
  const dim = x.shape[x.ndim - 1];
  if (w.ndim !== 1 || w.shape[0] !== dim) throw new ShapeError(op, `weight ${fmtShape(w.shape)} does not match the last dim of ${fmtShape(x.shape)}`);
  return [x.size / dim, dim];
}

/** w · x / sqrt(mean(x²) + eps) */
export function rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const [rows, dim] = check('rmsNorm', x, w);
  const out = Tensor.empty(x.shape, x.dtype);
  const rstd = Tensor.empty([rows], x.dtype);
  K(x).rmsnorm(x.data, w.data, out.data, rstd.data, rows, dim, eps);
  return record('rmsNorm', out, [x, w], (g, needs) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    const gw = needs[1] ? Tensor.zeros(w.shape, w.dtype) : null;
    K(x).rmsnormBackward(x.data, w.data, rstd.data, g.data, gx.data, gw ? gw.data : null, rows, dim);
    return [needs[0] ? gx : null, gw];
  });
}

/** (x − mean) / sqrt(var + eps) · w + b */
export function layerNorm(x: Tensor, w: Tensor, b: Tensor, eps: number): Tensor {
  const [rows, dim] = check('layerNorm', x, w);
  if (b.ndim !== 1 || b.shape[0] !== dim) throw new ShapeError('layerNorm', `bias ${fmtShape(b.shape)} does not match the last dim of ${fmtShape(x.shape)}`);
  const out = Tensor.empty(x.shape, x.dtype);
  const mean = Tensor.empty([rows], x.dtype);
  const rstd = Tensor.empty([rows], x.dtype);
  K(x).layernorm(x.data, w.data, b.data, out.data, mean.data, rstd.data, rows, dim, eps);
  return record('layerNorm', out, [x, w, b], (g, needs) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    const gw = needs[1] ? Tensor.zeros(w.shape, w.dtype) : null;
    const gb = needs[2] ? Tensor.zeros(b.shape, b.dtype) : null;
    K(x).layernormBackward(x.data, w.data, mean.data, rstd.data, g.data, gx.data, gw ? gw.data : null, gb ? gb.data : null, rows, dim);
    return [needs[0] ? gx : null, gw, gb];
  });
}
