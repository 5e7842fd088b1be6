/**
 * Tensor: a shape, a dtype and contiguous row-major storage, plus the autograd fields.
 * Tensors are contiguous: ops that would need strides (transpose, permute) copy; reshape and
 * `rows()` slices along the first axis are views sharing storage with their base.
 */
import { ShapeError, fmtShape } from '../errors.js';
import type { DType, Storage } from './dtype.js';
import { allocStorage, releaseStorage, track, untrack } from './pool.js';

/** What autograd keeps for a tensor produced by an op. */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Returns one gradient per input (null where that input needs none); `needs[i]` says which are wanted. */
  backward: ((g: Tensor, needs: readonly boolean[]) => readonly (Tensor | null)[]) | null;
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Contiguous row-major storage of exactly `size` elements. */
  data: Storage;
  requiresGrad = false;
  /** Accumulated gradient of a leaf tensor. */
  grad: Tensor | null = null;
  /** The op that produced this tensor, while its backward is still pending. */
  node: GradNode | null = null;
  /** The tensor whose storage this view shares (reshape, rows). */
  readonly base: Tensor | null;
  /** Set by keep(): survives the scopes it was created in. */
  kept = false;
  released = false;
  name?: string;

  constructor(data: Storage, shape: readonly number[], base: Tensor | null = null) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new ShapeError('Tensor', `storage has ${data.length} elements, shape ${fmtShape(shape)} needs ${n}`);
    this.data = data;
    this.shape = shape.slice();
    this.dtype = data instanceof Float64Array ? 'float64' : 'float32';
    this.base = base;
    track(this);
  }

  get size(): number {
    return this.data.length;
  }
  get ndim(): number {
    return this.shape.length;
  }

  /** Uninitialised tensor from the pool (every element must be written by the caller). */
  static empty(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    return new Tensor(allocStorage(dtype, numel(shape), false), shape);
  }
  static zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    return new Tensor(allocStorage(dtype, numel(shape), true), shape);
  }
  static full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
    const t = Tensor.empty(shape, dtype);
    t.data.fill(value);
    return t;
  }
  /** Copies `values` into a new tensor. */
  static from(values: ArrayLike<number>, shape?: readonly number[], dtype: DType = 'float32'): Tensor {
    const t = Tensor.empty(shape ?? [values.length], dtype);
    if (t.size !== values.length) throw new ShapeError('Tensor.from', `${values.length} values do not fill shape ${fmtShape(t.shape)}`);
    t.data.set(values);
    return t;
  }
  static scalar(v: number, dtype: DType = 'float32'): Tensor {
    return Tensor.from([v], [], dtype);
  }

  /** Marks this tensor as a trainable leaf. */
  param(): this {
    this.requiresGrad = true;
    return this.keep();
  }

  /** Keeps this tensor (and the storage it views) alive past the enclosing scopes. */
  keep(): this {
    this.kept = true;
    untrack(this);
    if (this.base) this.base.keep();
    return this;
  }

  /** Returns the storage to the pool. Views never release; their base does. */
  release(): void {
    if (this.released || this.base) return;
    this.released = true;
    releaseStorage(this.dtype, this.data);
    this.data = this.dtype === 'float64' ? new Float64Array(0) : new Float32Array(0);
  }

  /**
   * Returns this tensor's storage (its base's, for a view) to the pool before the scope ends: for
   * an intermediate that nothing reads any more, forward or backward (the caller's promise; the
   * autograd graph keeps only its shape). Kept tensors are left alone.
   */
  releaseEarly(): void {
    const owner = this.base ?? this;
    if (!this.kept && !owner.kept) owner.release();
  }

  item(): number {
    if (this.size !== 1) throw new ShapeError('item', `tensor of shape ${fmtShape(this.shape)} is not a scalar`);
    return this.data[0];
  }

  toArray(): number[] {
    return Array.from(this.data);
  }

  /** A tensor sharing this storage with no autograd history. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, this.base ?? this);
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError('shape', `invalid dimension ${d} in ${fmtShape(shape)}`);
    n *= d;
  }
  return n;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
