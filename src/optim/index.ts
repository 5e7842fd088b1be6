export { AdamW, decays, type AdamWOptions, type AdamWState } from './adamw.js';
export { lrLambda, learningRateAt } from './schedule.js';
export { clipGradNorm } from './clip.js';
