/**
 * A frozen token embedding whose table lives in a storage of quant/storage.ts (bf16 or f16 bits,
 * as the checkpoint holds them): under LoRA without trained embeddings, when the base is stored in
 * bf16 or quantized (as transformers + bitsandbytes leave embeddings and the tied lm_head in the
 * compute dtype, never quantized). Lookups widen the gathered rows; a tied lm_head reads the same
 * storage through `matrix()` (the fused log-prob widens one vocabulary chunk at a time). The table
 * is not a parameter; reading `.weight` dequantizes it into a fresh float32 tensor, never kept.
 *
 * @example
 * const e = new FrozenEmbedding(plainStorage('bf16', bits, V, C));
 * const h = e.forward(ids, [B, T]); // (B, T, C) float32
 */
import { embeddingStored } from '../ops/index.js';
import { storageBytes, toFloat32, type WeightStorage } from '../quant/storage.js';
import { Tensor } from '../tensor/tensor.js';
import { Embedding } from './embedding.js';

export class FrozenEmbedding extends Embedding {
  /** The stored (num, dim) table; `_` keeps it out of parameter walks. */
  readonly _w: WeightStorage;
  constructor(w: WeightStorage) {
    super(0, 0); // a 0×0 placeholder table: nothing is allocated
    Object.defineProperty(this, 'num', { value: w.rows });
    Object.defineProperty(this, 'dim', { value: w.cols });
    this._w = w;
    // Not an own enumerable property: parameter walks skip it; reads dequantize.
    Object.defineProperty(this, 'weight', {
      enumerable: false,
      configurable: true,
      get: () => new Tensor(toFloat32(this._w), [w.rows, w.cols]).keep(),
      set: () => {
        throw new TypeError(`FrozenEmbedding: the ${w.kind} table is frozen; it cannot be replaced`);
      },
    });
  }

  /** Bytes the stored table takes. */
  get storedBytes(): number {
    return storageBytes(this._w);
  }

  override forward(ids: Int32Array, idsShape: number[]): Tensor {
    return embeddingStored(this._w, ids, idsShape);
  }

  override matrix(): WeightStorage {
    return this._w;
  }
}
