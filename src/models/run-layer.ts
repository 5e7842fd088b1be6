/**
 * One decoder layer step of a model's forward, h → layer(h), with the memory policy of the mode:
 * recording with gradient checkpointing, the layer is recomputed in backward (checkpoint());
 * under noGrad (reference forwards, evaluation), the layer runs in its own pool scope and the
 * previous hidden state is released, so a no-grad forward holds one layer's activations, not all.
 * A KV cache (generation) keeps tensors across calls, so it gets a plain call.
 */
import { checkpoint } from '../autograd/checkpoint.js';
import { isGradEnabled } from '../autograd/tape.js';
import { scope } from '../tensor/pool.js';
import { Tensor } from '../tensor/tensor.js';

export function runLayer(layer: (x: Tensor) => Tensor, h: Tensor, params: readonly Tensor[], opts: { checkpoint: boolean; cache: boolean }): Tensor {
  if (opts.cache) return layer(h);
  if (isGradEnabled()) return opts.checkpoint ? checkpoint(layer, h, params) : layer(h);
  const y = scope(() => {
    const o = layer(h);
    // A view would share storage the scope frees (or be h itself): copy it out.
    if (!o.base && o !== h) return o;
    const c = Tensor.empty(o.shape, o.dtype);
    c.data.set(o.data);
    return c;
  });
  if (!h.kept) h.release();
  return y;
}
