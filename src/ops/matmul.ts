/** matmul (batched, with transposes) and linear (x·Wᵀ + b), forward and backward. */
import { ShapeError, fmtShape } from '../errors.js';
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { K, reduceTo, sameDType } from './util.js';

interface MM {
  batch: number;
  m: number;
  n: number;
  k: number;
}

function gemm(a: Tensor, b: Tensor, c: Tensor, d: MM, transA: boolean, transB: boolean, bBatched: boolean, beta = 0, aBatched = true): void {
  K(a).matmul({
    a: a.data, b: b.data, c: c.data, batch: d.batch, m: d.m, n: d.n, k: d.k, transA, transB,
    strideA: aBatched ? d.m * d.k : 0, strideB: bBatched ? d.k * d.n : 0, strideC: d.m * d.n, alpha: 1, beta,
  });
}

/**
 * a (..., M, K) @ b (K, N) or (..., K, N) → (..., M, N); transA / transB transpose the last two dims.
 */
export function matmul(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor {
  const transA = !!opts.transA, transB = !!opts.transB;
  sameDType('matmul', a, b);
  if (a.ndim < 2 || b.ndim < 2) throw new ShapeError('matmul', `needs ≥ 2-D operands: a ${fmtShape(a.shape)} @ b ${fmtShape(b.shape)}`);
  const [am, ak] = transA ? [a.shape[a.ndim - 1], a.shape[a.ndim - 2]] : [a.shape[a.ndim - 2], a.shape[a.ndim - 1]];
  const [bk, bn] = transB ? [b.shape[b.ndim - 1], b.shape[b.ndim - 2]] : [b.shape[b.ndim - 2], b.shape[b.ndim - 1]];
  if (ak !== bk) throw new ShapeError('matmul', `inner dims differ: a ${fmtShape(a.shape)}${transA ? 'ᵀ' : ''} @ b ${fmtShape(b.shape)}${transB ? 'ᵀ' : ''}`);
  const batchShape = a.shape.slice(0, -2);
  const bBatched = b.ndim > 2;
  if (bBatched && (b.ndim !== a.ndim || b.shape.slice(0, -2).some((d, i) => d !== batchShape[i]))) {
    throw new ShapeError('matmul', `batch dims differ: a ${fmtShape(a.shape)} @ b ${fmtShape(b.shape)}`);
  }
  const batch = batchShape.reduce((x, y) => x * y, 1);
  const dims: MM = { batch, m: am, n: bn, k: ak };
  const out = Tensor.empty([...batchShape, am, bn], a.dtype);
  gemm(a, b, out, dims, transA, transB, bBatched);
  return record('matmul', out, [a, b], (g, needs) => {
    let ga: Tensor | null = null, gb: Tensor | null = null;
    if (needs[0]) {
      // dA = g·op(B)ᵀ (or its transpose when transA)
      ga = Tensor.empty(a.shape, a.dtype);
      if (!transA) gemm(g, b, ga, { batch, m: am, n: ak, k: bn }, false, !transB, bBatched);
      else gemm(b, g, ga, { batch, m: ak, n: am, k: bn }, transB, true, true, 0, bBatched);
    }
    if (needs[1]) {
      if (bBatched) {
        gb = Tensor.empty(b.shape, b.dtype);
        if (!transB) gemm(a, g, gb, { batch, m: ak, n: bn, k: am }, !transA, false, true);
        else gemm(g, a, gb, { batch, m: bn, n: ak, k: am }, true, transA, true);
      } else {
        gb = Tensor.empty(b.shape, b.dtype);
        if (!transA || batch === 1) {
          // b is shared across the batch: fold the batch into the reduction dim, (batch·M, K).
          const a2 = new Tensor(a.data, [batch * a.shape[a.ndim - 2], a.shape[a.ndim - 1]], a);
          const g2 = new Tensor(g.data, [batch * am, bn], g);
          if (!transB) gemm(a2, g2, gb, { batch: 1, m: ak, n: bn, k: batch * am }, !transA, false, false);
          else gemm(g2, a2, gb, { batch: 1, m: bn, n: ak, k: batch * am }, true, transA, false);
        } else {
          // a is (batch, K, M): its batches do not stack along M, so accumulate one GEMM per batch:
          // dB = Σ_i a_i·g_i (or Σ_i g_iᵀ·a_iᵀ when transB).
          const k = K(a);
          for (let i = 0; i < batch; i++) {
            const ai = a.data.subarray(i * am * ak, (i + 1) * am * ak);
            const gi = g.data.subarray(i * am * bn, (i + 1) * am * bn);
            k.matmul({
              a: transB ? gi : ai, b: transB ? ai : gi, c: gb.data, batch: 1, m: transB ? bn : ak, n: transB ? ak : bn, k: am,
              transA: transB, transB, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: i === 0 ? 0 : 1,
            });
          }
        }
      }
    }
    return [ga, gb];
  });
}

/**
 * x (..., in) · w (out, in)ᵀ + b (out) → (..., out). The workhorse of every model. `valuesUnread`:
 * the graph alone is wanted (nn/linear.ts' LinearForwardOpts), so the output is zeros, not computed.
 */
export function linear(x: Tensor, w: Tensor, b: Tensor | null = null, opts: { valuesUnread?: boolean } = {}): Tensor {
  sameDType('linear', x, w);
  const inF = x.shape[x.ndim - 1];
  if (w.ndim !== 2 || w.shape[1] !== inF) throw new ShapeError('linear', `input ${fmtShape(x.shape)} does not fit weight ${fmtShape(w.shape)} (expected [out, ${inF}])`);
  const outF = w.shape[0];
  if (b && (b.ndim !== 1 || b.shape[0] !== outF)) throw new ShapeError('linear', `bias ${fmtShape(b.shape)} does not fit weight ${fmtShape(w.shape)}`);
  const rows = x.size / inF;
  const out = Tensor.empty([...x.shape.slice(0, -1), outF], x.dtype);
  const k = K(x);
  if (opts.valuesUnread) out.data.fill(0);
  else {
    if (b) for (let r = 0; r < rows; r++) out.data.set(b.data, r * outF);
    k.matmul({ a: x.data, b: w.data, c: out.data, batch: 1, m: rows, n: outF, k: inF, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: b ? 1 : 0 });
  }
  const inputs = b ? [x, w, b] : [x, w];
  return record('linear', out, inputs, (g, needs) => {
    let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null;
    if (needs[0]) {
      // dx = g · W
      gx = Tensor.empty(x.shape, x.dtype);
      k.matmul({ a: g.data, b: w.data, c: gx.data, batch: 1, m: rows, n: inF, k: outF, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
    }
    if (needs[1]) {
      // dW = gᵀ · x
      gw = Tensor.empty(w.shape, w.dtype);
      k.matmul({ a: g.data, b: x.data, c: gw.data, batch: 1, m: outF, n: inF, k: rows, transA: true, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
    }
    if (b && needs[2]) gb = reduceTo(new Tensor(g.data, [rows, outF], g), [outF]);
    return [gx, gw, gb];
  });
}
