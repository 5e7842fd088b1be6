/**
 * A frozen linear layer whose weight is stored as bf16 bits: half the memory of a float32 weight.
 * Used for the reference copy under `bf16` (its GEMMs round weights to bf16 anyway, so the
 * results are the same bits as the float32-stored copy); never trained or saved. A FrozenLinear
 * with bf16 storage.
 */
import { quantizeWeight } from '../quant/storage.js';
import { FrozenLinear } from './frozen-linear.js';
import type { Linear } from './linear.js';

export class FrozenBf16Linear extends FrozenLinear {
  constructor(base: Linear) {
    super(quantizeWeight(base.weight.data as Float32Array, base.outFeatures, base.inFeatures, 'bf16'), base.bias);
  }
}
