/** sum / mean over axes (or everything), with broadcast-back backward. */
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { K, normAxis, broadcastStrides, collapse, sumAxesKeepDims } from './util.js';

function axesOf(op: string, x: Tensor, axis: number | number[] | undefined): number[] {
  if (axis === undefined) return x.shape.map((_, i) => i);
  return [...new Set((Array.isArray(axis) ? axis : [axis]).map((a) => normAxis(op, a, x.ndim)))].sort((a, b) => a - b);
}

/** Broadcasts g (reduced shape with kept dims) back to `shape`, times `factor`. */
function expand(g: Tensor, keptShape: number[], shape: readonly number[], factor: number): Tensor {
  const out = Tensor.empty(shape, g.dtype);
  const ones = Tensor.full([], factor, g.dtype);
  const [s, [gs, os]] = collapse(shape.slice(), broadcastStrides(keptShape, shape), broadcastStrides([], shape));
  K(g).binary('mul', g.data, ones.data, out.data, s, gs, os);
  ones.release();
  return out;
}

function reduceSum(op: string, x: Tensor, axis: number | number[] | undefined, keepdim: boolean, factor: (n: number) => number): Tensor {
  const axes = axesOf(op, x, axis);
  const cur = sumAxesKeepDims(x, axes);
  const shape = cur.shape.slice();
  const n = axes.reduce((a, d) => a * x.shape[d], 1);
  const f = factor(n);
  if (f !== 1) for (let i = 0; i < cur.data.length; i++) cur.data[i] *= f;
  const keptShape = shape;
  const outShape = keepdim ? keptShape : x.shape.filter((_, i) => !axes.includes(i));
  const out = cur === x ? Tensor.from(x.data, outShape, x.dtype) : new Tensor(cur.data, outShape, cur);
  return record(op, out, [x], (g) => [expand(g, keptShape, x.shape, f)]);
}

/** Σ over `axis` (all when omitted). */
export function sum(x: Tensor, axis?: number | number[], keepdim = false): Tensor {
  return reduceSum('sum', x, axis, keepdim, () => 1);
}

/** Mean over `axis` (all when omitted). */
export function mean(x: Tensor, axis?: number | number[], keepdim = false): Tensor {
  return reduceSum('mean', x, axis, keepdim, (n) => 1 / n);
}
