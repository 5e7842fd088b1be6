/** Token (or position) embedding table (V, C); lookup by Int32Array ids. */
import { embedding } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

export class Embedding extends Module {
  weight: Tensor;
  constructor(readonly num: number, readonly dim: number) {
    super();
    this.weight = Tensor.zeros([num, dim]).keep();
  }
  /** ids of shape idsShape → (...idsShape, dim) */
  forward(ids: Int32Array, idsShape: number[]): Tensor {
    return embedding(this.weight, ids, idsShape);
  }
}
