/**
 * linearStored: x (..., in) · Wᵀ + b with a frozen weight W in any storage (quant/storage.ts:
 * f32, bf16, f16, nf4/fp4, int8), forward and backward. The kernels dequantize W a tile of rows at
 * a time inside the GEMM; W gets no gradient (it is frozen), x and b do. `widen`: bf16 storage
 * multiplies as its float32 values (a frozen bf16 lm_head), not as a bf16 GEMM. `valuesUnread`: the
 * graph alone is wanted (nn/linear.ts' LinearForwardOpts), so the output is zeros, not computed.
 */
import { ShapeError, fmtShape } from '../errors.js';
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import type { WeightStorage } from '../quant/storage.js';
import { K, reduceTo } from './util.js';

export function linearStored(x: Tensor, w: WeightStorage, b: Tensor | null = null, opts: { widen?: boolean; valuesUnread?: boolean } = {}): Tensor {
  const inF = x.shape[x.ndim - 1];
  if (w.cols !== inF) throw new ShapeError('linearStored', `input ${fmtShape(x.shape)} does not fit a ${w.kind} weight [${w.rows}, ${w.cols}]`);
  if (b && (b.ndim !== 1 || b.shape[0] !== w.rows)) throw new ShapeError('linearStored', `bias ${fmtShape(b.shape)} does not fit a weight with ${w.rows} outputs`);
  const rows = x.size / inF, outF = w.rows;
  const out = Tensor.empty([...x.shape.slice(0, -1), outF], x.dtype);
  const k = K(x);
  if (opts.valuesUnread) out.data.fill(0);
  else {
    // As linear(): the bias is pre-filled and the GEMM adds onto it.
    if (b) for (let r = 0; r < rows; r++) out.data.set(b.data, r * outF);
    // (rows, out) = x (rows, in) · Wᵀ
    k.storedMatmul({ a: x.data, w, c: out.data, m: rows, xWt: true, beta: b ? 1 : 0, widen: opts.widen });
  }
  return record('linearStored', out, b ? [x, b] : [x], (g, needs) => {
    let gx: Tensor | null = null;
    if (needs[0]) {
      // dx = g · W: (rows, in) = (rows, out) · (out, in)
      gx = Tensor.empty(x.shape, x.dtype);
      k.storedMatmul({ a: g.data, w, c: gx.data, m: rows, xWt: false, beta: 0, widen: opts.widen });
    }
    const gb = b && needs[1] ? reduceTo(new Tensor(g.data, [rows, outF], g), [outF]) : null;
    return b ? [gx, gb] : [gx];
  });
}
