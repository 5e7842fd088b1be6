/**
 * Gradient checkpointing (transformers' `gradient_checkpointing`): `checkpoint(fn, x)` runs fn
 * without recording a graph, so its intermediates go back to the pool as soon as it returns and
 * only x is kept. Backward re-runs fn on a detached x with recording on and back-propagates
 * through that small graph: parameter leaves inside fn accumulate their gradients as usual, and
 * x's gradient flows on. Dropout replays the same mask (the rng states fn started from are saved).
 * fn's second argument says which pass it is: in the recompute, its output's values are never
 * read (only its graph), so fn may leave out work whose result only reaches the output through ops
 * whose backward reads no values (a decoder layer's down projection: nn/linear.ts' valuesUnread).
 */
import { ShapeError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../tensor/rng.js';
import { scope } from '../tensor/pool.js';
import { backward, isGradEnabled, noGrad, record, withGrad } from './tape.js';

/** One map per checkpointed forward now running: each rng's state before its first draw. */
const captures: Map<Rng, number[]>[] = [];

/** Ops that draw random numbers call this before drawing, so a recompute can replay the draws. */
export function noteRngUse(rng: Rng): void {
  for (const c of captures) if (!c.has(rng)) c.set(rng, rng.getState());
}

/**
 * y = fn(x), recomputed in backward instead of stored. `params` are the parameters fn uses: they
 * make the step recorded even when x needs no gradient (the first layer under LoRA). fn may read
 * other tensors by closure only if they need no gradient (rope tables, masks).
 * @example h = checkpoint((x) => layer.forward(x, ctx), h, layer.parameters())
 */
export function checkpoint(fn: (x: Tensor, recompute: boolean) => Tensor, x: Tensor, params: readonly Tensor[] = []): Tensor {
  const trainable = params.filter((p) => p.requiresGrad);
  if (!isGradEnabled() || (!x.requiresGrad && trainable.length === 0)) return fn(x, false);
  const rngs = new Map<Rng, number[]>();
  captures.push(rngs);
  let out: Tensor;
  try {
    out = scope(() => {
      const y = noGrad(() => fn(x, false));
      // A view would share storage with a buffer the scope frees (or be x itself): copy it out.
      return y.base || y === x ? copyOf(y) : y;
    });
  } finally {
    captures.pop();
  }
  return record('checkpoint', out, [x, ...trainable], (g, needs) => {
    const gx = scope(() => recompute(fn, x, needs[0], rngs, g));
    return [gx, ...trainable.map(() => null)];
  });
}

/** Re-runs fn with the saved rng states, back-propagates g through it, returns dx (or null). */
function recompute(fn: (x: Tensor, recompute: boolean) => Tensor, x: Tensor, needX: boolean, rngs: Map<Rng, number[]>, g: Tensor): Tensor | null {
  const now = [...rngs.keys()].map((r) => [r, r.getState()] as const);
  for (const [r, s] of rngs) r.setState(s);
  try {
    const xd = x.detach();
    xd.requiresGrad = needX;
    const y = withGrad(() => fn(xd, true));
    if (!y.requiresGrad) return null;
    assertSelfContained(y, xd.id);
    backward(y, g, { releaseActivations: true });
    const gx = xd.grad;
    xd.grad = null;
    return gx;
  } finally {
    // Later forwards drew on from where the first pass left the rngs.
    for (const [r, s] of now) r.setState(s);
  }
}

/**
 * Every recorded tensor behind y must come from this recompute (ids are increasing): backward
 * from y would otherwise run, and consume, nodes of the outer graph.
 */
function assertSelfContained(y: Tensor, firstId: number): void {
  const stack = [y];
  const seen = new Set<Tensor>(stack);
  while (stack.length) {
    const t = stack.pop()!;
    if (!t.node) continue;
    if (t.id < firstId) throw new ShapeError('checkpoint', `fn uses a tensor that requires grad from outside it (${t.node.op} output ${t}); pass it as the input or compute it inside fn`);
    for (const i of t.node.inputs) if (i.requiresGrad && !seen.has(i)) {
      seen.add(i);
      stack.push(i);
    }
  }
}

function copyOf(t: Tensor): Tensor {
  const c = Tensor.empty(t.shape, t.dtype);
  c.data.set(t.data);
  return c;
}
