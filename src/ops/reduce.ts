/** sum / mean over axes (or everything), with broadcast-back backward. */
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { K, normAxis, broadcastStrides, collapse, sumAxesKeepDims } from './util.js';

function axesOf(op: string, x: Tensor, axis: number | number[] | undefined): number[] {
  if (axis === undefined) return x.shape.map((_, i) => i);
  return [...new Set((Array.isArray(axis) ? axis : [axis]).map((a) => normAxis(op, a, x.ndim)))].sort((a, b) => a - b);
}

/** Broadcasts g (reduced shape with kept dims) back to `shape`, divided by `divisor`. */
function expand(g: Tensor, keptShape: number[], shape: readonly number[], divisor: number): Tensor {
  const out = Tensor.empty(shape, g.dtype);
  const d = Tensor.full([], divisor, g.dtype);
  const [s, [gs, ds]] = collapse(shape.slice(), broadcastStrides(keptShape, shape), broadcastStrides([], shape));
  K(g).binary('div', g.data, d.data, out.data, s, gs, ds);
  d.release();
  return out;
}

/**
 * Σ over `axes`, divided by `divisor` (the count, for mean). torch's CPU mean is sum(...).div_(n) and
 * its backward g.expand(...).div_(n), so this divides (not multiplies by 1/n) to match bit for bit.
 */
function reduceSum(op: string, x: Tensor, axis: number | number[] | undefined, keepdim: boolean, mean: boolean): Tensor {
  const axes = axesOf(op, x, axis);
  let cur = sumAxesKeepDims(x, axes);
  const keptShape = cur.shape.slice();
  const divisor = mean ? axes.reduce((a, d) => a * x.shape[d], 1) : 1;
  if (divisor !== 1) {
    const d = Tensor.full([1], divisor, x.dtype);
    const q = Tensor.empty(keptShape, x.dtype);
    K(x).binary('div', cur.data, d.data, q.data, [cur.size], [1], [0]);
    d.release();
    if (cur !== x) cur.release();
    cur = q;
  }
  const outShape = keepdim ? keptShape : x.shape.filter((_, i) => !axes.includes(i));
  const out = cur === x ? Tensor.from(x.data, outShape, x.dtype) : new Tensor(cur.data, outShape, cur);
  return record(op, out, [x], (g) => [expand(g, keptShape, x.shape, divisor)]);
}

/** Σ over `axis` (all when omitted). */
export function sum(x: Tensor, axis?: number | number[], keepdim = false): Tensor {
  return reduceSum('sum', x, axis, keepdim, false);
}

/** Mean over `axis` (all when omitted). */
export function mean(x: Tensor, axis?: number | number[], keepdim = false): Tensor {
  return reduceSum('mean', x, axis, keepdim, true);
}
