/** Embedding lookup; backward scatter-adds into the table. From a stored (frozen) table: no backward. */
import { ShapeError, fmtShape } from '../errors.js';
import type { WeightStorage } from '../quant/storage.js';
import { leafGradSink, record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { K } from './util.js';

/** weight (V, C), ids of shape idsShape → (...idsShape, C) */
export function embedding(weight: Tensor, ids: Int32Array, idsShape: readonly number[]): Tensor {
  if (weight.ndim !== 2) throw new ShapeError('embedding', `weight must be 2-D, got ${fmtShape(weight.shape)}`);
  const [V, C] = weight.shape;
  const n = ids.length;
  checkIds(V, ids, idsShape);
  const out = Tensor.empty([...idsShape, C], weight.dtype);
  K(weight).embedding(weight.data, ids, out.data, n, C);
  return record('embedding', out, [weight], (g) => {
    // Scatter-add straight into the table's own gradient when it has one (no V×C temporary).
    const sink = leafGradSink(weight);
    const gw = sink ? null : Tensor.zeros(weight.shape, weight.dtype);
    K(weight).embeddingBackward(g.data, ids, (sink ?? gw!).data, n, C);
    return [gw];
  });
}

/**
 * The rows of a frozen table kept in a storage (a bf16 embedding under LoRA) as float32 values:
 * (...idsShape, cols); nothing requires a gradient, so nothing is recorded.
 */
export function embeddingStored(w: WeightStorage, ids: Int32Array, idsShape: readonly number[]): Tensor {
  checkIds(w.rows, ids, idsShape);
  const out = Tensor.empty([...idsShape, w.cols]);
  K(out).storedEmbedding(w, ids, out.data, ids.length);
  return out;
}

function checkIds(V: number, ids: Int32Array, idsShape: readonly number[]): void {
  const n = ids.length;
  if (idsShape.reduce((a, b) => a * b, 1) !== n) throw new ShapeError('embedding', `ids shape ${fmtShape(idsShape)} does not match ${n} ids`);
  for (let i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= V) throw new ShapeError('embedding', `token id ${ids[i]} at position ${i} is outside the vocabulary [0, ${V}); does the tokenizer belong to this model?`);
  }
}
