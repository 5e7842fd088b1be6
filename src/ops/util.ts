/** Shared bookkeeping for ops: kernel lookup, shape checks, broadcasting strides. */
import { ShapeError, fmtShape } from '../errors.js';
import { kernelsFor } from '../backend/index.js';
import type { Kernels } from '../backend/types.js';
import { Tensor } from '../tensor/tensor.js';

export function K(t: Tensor): Kernels {
  return kernelsFor(t.dtype);
}

export function sameDType(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype !== ts[0].dtype) throw new ShapeError(op, `dtype mismatch: ${ts.map((x) => `${x.dtype} ${fmtShape(x.shape)}`).join(' vs ')}`);
  }
}

export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank || !Number.isInteger(a)) throw new ShapeError(op, `axis ${axis} out of range for rank ${rank}`);
  return a;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** numpy broadcast of two shapes, or a ShapeError naming the op and both shapes. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new ShapeError(op, `shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Element strides of `shape` seen through the broadcast `out` shape (0 on broadcast dims). */
export function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const cs = contiguousStrides(shape);
  const r = out.length;
  return out.map((_, i) => {
    const j = i - (r - shape.length);
    return j < 0 || shape[j] === 1 ? 0 : cs[j];
  });
}

/** Collapses adjacent dims that are contiguous in every operand (keeps kernels within rank 6). */
export function collapse(shape: number[], ...strides: number[][]): [number[], number[][]] {
  const s: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const k = s.length - 1;
    if (k >= 0 && strides.every((x, j) => st[j][k] === x[i] * shape[i])) {
      s[k] *= shape[i];
      strides.forEach((x, j) => (st[j][k] = x[i]));
    } else {
      s.push(shape[i]);
      strides.forEach((x, j) => st[j].push(x[i]));
    }
  }
  if (!s.length) return [[1], strides.map(() => [0])];
  return [s, st];
}

/**
 * Σ over `axes` (ascending), keeping them as size-1 dims; returns x itself when there are none.
 * Runs of adjacent axes reduce in one sumAxis call (a full sum is one pass, not one per dim).
 */
export function sumAxesKeepDims(x: Tensor, axes: readonly number[]): Tensor {
  let cur = x;
  const shape = x.shape.slice();
  for (let i = 0; i < axes.length; ) {
    let j = i;
    while (j + 1 < axes.length && axes[j + 1] === axes[j] + 1) j++;
    const d0 = axes[i], d1 = axes[j];
    const outer = shape.slice(0, d0).reduce((a, b) => a * b, 1);
    const dim = shape.slice(d0, d1 + 1).reduce((a, b) => a * b, 1);
    const inner = shape.slice(d1 + 1).reduce((a, b) => a * b, 1);
    for (let d = d0; d <= d1; d++) shape[d] = 1;
    const next = Tensor.empty(shape, x.dtype);
    K(x).sumAxis(cur.data, next.data, outer, dim, inner);
    if (cur !== x) cur.release();
    cur = next;
    i = j + 1;
  }
  return cur;
}

/**
 * Sums a gradient of the broadcast shape `from` down to `to` (the input's shape), via sumAxis.
 */
export function reduceTo(g: Tensor, to: readonly number[]): Tensor {
  const from = g.shape;
  if (from.length === to.length && from.every((d, i) => d === to[i])) return g;
  const rank = from.length;
  const padded = [...new Array<number>(rank - to.length).fill(1), ...to];
  const axes = from.map((d, i) => i).filter((i) => padded[i] === 1 && from[i] !== 1);
  const cur = sumAxesKeepDims(g, axes);
  return new Tensor(cur.data, to, cur === g ? g : cur);
}
