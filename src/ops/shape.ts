/** Shape ops: reshape (a view), transpose/permute (copies), slice, concat, indexSelect. */
import { ShapeError, fmtShape } from '../errors.js';
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { K, normAxis, sameDType } from './util.js';

/** A view with a new shape (one dim may be −1). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = shape.slice();
  const neg = s.indexOf(-1);
  if (neg >= 0) {
    const rest = s.reduce((a, d, i) => (i === neg ? a : a * d), 1);
    s[neg] = rest === 0 ? 0 : x.size / rest;
  }
  const n = s.reduce((a, b) => a * b, 1);
  if (n !== x.size || s.some((d) => !Number.isInteger(d) || d < 0)) throw new ShapeError('reshape', `cannot view ${fmtShape(x.shape)} as ${fmtShape(shape)}`);
  const out = new Tensor(x.data, s, x.base ?? x);
  return record('reshape', out, [x], (g) => [new Tensor(g.data, x.shape, g.base ?? g)]);
}

/** Copy with dims permuted: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw new ShapeError('permute', `invalid permutation [${perm}] for ${fmtShape(x.shape)}`);
  const out = Tensor.empty(perm.map((p) => x.shape[p]), x.dtype);
  K(x).permute(x.data, out.data, x.shape, perm);
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return record('permute', out, [x], (g) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    K(x).permute(g.data, gx.data, g.shape, inv);
    return [gx];
  });
}

export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const a = normAxis('transpose', d0, x.ndim), b = normAxis('transpose', d1, x.ndim);
  const perm = x.shape.map((_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** Copies blocks between two tensors split as (outer, dim, inner): dst[:, dOff:dOff+len] ← src[:, sOff:sOff+len]. */
function copyBlocks(src: Tensor, srcDim: number, sOff: number, dst: Tensor, dstDim: number, dOff: number, len: number, outer: number, inner: number, accumulate: boolean): void {
  const n = len * inner;
  for (let o = 0; o < outer; o++) {
    const s = (o * srcDim + sOff) * inner;
    const d = (o * dstDim + dOff) * inner;
    if (accumulate) K(dst).axpy(dst.data.subarray(d, d + n), src.data.subarray(s, s + n), n, 1);
    else dst.data.set(src.data.subarray(s, s + n), d);
  }
}

function split(shape: readonly number[], axis: number): [number, number] {
  return [shape.slice(0, axis).reduce((a, b) => a * b, 1), shape.slice(axis + 1).reduce((a, b) => a * b, 1)];
}

/** x[..., start:end, ...] along `axis`. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const ax = normAxis('slice', axis, x.ndim);
  const dim = x.shape[ax];
  if (!(0 <= start && start <= end && end <= dim)) throw new ShapeError('slice', `range [${start}, ${end}) out of bounds for axis ${axis} of ${fmtShape(x.shape)}`);
  const [outer, inner] = split(x.shape, ax);
  const shape = x.shape.slice();
  shape[ax] = end - start;
  const out = Tensor.empty(shape, x.dtype);
  copyBlocks(x, dim, start, out, end - start, 0, end - start, outer, inner, false);
  return record('slice', out, [x], (g) => {
    const gx = Tensor.zeros(x.shape, x.dtype);
    copyBlocks(g, end - start, 0, gx, dim, start, end - start, outer, inner, false);
    return [gx];
  });
}

/** Concatenation along `axis`. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (!xs.length) throw new ShapeError('concat', 'needs at least one tensor');
  sameDType('concat', ...xs);
  const ax = normAxis('concat', axis, xs[0].ndim);
  for (const t of xs) {
    if (t.ndim !== xs[0].ndim || t.shape.some((d, i) => i !== ax && d !== xs[0].shape[i])) {
      throw new ShapeError('concat', `shapes ${xs.map((x) => fmtShape(x.shape)).join(', ')} differ outside axis ${axis}`);
    }
  }
  const total = xs.reduce((a, t) => a + t.shape[ax], 0);
  const shape = xs[0].shape.slice();
  shape[ax] = total;
  const [outer, inner] = split(shape, ax);
  const out = Tensor.empty(shape, xs[0].dtype);
  let off = 0;
  const offs = xs.map((t) => {
    const o = off;
    copyBlocks(t, t.shape[ax], 0, out, total, o, t.shape[ax], outer, inner, false);
    off += t.shape[ax];
    return o;
  });
  return record('concat', out, xs, (g, needs) => xs.map((t, i) => {
    if (!needs[i]) return null;
    const gx = Tensor.empty(t.shape, t.dtype);
    copyBlocks(g, total, offs[i], gx, t.shape[ax], 0, t.shape[ax], outer, inner, false);
    return gx;
  }));
}

/** Gathers entries idx along `axis`; backward scatter-adds (repeated indices accumulate). */
export function indexSelect(x: Tensor, axis: number, idx: Int32Array): Tensor {
  const ax = normAxis('indexSelect', axis, x.ndim);
  const dim = x.shape[ax];
  for (const i of idx) if (i < 0 || i >= dim) throw new ShapeError('indexSelect', `index ${i} out of range [0, ${dim}) on axis ${axis} of ${fmtShape(x.shape)}`);
  const [outer, inner] = split(x.shape, ax);
  const shape = x.shape.slice();
  shape[ax] = idx.length;
  const out = Tensor.empty(shape, x.dtype);
  for (let j = 0; j < idx.length; j++) copyBlocks(x, dim, idx[j], out, idx.length, j, 1, outer, inner, false);
  return record('indexSelect', out, [x], (g) => {
    const gx = Tensor.zeros(x.shape, x.dtype);
    for (let j = 0; j < idx.length; j++) copyBlocks(g, idx.length, j, gx, dim, idx[j], 1, outer, inner, true);
    return [gx];
  });
}
