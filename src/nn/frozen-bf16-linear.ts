/**
 * A frozen linear layer whose weight is stored as bf16 bits: half the memory of a float32 weight.
 * Used for the reference copy under `bf16` (its GEMMs round weights to bf16 anyway, so the
 * results are the same bits as the float32-stored copy); forward only, never trained or saved.
 */
import { assertNoGrad } from '../autograd/tape.js';
import { ShapeError, fmtShape } from '../errors.js';
import { encodeHalf } from '../io/half.js';
import { K } from '../ops/util.js';
import { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';
import type { Linear, LinearLike } from './linear.js';

export class FrozenBf16Linear extends Module implements LinearLike {
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** (out, in) bf16 bits; `_` keeps it out of parameter walks. */
  readonly _weightBits: Uint16Array;
  readonly _bias: Tensor | null;
  constructor(base: Linear) {
    super();
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this._weightBits = new Uint16Array(base.weight.size);
    encodeHalf('BF16', base.weight.data, 0, this._weightBits);
    this._bias = base.bias;
  }

  /** y = x·Wᵀ (+ b) as one bf16 GEMM with float32 accumulation. */
  forward(x: Tensor): Tensor {
    assertNoGrad('FrozenBf16Linear', [x]);
    if (x.dtype !== 'float32' || x.shape[x.ndim - 1] !== this.inFeatures) {
      throw new ShapeError('FrozenBf16Linear', `input ${fmtShape(x.shape)} (${x.dtype}) does not fit a float32 layer with ${this.inFeatures} inputs`);
    }
    const m = x.size / this.inFeatures;
    const y = Tensor.empty([...x.shape.slice(0, -1), this.outFeatures], 'float32');
    // As linear(): the bias is pre-filled and the GEMM adds onto it (the same bits).
    const b = this._bias;
    if (b) for (let r = 0; r < m; r++) y.data.set(b.data, r * this.outFeatures);
    K(x).matmul({ a: x.data, b: this._weightBits, c: y.data, batch: 1, m, n: this.outFeatures, k: this.inFeatures, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: b ? 1 : 0 });
    return y;
  }
}
