/** Elementwise ops: broadcasting add/sub/mul/div, scalar forms, clamp, and the activations. */
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import type { BinaryOp, UnaryOp } from '../backend/types.js';
import { K, broadcastShapes, broadcastStrides, collapse, reduceTo, sameDType } from './util.js';

function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor, name: string): Tensor {
  sameDType(name, a, b);
  const shape = broadcastShapes(name, a.shape, b.shape);
  const out = Tensor.empty(shape, a.dtype);
  const [s, [as, bs]] = collapse(shape.slice(), broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
  K(a).binary(op, a.data, b.data, out.data, s, as, bs);
  return out;
}


/** a + b (broadcasting) */
export function add(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return addScalar(a, b);
  const out = binaryRaw('add', a, b, 'add');
  return record('add', out, [a, b], (g, needs) => [needs[0] ? reduceTo(g, a.shape) : null, needs[1] ? reduceTo(g, b.shape) : null]);
}

/** a − b (broadcasting) */
export function sub(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return addScalar(a, -b);
  const out = binaryRaw('sub', a, b, 'sub');
  return record('sub', out, [a, b], (g, needs) => [needs[0] ? reduceTo(g, a.shape) : null, needs[1] ? reduceTo(neg(g), b.shape) : null]);
}

/** a · b (broadcasting) */
export function mul(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return scale(a, b);
  const out = binaryRaw('mul', a, b, 'mul');
  return record('mul', out, [a, b], (g, needs) => [
    needs[0] ? reduceTo(binaryRaw('mul', g, b, 'mul'), a.shape) : null,
    needs[1] ? reduceTo(binaryRaw('mul', g, a, 'mul'), b.shape) : null,
  ]);
}

/** a / b (broadcasting); d/da = 1/b, d/db = −a/b² = −out/b */
export function div(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return scale(a, 1 / b);
  const out = binaryRaw('div', a, b, 'div');
  return record('div', out, [a, b], (g, needs) => [
    needs[0] ? reduceTo(binaryRaw('div', g, b, 'div'), a.shape) : null,
    needs[1] ? reduceTo(neg(binaryRaw('mul', binaryRaw('div', g, b, 'div'), out, 'div')), b.shape) : null,
  ]);
}

function unaryOp(op: UnaryOp, x: Tensor, alpha = 0): Tensor {
  const out = Tensor.empty(x.shape, x.dtype);
  K(x).unary(op, x.data, out.data, x.size, alpha);
  return record(op, out, [x], (g) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    K(x).unaryBackward(op, x.data, out.data, g.data, gx.data, x.size, alpha);
    return [gx];
  });
}

/** s · x */
export const scale = (x: Tensor, s: number): Tensor => unaryOp('scale', x, s);
export const neg = (x: Tensor): Tensor => unaryOp('neg', x);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x);
export const log = (x: Tensor): Tensor => unaryOp('log', x);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x);
export const square = (x: Tensor): Tensor => unaryOp('square', x);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x);
export const logsigmoid = (x: Tensor): Tensor => unaryOp('logsigmoid', x);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x);
export const relu = (x: Tensor): Tensor => unaryOp('relu', x);
export const silu = (x: Tensor): Tensor => unaryOp('silu', x);
/** GPT-2's gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715x³))) */
export const geluTanh = (x: Tensor): Tensor => unaryOp('gelu_tanh', x);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x);
/** Soft-capping (Gemma 2's logits and attention scores): cap·tanh(x / cap), as torch's three ops. */
export const softcap = (x: Tensor, cap: number): Tensor => mul(tanh(div(x, cap)), cap);

/** x + s (s is cast to x's dtype first, as torch does with a Python scalar) */
export function addScalar(x: Tensor, s: number): Tensor {
  const out = Tensor.empty(x.shape, x.dtype);
  const c = Tensor.full([1], s, x.dtype);
  K(x).binary('add', x.data, c.data, out.data, [x.size], [1], [0]);
  c.release();
  return record('addScalar', out, [x], (g) => [g.detach()]);
}

/**
 * clamp(x, min, max) = min(max(x, min), max), like torch.clamp (so min > max gives max everywhere,
 * NaN stays NaN); its gradient is where(min ≤ x ≤ max, g, 0). The kernel table has no min/max or
 * select kernel, so these two comparison loops stay here.
 */
export function clamp(x: Tensor, min: number, max: number): Tensor {
  const out = Tensor.empty(x.shape, x.dtype);
  const d = out.data, xd = x.data;
  for (let i = 0; i < xd.length; i++) {
    const v = xd[i] < min ? min : xd[i];
    d[i] = v > max ? max : v;
  }
  return record('clamp', out, [x], (g) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    for (let i = 0; i < xd.length; i++) gx.data[i] = xd[i] >= min && xd[i] <= max ? g.data[i] : 0;
    return [gx];
  });
}
