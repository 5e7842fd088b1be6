/**
 * A frozen linear layer whose weight lives in any storage of quant/storage.ts (f32, bf16, f16,
 * nf4/fp4, int8): the LoRA base under `dtype` / `load_in_4bit` / `load_in_8bit`, or the bf16
 * reference copy. It is a Linear (LoRA wraps it, `all-linear` finds it) whose forward is
 * linearStored: the GEMM dequantizes a tile of rows at a time, so no float32 copy of the weight
 * exists. The weight is not a parameter (it is never trained, saved or walked); reading `.weight`
 * dequantizes it into a fresh float32 tensor (for merging into a float32 model), never kept.
 *
 * @example
 * const q = new FrozenLinear(quantizeWeight(lin.weight.data, lin.outFeatures, lin.inFeatures, 'nf4'), lin.bias);
 * const y = q.forward(x);
 */
import { linearStored } from '../ops/linear-stored.js';
import { storageBytes, toFloat32, type WeightStorage } from '../quant/storage.js';
import { Tensor } from '../tensor/tensor.js';
import { Linear, type LinearForwardOpts } from './linear.js';

const PLACEHOLDER = new Float32Array(0);

export class FrozenLinear extends Linear {
  /** The stored weight, (out, in); `_` keeps it out of parameter walks. */
  readonly _w: WeightStorage;
  constructor(w: WeightStorage, bias: Tensor | null) {
    super(w.cols, w.rows, false, new Tensor(PLACEHOLDER, [0]));
    this._w = w;
    this.bias = bias;
    if (bias) bias.requiresGrad = false;
    // Not an own enumerable property: parameter walks skip it; reads dequantize.
    Object.defineProperty(this, 'weight', {
      enumerable: false,
      configurable: true,
      get: () => new Tensor(toFloat32(this._w), [w.rows, w.cols]).keep(),
      set: () => {
        throw new TypeError(`FrozenLinear: the ${w.kind} weight is frozen; it cannot be replaced`);
      },
    });
  }

  /** Bytes the stored weight takes. */
  get storedBytes(): number {
    return storageBytes(this._w);
  }

  override forward(x: Tensor, opts?: LinearForwardOpts): Tensor {
    return linearStored(x, this._w, this.bias, opts);
  }
}
