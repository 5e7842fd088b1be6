/**
 * Reverse-mode autograd. Ops call `record()` with their output, inputs and backward closure;
 * `backward(loss)` walks the graph in reverse topological order, accumulating gradients. A node's
 * closure (and with it the activations it saved) is dropped as soon as it has run, and the output
 * gradient is returned to the pool.
 */
import { ShapeError, fmtShape } from '../errors.js';
import { Tensor, sameShape, type GradNode } from '../tensor/tensor.js';
import { kernelsFor } from '../backend/index.js';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn with graph recording switched to `on`, restoring the previous mode afterwards. */
function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = on;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs fn without recording any graph (reference forwards, evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs fn with graph recording on, even inside noGrad (checkpoint's recompute during backward). */
export function withGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

/** Records `out` as produced by op `op` from `inputs`, if any input needs a gradient. */
export function record(
  op: string,
  out: Tensor,
  inputs: readonly Tensor[],
  backward: NonNullable<GradNode['backward']>,
): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

/**
 * The gradient buffer an op's backward may add into directly for input t: t's own .grad when t is
 * a leaf that already has one (the trainer allocates them up front). The op then returns null for
 * t, and no (often huge: lm_head, embedding) temporary gradient is made. Null otherwise.
 */
export function leafGradSink(t: Tensor): Tensor | null {
  return t.requiresGrad && !t.node && t.grad && !t.grad.base ? t.grad : null;
}

/**
 * For fused kernels that have no backward: throws if a gradient would be silently dropped
 * (candle's lesson), so such an op can only run under noGrad or on frozen inputs.
 */
export function assertNoGrad(op: string, inputs: readonly Tensor[]): void {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    throw new ShapeError(op, 'has no backward but an input requires grad; call it under noGrad()');
  }
}

/**
 * Accumulates d(root)/d(leaf) into every leaf's `.grad`. `grad` defaults to 1 for a scalar root.
 * With `releaseActivations`, each op's output goes back to the pool as soon as its backward has run
 * (every consumer's backward ran before it), so peak memory falls as backward proceeds; the caller
 * must not read intermediate tensors afterwards (kept tensors are spared).
 */
export function backward(root: Tensor, grad?: Tensor, opts: { releaseActivations?: boolean } = {}): void {
  if (!root.requiresGrad) throw new ShapeError('backward', `${root} does not require grad (was it computed under noGrad, or from frozen tensors only?)`);
  if (!grad && root.size !== 1) throw new ShapeError('backward', `root of shape ${fmtShape(root.shape)} is not a scalar; pass its gradient`);
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, grad ?? Tensor.full(root.shape, 1, root.dtype));
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = grads.get(t);
    const node = t.node;
    if (!g || !node || !node.backward) continue;
    grads.delete(t);
    const needs = node.inputs.map((x) => x.requiresGrad);
    const gs = node.backward(g, needs);
    node.backward = null;
    t.node = null;
    // A backward may return g itself or views of it (add, reshape): such storage must stay alive,
    // and two inputs must never share one gradient buffer (later accumulation would hit both).
    const used = new Set<unknown>();
    for (let j = 0; j < node.inputs.length; j++) {
      const x = node.inputs[j];
      let gx = gs[j];
      if (!gx || !x.requiresGrad) continue;
      if (used.has(gx.data)) gx = copyOf(gx, false);
      used.add(gx.data);
      if (!sameShape(gx.shape, x.shape)) {
        throw new ShapeError(`${node.op} backward`, `gradient shape ${fmtShape(gx.shape)} != input shape ${fmtShape(x.shape)}`);
      }
      if (x.node) {
        const prev = grads.get(x);
        if (prev) {
          accumulate(prev, gx);
          gx.release();
        } else grads.set(x, gx);
      } else {
        if (x.grad) {
          accumulate(x.grad, gx);
          gx.release();
        } else {
          // Leaf gradients outlive the step's scope.
          x.grad = gx.base ? copyOf(gx, true) : gx.keep();
        }
      }
    }
    if (!used.has(g.data)) g.release();
    if (opts.releaseActivations && t !== root && !t.kept) t.release();
  }
}

function copyOf(t: Tensor, keep: boolean): Tensor {
  const c = keep ? new Tensor(t.data.slice(), t.shape).keep() : Tensor.empty(t.shape, t.dtype);
  if (!keep) c.data.set(t.data);
  return c;
}

/** dst += src, elementwise over equal shapes. */
function accumulate(dst: Tensor, src: Tensor): void {
  kernelsFor(dst.dtype).axpy(dst.data, src.data, dst.size, 1);
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: graphs of 30-layer models are deep enough to overflow recursion.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const x = inputs[i];
      if (x.requiresGrad && !seen.has(x)) {
        seen.add(x);
        stack.push([x, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}
