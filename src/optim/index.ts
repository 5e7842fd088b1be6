/** Optimizer side of training: AdamW, transformers' LR schedules, gradient clipping. */
export { AdamW, ADAMW_DEFAULTS, decays, type AdamWConfig, type AdamWOptions, type AdamWState, type AdamWStateDict } from './adamw.js';
export { lrLambda, learningRateAt, warmupSteps, validateLrSchedule, LrSchedule, LR_SCHEDULER_TYPES, type LrSchedulerType, type LrSchedulerKwargs } from './schedule.js';
export { clipGradNorm, gradNorm } from './clip.js';
