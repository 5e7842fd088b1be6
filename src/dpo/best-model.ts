/**
 * Best-model tracking as transformers 5.17's Trainer: TrainingArguments' defaults and checks
 * (metric_for_best_model "loss" under load_best_model_at_end, greater_is_better from the name),
 * `_determine_best_metric` after each evaluation, `best_model_checkpoint` set when a checkpoint is
 * saved, and `rotate_checkpoints`, which never deletes the best checkpoint nor the newest one.
 * The trainer calls it; loading the best weights at the end is checkpoint.ts's loadCheckpointWeights.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DpoError } from '../errors.js';

/** The DPOConfig fields this module reads (and, for the two defaults, sets). */
export interface BestModelArgs {
  metricForBestModel: string | null;
  greaterIsBetter: boolean | null;
  loadBestModelAtEnd: boolean;
  saveStrategy: string;
  evalStrategy: string;
  saveSteps: number;
  evalSteps: number | null;
  loggingSteps: number;
}

/** The trainer_state.json fields it keeps. */
export interface BestModelState {
  global_step: number;
  best_metric: number | null;
  best_global_step: number | null;
  best_model_checkpoint: string | null;
}

/**
 * TrainingArguments.__post_init__ and Trainer.__init__: fills the defaults in place and rejects the
 * combinations transformers rejects, with one line each.
 *
 * @example const a = { metricForBestModel: null, greaterIsBetter: null, loadBestModelAtEnd: true, saveStrategy: 'steps', evalStrategy: 'steps', saveSteps: 10, evalSteps: 5, loggingSteps: 10 };
 *   resolveBestModelArgs(a, 'dpo train') // a.metricForBestModel === 'loss', a.greaterIsBetter === false
 */
export function resolveBestModelArgs(a: BestModelArgs, where: string): void {
  if (a.loadBestModelAtEnd && a.metricForBestModel === null) a.metricForBestModel = 'loss';
  if (a.greaterIsBetter === null && a.metricForBestModel !== null) a.greaterIsBetter = !a.metricForBestModel.endsWith('loss');
  if (a.metricForBestModel === '') throw new DpoError(`${where}: metric_for_best_model is empty; name an eval metric such as loss or rewards/accuracies`);
  if (a.saveStrategy === 'best' && a.metricForBestModel === null) {
    throw new DpoError(`${where}: save_strategy best needs metric_for_best_model (e.g. loss or rewards/accuracies) to know which checkpoint is best`);
  }
  if (!a.loadBestModelAtEnd || a.saveStrategy === 'best') return;
  if (a.evalStrategy !== a.saveStrategy) {
    throw new DpoError(`${where}: load_best_model_at_end needs save_strategy equal to eval_strategy (or save_strategy best), got save_strategy ${a.saveStrategy} and eval_strategy ${a.evalStrategy}`);
  }
  if (a.evalStrategy !== 'steps') return;
  const ev = a.evalSteps ?? a.loggingSteps;
  const sv = a.saveSteps;
  if (ev < 1 !== sv < 1) {
    throw new DpoError(`${where}: load_best_model_at_end needs save_steps a multiple of eval_steps, which a ratio and a step count (save_steps ${sv}, eval_steps ${ev}) cannot guarantee; give both as steps or both as ratios`);
  }
  // Integers, as transformers compares ratios, so 0.2 vs 0.1 is not lost to rounding.
  if (Math.round(sv * 1e6) % Math.round(ev * 1e6) !== 0) {
    throw new DpoError(`${where}: load_best_model_at_end needs save_steps (${sv}) to be a multiple of eval_steps (${ev}), so every best evaluation has a checkpoint; change one of them`);
  }
}

/** The metric's key in an evaluation's metrics: transformers adds eval_ unless the name has it. */
export function bestMetricKey(name: string): string {
  return name.startsWith('eval_') ? name : `eval_${name}`;
}

export class BestModelTracker {
  constructor(private readonly args: Readonly<BestModelArgs>) {}

  /**
   * _determine_best_metric: whether the evaluation's `metrics` (every eval set's merged) improve on
   * state.best_metric; updates best_metric and best_global_step then. No metric: never.
   */
  update(state: BestModelState, metrics: Readonly<Record<string, number>>): boolean {
    const name = this.args.metricForBestModel;
    if (name === null) return false;
    const key = bestMetricKey(name);
    if (!(key in metrics)) {
      throw new DpoError(`metric_for_best_model: ${key} is not an evaluation metric; use one of ${Object.keys(metrics).filter((k) => k.startsWith('eval_')).join(', ')}`);
    }
    const v = metrics[key];
    const greater = this.args.greaterIsBetter === true;
    const best = state.best_metric ?? (greater ? -Infinity : Infinity);
    if (!(greater ? v > best : v < best)) {
      state.best_metric = best;
      return false;
    }
    state.best_metric = v;
    if (['steps', 'epoch', 'best'].includes(this.args.saveStrategy)) state.best_global_step = state.global_step;
    return true;
  }

  /** _save_checkpoint, before the state is written into checkpoint `dir`: best_model_checkpoint once the best checkpoint exists. */
  beforeSave(state: BestModelState, dir: string): void {
    if (!['steps', 'epoch', 'best'].includes(this.args.saveStrategy) || !state.best_global_step) return;
    const bestDir = join(dirname(dir), `checkpoint-${state.best_global_step}`);
    if (bestDir === dir || existsSync(bestDir)) state.best_model_checkpoint = bestDir;
  }
}

/**
 * rotate_checkpoints: which of `all` (checkpoint dirs, oldest first) to delete to keep `limit`; the
 * newest and the best are never deleted (so at least those two stay).
 */
export function checkpointsToDelete(all: readonly string[], limit: number | null, best: string | null): string[] {
  if (limit === null || limit <= 0 || all.length <= limit) return [];
  const keep = new Set([all[all.length - 1], ...(best ? [best] : [])]);
  let remaining = all.length;
  const out: string[] = [];
  for (const d of all) {
    if (remaining <= Math.max(limit, keep.size)) break;
    if (keep.has(d)) continue;
    out.push(d);
    remaining--;
  }
  return out;
}
