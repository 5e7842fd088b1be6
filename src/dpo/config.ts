/**
 * DPOConfig: TRL's DPOConfig + TrainingArguments in TypeScript. Accepts camelCase (library style)
 * or TRL's snake_case keys; unknown keys, wrong types and values outside the allowed set are
 * one-line errors naming the key.
 */
import { DpoError } from '../errors.js';
import { OPTIONS_BY_CAMEL, OPTIONS_BY_SNAKE, TRAINING_OPTIONS, LOSS_TYPES, type OptionSpec } from './options.js';
import { validateLossConfig } from './losses.js';
import { TRL_ARGS_BY_CAMEL, TRL_ARGS_BY_SNAKE, resolveTrlArgs } from './trl-args.js';
import { resolveReportTo } from '../report/trackers.js';
import { resolveBestModelArgs } from './best-model.js';
import { validateLrSchedule, warmupSteps, type LrSchedulerKwargs } from '../optim/schedule.js';

/** Converts a raw value (from code, YAML or a CLI string) to the option's type. */
export function coerceOption(spec: OptionSpec, value: unknown, where: string): unknown {
  const bad = (want: string) => new DpoError(`${where}: ${spec.snake} must be ${want}, got ${JSON.stringify(value)}`);
  const nullable = spec.type.endsWith('?') || spec.default === null;
  if (value === null || value === undefined || value === 'None' || value === 'null') {
    if (spec.type === 'dict') return {};
    if (nullable) return null;
    throw bad(`a ${spec.type}`);
  }
  const base = spec.type.replace('?', '');
  if (base === 'any') {
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }
  const toNum = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN);
  switch (base) {
    case 'int': {
      const n = toNum(value);
      if (!Number.isInteger(n)) throw bad('an integer');
      return n;
    }
    case 'float': {
      const n = toNum(value);
      if (!Number.isFinite(n)) throw bad('a number');
      return n;
    }
    case 'bool': {
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'True' || value === '1') return true;
      if (value === 'false' || value === 'False' || value === '0') return false;
      throw bad('true or false');
    }
    case 'string': {
      if (typeof value !== 'string') throw bad('a string');
      if (spec.choices && !spec.choices.includes(value)) throw new DpoError(`${where}: ${spec.snake} "${value}" is not one of ${spec.choices.join(', ')}`);
      return value;
    }
    case 'strings': {
      const list = (Array.isArray(value) ? value : [value]).flatMap((v) => (typeof v === 'string' ? v.split(',') : [v]));
      const out = list.map((v) => {
        if (typeof v !== 'string') throw bad('a list of strings');
        return v.trim();
      }).filter((v) => v !== '');
      if (spec.choices) for (const v of out) if (!spec.choices.includes(v)) throw new DpoError(`${where}: ${spec.snake} "${v}" is not one of ${spec.choices.join(', ')}`);
      return out;
    }
    case 'dict': {
      let v = value;
      if (typeof v === 'string') {
        try {
          v = JSON.parse(v);
        } catch {
          throw bad('a JSON object such as \'{"min_lr_rate": 0.1}\'');
        }
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('a JSON object such as \'{"min_lr_rate": 0.1}\'');
      return { ...(v as Record<string, unknown>) };
    }
    case 'floats': {
      const list = (Array.isArray(value) ? value : [value]).flatMap((v) => (typeof v === 'string' ? v.split(',') : [v]));
      return list.map((v) => {
        const n = toNum(typeof v === 'string' ? v.trim() : v);
        if (!Number.isFinite(n)) throw bad('a list of numbers');
        return n;
      });
    }
  }
  throw bad(base);
}

/** Normalises a bag of options (camelCase or snake_case keys) to camelCase, validated. */
export function normaliseOptions(input: Record<string, unknown>, where: string, groups?: readonly OptionSpec['group'][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) {
    if (v === undefined) continue;
    const spec = OPTIONS_BY_SNAKE.get(k) ?? OPTIONS_BY_CAMEL.get(k);
    if (!spec || (groups && !groups.includes(spec.group))) {
      const near = TRAINING_OPTIONS.filter((s) => s.snake.includes(k.toLowerCase()) || k.toLowerCase().includes(s.snake)).map((s) => s.snake);
      throw new DpoError(`${where}: unknown option "${k}"${near.length ? `; did you mean ${near.slice(0, 3).join(' or ')}?` : ''}`);
    }
    out[spec.camel] = coerceOption(spec, v, where);
  }
  return out;
}

export type LossType = (typeof LOSS_TYPES)[number];

/** Training configuration, as TRL's DPOConfig (with TrainingArguments). */
export class DPOConfig {
  outputDir = 'dpo_output';
  perDeviceTrainBatchSize = 8;
  perDeviceEvalBatchSize = 8;
  gradientAccumulationSteps = 1;
  learningRate = 1e-6;
  weightDecay = 0;
  adamBeta1 = 0.9;
  adamBeta2 = 0.999;
  adamEpsilon = 1e-8;
  maxGradNorm = 1.0;
  numTrainEpochs = 3;
  maxSteps = -1;
  lrSchedulerType = 'linear';
  lrSchedulerKwargs: LrSchedulerKwargs = {};
  warmupSteps = 0;
  warmupRatio: number | null = null;
  loggingSteps = 10;
  loggingFirstStep = false;
  reportTo: string[] = [];
  loggingDir: string | null = null;
  saveSteps = 500;
  saveStrategy = 'steps';
  saveTotalLimit: number | null = null;
  evalStrategy = 'no';
  evalSteps: number | null = null;
  evalOnStart = false;
  loadBestModelAtEnd = false;
  metricForBestModel: string | null = null;
  greaterIsBetter: boolean | null = null;
  seed = 42;
  resumeFromCheckpoint: string | null = null;
  bf16 = true;
  gradientCheckpointing = true;
  dataloaderDropLast = false;
  numThreads: number | null = null;
  beta = 0.1;
  lossType: LossType[] = ['sigmoid'];
  lossWeights: number[] | null = null;
  labelSmoothing = 0;
  fDivergenceType = 'reverse_kl';
  fAlphaDivergenceCoef = 0.5;
  ldAlpha: number | null = null;
  useWeighting = false;
  discopopTau = 0.05;
  disableDropout = true;
  precomputeRefLogProbs = false;
  precomputeRefBatchSize: number | null = null;
  syncRefModel = false;
  refModelMixupAlpha = 0.6;
  refModelSyncSteps = 512;
  maxLength: number | null = 1024;
  truncationMode = 'keep_start';
  padToMultipleOf: number | null = null;
  paddingFree = false;
  sharePrompt = true;
  skipInvalidRows = false;
  datasetNumProc: number | null = null;

  /**
   * @example new DPOConfig({ perDeviceTrainBatchSize: 1, gradientAccumulationSteps: 8, learningRate: 2e-4, beta: 0.1, outputDir: './dpo_ckpt' })
   * @example new DPOConfig({ per_device_train_batch_size: 1, loss_type: ['sigmoid', 'sft'], loss_weights: [1, 0.5] })
   */
  constructor(opts: Record<string, unknown> = {}, where = 'DPOConfig') {
    // TRL's other DPOConfig / TrainingArguments fields (trl-args.ts): accepted, refused or mapped.
    const ours: Record<string, unknown> = {};
    const trl: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(opts)) {
      const t = OPTIONS_BY_SNAKE.has(k) || OPTIONS_BY_CAMEL.has(k) ? undefined : (TRL_ARGS_BY_SNAKE.get(k) ?? TRL_ARGS_BY_CAMEL.get(k));
      if (t && t.cls === 'config') trl[t.snake] = coerceOption({ ...t, camel: k, help: t.why, group: 'training' }, v, where);
      else ours[k] = v;
    }
    const { notes } = resolveTrlArgs(trl, where);
    Object.defineProperty(this, 'notes', { value: notes, enumerable: false });
    Object.assign(this, normaliseOptions(ours, where, ['training', 'dpo', 'data']));
    this.validate(where);
  }

  /** One line for each TRL argument given that has no effect here (the trainer prints them as warnings). */
  declare readonly notes: readonly string[];

  private validate(where: string): void {
    const pos = (k: keyof this & string, v: number) => {
      if (!(v > 0)) throw new DpoError(`${where}: ${snake(k)} must be > 0, got ${v}`);
    };
    pos('perDeviceTrainBatchSize', this.perDeviceTrainBatchSize);
    pos('gradientAccumulationSteps', this.gradientAccumulationSteps);
    pos('loggingSteps', this.loggingSteps);
    if (this.learningRate < 0) throw new DpoError(`${where}: learning_rate must be ≥ 0, got ${this.learningRate}`);
    if (this.beta <= 0 && !this.lossType.every((t) => t === 'sft')) throw new DpoError(`${where}: beta must be > 0, got ${this.beta}`);
    if (this.maxSteps <= 0 && this.maxSteps !== -1) throw new DpoError(`${where}: max_steps must be a positive integer or -1, got ${this.maxSteps}`);
    if (this.numTrainEpochs <= 0 && this.maxSteps <= 0) throw new DpoError(`${where}: num_train_epochs must be > 0 (or set max_steps)`);
    // The loss fields: the same checks dpoLoss's own config gets (losses.ts).
    validateLossConfig(this, where);
    if (this.maxLength !== null && this.maxLength < 2) throw new DpoError(`${where}: max_length must be ≥ 2, got ${this.maxLength}`);
    if (this.warmupRatio !== null && (this.warmupRatio < 0 || this.warmupRatio >= 1)) throw new DpoError(`${where}: warmup_ratio must be in [0, 1), got ${this.warmupRatio}`);
    validateLrSchedule(this.lrSchedulerType, this.lrSchedulerKwargs, this.learningRate, where);
    resolveReportTo(this.reportTo, where);
    if (this.warmupSteps < 0) throw new DpoError(`${where}: warmup_steps must be ≥ 0, got ${this.warmupSteps}`);
    if (this.syncRefModel && this.precomputeRefLogProbs) {
      throw new DpoError(`${where}: sync_ref_model cannot be combined with precompute_ref_log_probs (the reference changes during training)`);
    }
    resolveBestModelArgs(this, where);
  }

  /** The effective warmup steps for a run of `total` steps (transformers 5: < 1 means a ratio, rounded up). */
  warmupFor(total: number): number {
    return warmupSteps(total, this.warmupRatio !== null && this.warmupSteps === 0 ? this.warmupRatio : this.warmupSteps);
  }

  /** TRL/transformers-style snake_case dict (for training_args.json and the report). */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const s of TRAINING_OPTIONS) if (s.camel in this) out[s.snake] = (this as Record<string, unknown>)[s.camel];
    return out;
  }
}

function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
