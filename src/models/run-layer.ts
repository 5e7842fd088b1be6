/**
 * One decoder layer step of a model's forward, h → layer(h), with the memory policy of the mode:
 * recording with gradient checkpointing, the layer is recomputed in backward (checkpoint());
 * under noGrad (reference forwards, evaluation), the layer runs in its own pool scope and the
 * previous hidden state is released, so a no-grad forward holds one layer's activations, not all.
 * A KV cache (generation) keeps tensors across calls, so it gets a plain call. `layer`'s second
 * argument is true only in the recompute, where its output's values go unread (checkpoint()).
 */
import { checkpoint } from '../autograd/checkpoint.js';
import { isGradEnabled } from '../autograd/tape.js';
import { scope } from '../tensor/pool.js';
import { Tensor } from '../tensor/tensor.js';

export function runLayer(layer: (x: Tensor, recompute: boolean) => Tensor, h: Tensor, params: readonly Tensor[], opts: { checkpoint: boolean; cache: boolean }): Tensor {
  if (opts.cache) return layer(h, false);
  if (isGradEnabled()) return opts.checkpoint ? checkpoint(layer, h, params) : layer(h, false);
  const y = scope(() => {
    const o = layer(h, false);
    // A view would share storage the scope frees (or be h itself): copy it out.
    if (!o.base && o !== h) return o;
    const c = Tensor.empty(o.shape, o.dtype);
    c.data.set(o.data);
    return c;
  });
  if (!h.kept) h.release();
  return y;
}
