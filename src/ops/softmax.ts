/** softmax / log_softmax over the last axis. */
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { K } from './util.js';

function softmaxOp(x: Tensor, log: boolean): Tensor {
  const cols = x.shape[x.ndim - 1] ?? 1;
  const rows = x.size / cols;
  const out = Tensor.empty(x.shape, x.dtype);
  K(x).softmax(x.data, out.data, rows, cols, log);
  return record(log ? 'logSoftmax' : 'softmax', out, [x], (g) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    K(x).softmaxBackward(out.data, g.data, gx.data, rows, cols, log);
    return [gx];
  });
}

export const softmax = (x: Tensor): Tensor => softmaxOp(x, false);
export const logSoftmax = (x: Tensor): Tensor => softmaxOp(x, true);
