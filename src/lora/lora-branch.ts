/**
 * The LoRA branch added onto its base layer's output: y ← y + s·B(A(dropout(x))), as one graph
 * node. Recorded op by op, the branch kept its dropout output, x·Aᵀ, B's output, its scaling and
 * the sum alive until backward: (in + r + 3·out) floats per token, six times the base layer's own
 * activations under all-linear. Here the sum is written into y (the base output, which nothing
 * else reads: a linear layer's backward never needs its output), y's node is extended to the
 * branch, and only the dropout mask (a byte per input element) is kept. Backward re-runs the
 * branch from x and the mask (two rank-r GEMMs, ~1% of the layer's) and back-propagates through
 * it, so the values and gradients are the op-by-op graph's.
 *
 * @example
 * const y = addLoraBranch(base.forward(x), x, lora_A.weight, lora_B.weight, alpha / r, 0.05, rng, true);
 */
import { backward, isGradEnabled, noGrad, withGrad } from '../autograd/tape.js';
import { add, applyDropoutMask, dropout, dropoutMask, linear, scale } from '../ops/index.js';
import { K } from '../ops/util.js';
import { scope } from '../tensor/pool.js';
import type { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';

export function addLoraBranch(y: Tensor, x: Tensor, A: Tensor, B: Tensor, scaling: number, p: number, rng: Rng, training: boolean): Tensor {
  const branch = (d: Tensor) => scale(linear(linear(d, A), B), scaling);
  // Nothing to differentiate (reference forwards, a checkpointed layer's first pass): the plain ops.
  if (!isGradEnabled() || !(x.requiresGrad || A.requiresGrad || B.requiresGrad)) return add(y, branch(dropout(x, p, rng, training)));
  const mask = training && p > 0 ? dropoutMask(x.size, p, rng) : null;
  const dropped = () => (mask ? applyDropoutMask(x, mask, p) : x.detach());
  // y + l with add's kernel, in place (an elementwise loop reads each element before writing it).
  scope(() => {
    const l = noGrad(() => branch(dropped()));
    K(y).binary('add', y.data, l.data, y.data, [y.size], [1], [1]);
  });
  const baseNode = y.node;
  const nBase = baseNode?.inputs.length ?? 0;
  y.requiresGrad = true;
  y.node = {
    op: 'lora',
    inputs: [...(baseNode?.inputs ?? []), x, A, B],
    backward: (g, needs) => {
      // (an op's backward may return more entries than it has inputs: linear's [gx, gw, gb] without a bias)
      const gb = baseNode ? baseNode.backward!(g, needs.slice(0, nBase)) : [];
      const gBase = Array.from({ length: nBase }, (_, i) => gb[i] ?? null);
      // A and B are leaves: the branch's own backward accumulates their gradients.
      const gx = scope(() => {
        const d = dropped();
        d.requiresGrad = needs[nBase];
        const l = withGrad(() => branch(d));
        // g as a view: the inner backward releases its root gradient, which is the outer tape's.
        backward(l, new Tensor(g.data, g.shape, g), { releaseActivations: true });
        const gd = d.grad;
        if (!gd) return null;
        d.grad = null;
        if (!mask) return gd;
        const gx = applyDropoutMask(gd, mask, p);
        gd.release();
        return gx;
      });
      return [...gBase, gx, null, null];
    },
  };
  return y;
}
