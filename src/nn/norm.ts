/** RMSNorm (Llama family), Gemma's offset RMSNorm and LayerNorm (GPT-2), over the last axis. */
import { addScalar, layerNorm, rmsNorm } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

export class RMSNorm extends Module {
  weight: Tensor;
  constructor(readonly dim: number, readonly eps: number) {
    super();
    this.weight = Tensor.full([dim], 1).keep();
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

export class LayerNorm extends Module {
  weight: Tensor;
  bias: Tensor;
  constructor(readonly dim: number, readonly eps: number) {
    super();
    this.weight = Tensor.full([dim], 1).keep();
    this.bias = Tensor.zeros([dim]).keep();
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Gemma's RMSNorm: x / rms(x) · (1 + w), the weight stored as an offset from 1 (zeros = identity). */
export class OffsetRMSNorm extends Module {
  weight: Tensor;
  constructor(readonly dim: number, readonly eps: number) {
    super();
    this.weight = Tensor.zeros([dim]).keep();
  }
  /** d/dw of (1 + w) is 1: the gradient flows to w unchanged. */
  forward(x: Tensor): Tensor {
    return rmsNorm(x, addScalar(this.weight, 1), this.eps);
  }
}

/** What a decoder's norms offer: forward over the last axis. */
export type NormLike = RMSNorm | OffsetRMSNorm;
