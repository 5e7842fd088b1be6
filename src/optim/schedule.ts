/**
 * transformers 5.17's learning-rate schedules (get_scheduler → LambdaLR): the multiplier λ(s) after
 * s completed scheduler steps; optimizer step k (1-based) runs with base_lr·λ(k−1), which is also
 * the learning_rate the Trainer logs for step k. Warmup is linear from 0 over `warmup` steps
 * (TrainingArguments.get_warmup_steps gives it).
 *
 * @example
 *   const warmup = warmupSteps(total, 0.1);                    // warmup_steps 0.1 = 10% of the run
 *   const lr = learningRateAt(5e-7, 'cosine', step, warmup, total);
 */
import { DpoError } from '../errors.js';

/** The schedules of transformers' SchedulerType that depend only on the step (not plateau / greedy). */
export const LR_SCHEDULER_TYPES = [
  'linear', 'cosine', 'cosine_with_restarts', 'polynomial', 'constant', 'constant_with_warmup', 'inverse_sqrt',
  'cosine_with_min_lr', 'cosine_warmup_with_min_lr', 'warmup_stable_decay',
] as const;
export type LrSchedulerType = (typeof LR_SCHEDULER_TYPES)[number];

/** lr_scheduler_kwargs (TrainingArguments), snake_case as users write them. */
export interface LrSchedulerKwargs {
  /** cosine (0.5), cosine_with_min_lr (0.5), cosine_warmup_with_min_lr (0.5), warmup_stable_decay (0.5); cosine_with_restarts (1). */
  num_cycles?: number;
  /** polynomial: final lr (1e-7) and power (1). */
  lr_end?: number;
  power?: number;
  /** inverse_sqrt: default warmup or 10000. */
  timescale?: number;
  /** cosine_with_min_lr / cosine_warmup_with_min_lr: one of these is required. */
  min_lr?: number;
  min_lr_rate?: number;
  /** cosine_warmup_with_min_lr: lr ratio at warmup step 0 (default: (s+1)/warmup ramp). */
  warmup_lr_rate?: number;
  /** warmup_stable_decay */
  num_decay_steps?: number;
  num_stable_steps?: number;
  warmup_type?: 'linear' | 'cosine' | '1-sqrt';
  decay_type?: 'linear' | 'cosine' | '1-sqrt';
  min_lr_ratio?: number;
}

/** The lr_scheduler_kwargs each schedule's transformers function takes (any other key is a TypeError there). */
const SCHEDULE_KWARGS: Record<LrSchedulerType, readonly (keyof LrSchedulerKwargs)[]> = {
  linear: [],
  constant: [],
  constant_with_warmup: [],
  cosine: ['num_cycles'],
  cosine_with_restarts: ['num_cycles'],
  polynomial: ['lr_end', 'power'],
  inverse_sqrt: ['timescale'],
  cosine_with_min_lr: ['num_cycles', 'min_lr', 'min_lr_rate'],
  cosine_warmup_with_min_lr: ['num_cycles', 'min_lr', 'min_lr_rate', 'warmup_lr_rate'],
  warmup_stable_decay: ['num_stable_steps', 'num_decay_steps', 'warmup_type', 'decay_type', 'min_lr_ratio', 'num_cycles'],
};

/**
 * Checks a schedule and its kwargs before training starts (unknown keys, wrong types, a missing
 * min_lr / num_decay_steps), so a bad value fails at config time, not at step 1.
 */
export function validateLrSchedule(type: string, kwargs: LrSchedulerKwargs, baseLr: number, where: string): void {
  const allowed = SCHEDULE_KWARGS[type as LrSchedulerType];
  if (!allowed) throw new DpoError(`${where}: lr_scheduler_type "${type}" is not supported; use one of ${LR_SCHEDULER_TYPES.join(', ')}`);
  for (const [k, v] of Object.entries(kwargs)) {
    if (!allowed.includes(k as keyof LrSchedulerKwargs)) {
      throw new DpoError(`${where}: lr_scheduler_kwargs key "${k}" does not apply to lr_scheduler_type ${type}; it takes ${allowed.length ? allowed.join(', ') : 'no kwargs'}`);
    }
    const isType = k === 'warmup_type' || k === 'decay_type';
    if (isType ? typeof v !== 'string' : typeof v !== 'number' || !Number.isFinite(v)) {
      throw new DpoError(`${where}: lr_scheduler_kwargs.${k} must be ${isType ? 'a string' : 'a number'}, got ${JSON.stringify(v)}`);
    }
  }
  try {
    lrLambda(type, 0, 0, 1, kwargs, baseLr);
  } catch (e) {
    if (e instanceof DpoError) throw new DpoError(`${where}: ${e.message}`);
    throw e;
  }
}

/** TrainingArguments.get_warmup_steps: warmup_steps ≥ 1 is a count (truncated), < 1 a ratio of the run (rounded up). */
export function warmupSteps(totalSteps: number, warmup: number): number {
  if (!(warmup >= 0)) throw new DpoError(`warmup_steps must be ≥ 0 (a count, or < 1 for a ratio of the run), got ${warmup}`);
  return warmup >= 1 ? Math.trunc(warmup) : Math.ceil(totalSteps * warmup);
}

const ramp = (step: number, warmup: number) => step / Math.max(1, warmup);

/**
 * λ(step) for `step` completed scheduler steps (LambdaLR's last_epoch).
 * `baseLr` is needed by polynomial and by min_lr (they are given as absolute learning rates).
 */
export function lrLambda(type: string, step: number, warmup: number, total: number, kwargs: LrSchedulerKwargs = {}, baseLr?: number): number {
  const kw = kwargs;
  const needBase = (what: string) => {
    if (baseLr === undefined) throw new DpoError(`lr_scheduler_type ${type}: ${what} needs the base learning rate`);
    return baseLr;
  };
  const minRate = () => {
    if (kw.min_lr !== undefined && kw.min_lr_rate !== undefined) throw new DpoError(`lr_scheduler_kwargs: give only one of min_lr or min_lr_rate for ${type}`);
    if (kw.min_lr !== undefined) return kw.min_lr / needBase('min_lr');
    if (kw.min_lr_rate === undefined) throw new DpoError(`lr_scheduler_type ${type} needs min_lr or min_lr_rate in lr_scheduler_kwargs`);
    return kw.min_lr_rate;
  };
  switch (type) {
    case 'constant':
      return 1;
    case 'constant_with_warmup':
      return step < warmup ? ramp(step, warmup) : 1;
    case 'linear':
      if (step < warmup) return ramp(step, warmup);
      return Math.max(0, (total - step) / Math.max(1, total - warmup));
    case 'cosine': {
      if (step < warmup) return ramp(step, warmup);
      const progress = (step - warmup) / Math.max(1, total - warmup);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * (kw.num_cycles ?? 0.5) * 2 * progress)));
    }
    case 'cosine_with_restarts': {
      if (step < warmup) return ramp(step, warmup);
      const progress = (step - warmup) / Math.max(1, total - warmup);
      if (progress >= 1) return 0;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * (((kw.num_cycles ?? 1) * progress) % 1))));
    }
    case 'polynomial': {
      const lrInit = needBase('polynomial');
      const lrEnd = kw.lr_end ?? 1e-7, power = kw.power ?? 1;
      if (!(lrInit > lrEnd)) throw new DpoError(`lr_scheduler_kwargs: lr_end (${lrEnd}) must be smaller than the learning rate (${lrInit})`);
      if (step < warmup) return ramp(step, warmup);
      if (step > total) return lrEnd / lrInit;
      const pctRemaining = 1 - (step - warmup) / (total - warmup);
      return ((lrInit - lrEnd) * pctRemaining ** power + lrEnd) / lrInit;
    }
    case 'inverse_sqrt': {
      if (step < warmup) return ramp(step, warmup);
      const timescale = kw.timescale ?? (warmup || 10_000);
      return 1 / Math.sqrt((step + (timescale - warmup)) / timescale);
    }
    case 'cosine_with_min_lr': {
      const rate = minRate();
      if (step < warmup) return ramp(step, warmup);
      const progress = (step - warmup) / Math.max(1, total - warmup);
      const factor = 0.5 * (1 + Math.cos(Math.PI * (kw.num_cycles ?? 0.5) * 2 * progress));
      return Math.max(0, factor * (1 - rate) + rate);
    }
    case 'cosine_warmup_with_min_lr': {
      const rate = minRate();
      if (step < warmup) {
        if (kw.warmup_lr_rate === undefined) return (step + 1) / Math.max(1, warmup);
        return kw.warmup_lr_rate + ((1 - kw.warmup_lr_rate) * step) / Math.max(1, warmup - 1);
      }
      const progress = (step - warmup + 1) / Math.max(1, total - warmup);
      const factor = 0.5 * (1 + Math.cos(Math.PI * (kw.num_cycles ?? 0.5) * 2 * progress));
      return Math.max(0, factor * (1 - rate) + rate);
    }
    case 'warmup_stable_decay':
      return wsd(step, warmup, total, kw);
  }
  throw new DpoError(`lr_scheduler_type "${type}" is not supported; use one of ${LR_SCHEDULER_TYPES.join(', ')}`);
}

/** get_wsd_schedule: warmup, a stable plateau, then decay to min_lr_ratio over num_decay_steps. */
function wsd(step: number, warmup: number, total: number, kw: LrSchedulerKwargs): number {
  const decaySteps = kw.num_decay_steps;
  if (decaySteps === undefined) throw new DpoError('lr_scheduler_type warmup_stable_decay needs num_decay_steps in lr_scheduler_kwargs');
  const stable = kw.num_stable_steps ?? total - warmup - decaySteps;
  const minRatio = kw.min_lr_ratio ?? 0;
  const warmupType = kw.warmup_type ?? 'linear', decayType = kw.decay_type ?? 'cosine';
  for (const [k, v] of [['warmup_type', warmupType], ['decay_type', decayType]]) {
    if (!['linear', 'cosine', '1-sqrt'].includes(v)) throw new DpoError(`lr_scheduler_kwargs: ${k} "${v}" is not one of linear, cosine, 1-sqrt`);
  }
  if (step < warmup) {
    const progress = step / Math.max(1, warmup);
    const f = warmupType === 'linear' ? progress : warmupType === 'cosine' ? 0.5 * (1 - Math.cos(Math.PI * progress)) : 1 - Math.sqrt(1 - progress);
    return Math.max(0, f * (1 - minRatio) + minRatio);
  }
  if (step < warmup + stable) return 1;
  if (step < warmup + stable + decaySteps) {
    const progress = (step - warmup - stable) / Math.max(1, decaySteps);
    const f = decayType === 'linear' ? 1 - progress : decayType === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * (kw.num_cycles ?? 0.5) * 2 * progress)) : 1 - Math.sqrt(progress);
    return Math.max(0, f * (1 - minRatio) + minRatio);
  }
  return minRatio;
}

/** The learning rate optimizer step `step` (1-based) runs with, which transformers also logs for it. */
export function learningRateAt(base: number, type: string, step: number, warmup: number, total: number, kwargs: LrSchedulerKwargs = {}): number {
  return base * lrLambda(type, step - 1, warmup, total, kwargs, base);
}

/**
 * A LambdaLR-like stateful schedule: lr() is the rate for the next optimizer step, step() advances.
 * @example const s = new LrSchedule({ type: 'linear', baseLr: 1e-6, warmup: 10, total: 100 }); opt.update(s.lr()); s.step();
 */
export class LrSchedule {
  /** Completed scheduler steps (LambdaLR.last_epoch); saved in checkpoints. */
  lastEpoch = 0;
  constructor(readonly cfg: { type: string; baseLr: number; warmup: number; total: number; kwargs?: LrSchedulerKwargs }) {
    validateLrSchedule(cfg.type, cfg.kwargs ?? {}, cfg.baseLr, 'LrSchedule'); // now, not mid-run
  }
  lr(): number {
    return this.cfg.baseLr * lrLambda(this.cfg.type, this.lastEpoch, this.cfg.warmup, this.cfg.total, this.cfg.kwargs, this.cfg.baseLr);
  }
  step(): void {
    this.lastEpoch++;
  }
  stateDict(): { last_epoch: number } {
    return { last_epoch: this.lastEpoch };
  }
  loadStateDict(s: { last_epoch: number }): void {
    this.lastEpoch = s.last_epoch;
  }
}
