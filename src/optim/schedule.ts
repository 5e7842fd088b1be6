/** transformers' learning-rate schedules (get_scheduler), as the multiplier at a scheduler step. */
import { DpoError } from '../errors.js';

/** λ(step) for `step` completed scheduler steps (LambdaLR's last_epoch). */
export function lrLambda(type: string, step: number, warmup: number, total: number): number {
  if (step < warmup && type !== 'constant') return step / Math.max(1, warmup);
  switch (type) {
    case 'constant':
    case 'constant_with_warmup':
      return 1;
    case 'linear':
      return Math.max(0, (total - step) / Math.max(1, total - warmup));
    case 'cosine': {
      const progress = (step - warmup) / Math.max(1, total - warmup);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
    }
  }
  throw new DpoError(`lr_scheduler_type "${type}" is not supported; use linear, cosine, constant or constant_with_warmup`);
}

/** The learning rate used by optimizer step `step` (1-based), as transformers logs it. */
export function learningRateAt(base: number, type: string, step: number, warmup: number, total: number): number {
  return base * lrLambda(type, step - 1, warmup, total);
}
