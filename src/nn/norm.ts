/** RMSNorm (Llama family) and LayerNorm (GPT-2), over the last axis. */
import { layerNorm, rmsNorm } from '../ops/index.js';
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
