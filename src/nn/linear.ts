/** Linear layer with HF's layout: weight (out, in), optional bias (out); y = x·Wᵀ + b. */
import { linear } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import type { WeightStorage } from '../quant/storage.js';
import { Module } from './module.js';

/**
 * `valuesUnread`: the caller only back-propagates through the output and never reads its values
 * (a checkpointed layer's recompute, where the layer's output is discarded). A linear layer's
 * backward needs x and g, never y, so its GEMM is skipped and y holds zeros.
 */
export interface LinearForwardOpts {
  valuesUnread?: boolean;
}

/** Anything that maps (..., in) → (..., out): a Linear, or a LoRA-wrapped one. */
export interface LinearLike extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  forward(x: Tensor, opts?: LinearForwardOpts): Tensor;
}

export class Linear extends Module implements LinearLike {
  weight: Tensor;
  bias: Tensor | null;
  /** `weight` given: used as the weight (FrozenLinear passes a placeholder; nothing is allocated). */
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = false, weight?: Tensor) {
    super();
    this.weight = (weight ?? Tensor.zeros([outFeatures, inFeatures])).keep();
    this.bias = bias ? Tensor.zeros([outFeatures]).keep() : null;
  }
  forward(x: Tensor, opts?: LinearForwardOpts): Tensor {
    return linear(x, this.weight, this.bias, opts);
  }
}

/**
 * The (out, in) weight a linear layer applies: its own, a LoRA layer's W + s·B·A, or a frozen
 * layer's storage (a FrozenLinear's `_w`, read without a float32 copy); the fused log-prob op
 * reads lm_head this way.
 */
export function headWeight(m: Linear | (LinearLike & { effectiveWeight(): Tensor })): Tensor | WeightStorage {
  if ('effectiveWeight' in m) return m.effectiveWeight();
  const stored = (m as { _w?: WeightStorage })._w;
  return stored ?? m.weight;
}
