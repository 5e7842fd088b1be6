/** Elementwise kernels: broadcasting binary ops, unary ops and their derivatives, axpy, masked scale. */
import type { BinaryOp, F, GatedAct, UnaryOp } from '../types.js';

const GELU_C = Math.sqrt(2 / Math.PI);

export function binary(op: BinaryOp, a: F, b: F, out: F, shape: readonly number[], as: readonly number[], bs: readonly number[]): void {
  const rank = shape.length;
  const n = shape.reduce((x, y) => x * y, 1);
  const f = op === 'add' ? (x: number, y: number) => x + y : op === 'sub' ? (x: number, y: number) => x - y : op === 'mul' ? (x: number, y: number) => x * y : (x: number, y: number) => x / y;
  const idx = new Array<number>(rank).fill(0);
  let ia = 0, ib = 0;
  for (let i = 0; i < n; i++) {
    out[i] = f(a[ia], b[ib]);
    // Odometer increment of the multi-index, keeping both operand offsets in step.
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      ia += as[d];
      ib += bs[d];
      if (idx[d] < shape[d]) break;
      ia -= as[d] * shape[d];
      ib -= bs[d] * shape[d];
      idx[d] = 0;
    }
  }
}

function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** log σ(x) = min(x, 0) − log1p(e^−|x|), stable for large |x|. */
function logsigmoid(x: number): number {
  return Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
}

export function unaryFn(op: UnaryOp, alpha: number): (x: number) => number {
  switch (op) {
    case 'neg': return (x) => -x;
    case 'exp': return Math.exp;
    case 'log': return Math.log;
    case 'sqrt': return Math.sqrt;
    case 'square': return (x) => x * x;
    case 'sigmoid': return sigmoid;
    case 'logsigmoid': return logsigmoid;
    case 'tanh': return Math.tanh;
    case 'relu': return (x) => (x > 0 ? x : x === x ? 0 : x);
    case 'silu': return (x) => x * sigmoid(x);
    case 'gelu_tanh': return (x) => 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x)));
    case 'scale': return (x) => alpha * x;
    case 'abs': return Math.abs;
  }
}

export function unary(op: UnaryOp, x: F, out: F, n: number, alpha: number): void {
  const f = unaryFn(op, alpha);
  for (let i = 0; i < n; i++) out[i] = f(x[i]);
}

/** f'(x) given x and y = f(x). */
function derivative(op: UnaryOp, alpha: number): (x: number, y: number) => number {
  switch (op) {
    case 'neg': return () => -1;
    case 'exp': return (_x, y) => y;
    case 'log': return (x) => 1 / x;
    case 'sqrt': return (_x, y) => 0.5 / y;
    case 'square': return (x) => 2 * x;
    case 'sigmoid': return (_x, y) => y * (1 - y);
    case 'logsigmoid': return (x) => sigmoid(-x); // d/dx log σ(x) = σ(−x), exact for large x (not 1 − σ(x))
    case 'tanh': return (_x, y) => 1 - y * y;
    case 'relu': return (x) => (x > 0 ? 1 : x === x ? 0 : x);
    case 'silu': return (x) => { const s = sigmoid(x); return s * (1 + x * (1 - s)); };
    case 'gelu_tanh': return (x) => {
      const u = GELU_C * (x + 0.044715 * x * x * x);
      const t = Math.tanh(u);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
    };
    case 'scale': return () => alpha;
    case 'abs': return (x) => (x > 0 ? 1 : x < 0 ? -1 : x === x ? 0 : x);
  }
}

export function unaryBackward(op: UnaryOp, x: F, y: F, gy: F, gx: F, n: number, alpha: number): void {
  const d = derivative(op, alpha);
  for (let i = 0; i < n; i++) gx[i] = gy[i] * d(x[i], y[i]);
}

export function axpy(y: F, x: F, n: number, alpha: number): void {
  for (let i = 0; i < n; i++) y[i] += alpha * x[i];
}

/** out = x·mask·scale as torch's dropout computes it: a dropped NaN/Inf still gives NaN. */
export function maskScale(x: F, mask: Uint8Array, out: F, n: number, s: number): void {
  for (let i = 0; i < n; i++) out[i] = x[i] * mask[i] * s;
}

/** silu(g)·u */
export function swiglu(g: F, u: F, out: F, n: number, act: GatedAct = 'silu'): void {
  const f = unaryFn(act, 0);
  for (let i = 0; i < n; i++) out[i] = f(g[i]) * u[i];
}

export function swigluBackward(g: F, u: F, gy: F, gg: F | null, gu: F | null, n: number, act: GatedAct = 'silu'): void {
  const f = unaryFn(act, 0), df = derivative(act, 0); // both derivatives read x only
  for (let i = 0; i < n; i++) {
    if (gg) gg[i] = gy[i] * u[i] * df(g[i], 0);
    if (gu) gu[i] = gy[i] * f(g[i]);
  }
}
