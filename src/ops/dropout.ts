/** Inverted dropout with a seeded generator: keep with probability 1 − p, scale by 1/(1 − p). */
import { ShapeError } from '../errors.js';
import { record } from '../autograd/tape.js';
import { noteRngUse } from '../autograd/checkpoint.js';
import { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../tensor/rng.js';
import { K } from './util.js';

/** The keep-mask of n elements: one rng.nextFloat() per element, in order, 1 when ≥ p. */
export function dropoutMask(n: number, p: number, rng: Rng): Uint8Array {
  if (!(p >= 0 && p <= 1)) throw new ShapeError('dropout', `probability ${p} is not in [0, 1]`);
  noteRngUse(rng);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = rng.nextFloat() >= p ? 1 : 0;
  return mask;
}

/** mask · x / (1 − p) into a new tensor (p = 1 drops everything, as torch does); no graph. */
export function applyDropoutMask(x: Tensor, mask: Uint8Array, p: number): Tensor {
  const out = Tensor.empty(x.shape, x.dtype);
  K(x).maskScale(x.data, mask, out.data, x.size, p === 1 ? 0 : 1 / (1 - p));
  return out;
}

/**
 * Identity when !training or p = 0 (no random numbers drawn); otherwise one rng.nextFloat() per
 * element, in order, keeps it when ≥ p. p = 1 drops everything (as torch does).
 */
export function dropout(x: Tensor, p: number, rng: Rng, training: boolean): Tensor {
  if (!(p >= 0 && p <= 1)) throw new ShapeError('dropout', `probability ${p} is not in [0, 1]`);
  if (!training || p === 0) return x;
  const mask = dropoutMask(x.size, p, rng);
  const out = applyDropoutMask(x, mask, p);
  return record('dropout', out, [x], (g) => [applyDropoutMask(g, mask, p)]);
}
