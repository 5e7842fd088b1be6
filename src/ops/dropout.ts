/** Inverted dropout with a seeded generator: keep with probability 1 − p, scale by 1/(1 − p). */
import { ShapeError } from '../errors.js';
import { record } from '../autograd/tape.js';
import { noteRngUse } from '../autograd/checkpoint.js';
import { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../tensor/rng.js';
import { K } from './util.js';

/**
 * Identity when !training or p = 0 (no random numbers drawn); otherwise one rng.nextFloat() per
 * element, in order, keeps it when ≥ p. p = 1 drops everything (as torch does).
 */
export function dropout(x: Tensor, p: number, rng: Rng, training: boolean): Tensor {
  if (!(p >= 0 && p <= 1)) throw new ShapeError('dropout', `probability ${p} is not in [0, 1]`);
  if (!training || p === 0) return x;
  const n = x.size;
  noteRngUse(rng);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = rng.nextFloat() >= p ? 1 : 0;
  const s = p === 1 ? 0 : 1 / (1 - p);
  const out = Tensor.empty(x.shape, x.dtype);
  K(x).maskScale(x.data, mask, out.data, n, s);
  return record('dropout', out, [x], (g) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    K(x).maskScale(g.data, mask, gx.data, n, s);
    return [gx];
  });
}
