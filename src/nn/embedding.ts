/** Token (or position) embedding table (V, C); lookup by Int32Array ids. */
import { embedding } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import type { WeightStorage } from '../quant/storage.js';
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
  /** The (num, dim) table as the ops read it (a tied lm_head): the tensor, or a FrozenEmbedding's storage. */
  matrix(): Tensor | WeightStorage {
    return this.weight;
  }
}
