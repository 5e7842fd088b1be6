/** Inverted dropout with a seeded generator: keep with probability 1 − p, scale by 1/(1 − p). */
import { record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../tensor/rng.js';
import { K } from './util.js';

export function dropout(x: Tensor, p: number, rng: Rng, training: boolean): Tensor {
  if (!training || p === 0) return x;
  const n = x.size;
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = rng.nextFloat() >= p ? 1 : 0;
  const s = 1 / (1 - p);
  const out = Tensor.empty(x.shape, x.dtype);
  K(x).maskScale(x.data, mask, out.data, n, s);
  return record('dropout', out, [x], (g) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    K(x).maskScale(g.data, mask, gx.data, n, s);
    return [gx];
  });
}
