/**
 * DPOTrainer: the training loop of TRL's DPOTrainer on transformers' Trainer, step for step:
 * [chosen; rejected] batches → policy log-probs → reference log-probs → loss table → backward
 * (÷ gradient_accumulation_steps) → clip → AdamW → schedule → log / evaluate / checkpoint.
 * It orchestrates; the math lives in logps.ts, losses.ts, optim/ and the ops.
 */
import { performance } from 'node:perf_hooks';
import { backward, noGrad } from '../autograd/tape.js';
import { scope } from '../tensor/pool.js';
import { Tensor } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import { scale } from '../ops/index.js';
import { DpoError } from '../errors.js';
import type { CausalLM } from '../models/causal-lm.js';
import { applyLora, loraLayers, resolveTargets } from '../lora/apply.js';
import type { LoraConfig } from '../lora/config.js';
import { DPOConfig } from './config.js';
import { sequenceLogps, type PairBatch } from './logps.js';
import { MetricLog, recordBatchMetrics } from './metrics.js';
import { adaptersOffReference, copyReference, refAdapterReference, type Reference } from './reference.js';
import { microBatchesOf, runLayout, type RunLayout } from './schedule.js';
import { computeLoss } from './loss-step.js';
import { AdamW, clipGradNorm, learningRateAt } from '../optim/index.js';
import type { TrainingData } from './training-data.js';

export interface LogEntry {
  [k: string]: number;
}

export interface TrainerState {
  epoch: number;
  global_step: number;
  max_steps: number;
  logging_steps: number;
  eval_steps: number;
  save_steps: number;
  train_batch_size: number;
  num_train_epochs: number;
  num_input_tokens_seen: number;
  total_flos: number;
  log_history: LogEntry[];
  best_metric: number | null;
  best_global_step: number | null;
  best_model_checkpoint: string | null;
  is_local_process_zero: boolean;
  is_world_process_zero: boolean;
  is_hyper_param_search: boolean;
  trial_name: string | null;
  trial_params: null;
  stateful_callbacks: Record<string, unknown>;
}

export interface TrainerCallbacks {
  /** After every optimizer step (for progress bars). */
  onStep?(p: { step: number; totalSteps: number; loss: number; rewardAccuracy: number; tokens: number; elapsedS: number }): void;
  /** Every logged entry (also written to trainer_state.json's log_history). */
  onLog?(entry: LogEntry): void;
  /** After a checkpoint is written. */
  onSave?(dir: string): void;
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  learningRate: number;
}

export class DPOTrainer {
  readonly model: CausalLM;
  readonly args: DPOConfig;
  readonly data: TrainingData;
  readonly state: TrainerState;
  readonly metrics = { train: new MetricLog(), eval: new MetricLog() };
  reference: Reference | null = null;
  optimizer: AdamW | null = null;
  callbacks: TrainerCallbacks;
  /** Set by a SIGINT handler: the loop saves a checkpoint and stops after the current step. */
  stopRequested = false;
  private totalTrainTokens = 0;
  private trLoss = 0;
  private lastLoggedStep = 0;
  private totalLossScalar = 0;
  private readonly dropoutRng: Rng;

  constructor(init: { model: CausalLM; args: DPOConfig; data: TrainingData; peftConfig?: LoraConfig | null; refModel?: CausalLM | null; callbacks?: TrainerCallbacks }) {
    this.model = init.model;
    this.args = init.args;
    this.data = init.data;
    this.callbacks = init.callbacks ?? {};
    this.dropoutRng = new Rng(init.args.seed);
    const a = init.args;
    const hadAdapter = loraLayers(this.model).length > 0;
    if (init.peftConfig) {
      if (hadAdapter) throw new DpoError('the model already carries a LoRA adapter and a peft_config was given; merge the adapter first, or drop peft_config to continue training it');
      const p = init.peftConfig;
      const targets = resolveTargets(this.model, p.targetModules);
      applyLora(this.model, { r: p.r, alpha: p.loraAlpha, dropout: p.loraDropout, useRslora: p.useRslora }, targets, a.seed);
    }
    if (a.disableDropout) disableDropout(this.model);
    const isLora = loraLayers(this.model).length > 0;
    if (a.syncRefModel && isLora) throw new DpoError('sync_ref_model is not supported with LoRA (as in TRL); use full fine-tuning or drop sync_ref_model');
    if (!a.precomputeRefLogProbs || a.syncRefModel) {
      if (init.refModel) this.reference = { kind: 'copy', logps: (b, ld) => noGrad(() => Float64Array.from(sequenceLogps(init.refModel!, b, { ldAlpha: ld }).logps.data)), mixup: () => { throw new DpoError('sync_ref_model needs the built-in reference copy; do not pass refModel'); } };
      else if (!isLora) this.reference = copyReference(this.model);
      else if (hadAdapter && !init.peftConfig) this.reference = refAdapterReference(this.model);
      else this.reference = adaptersOffReference(this.model);
    }
    const layout = this.layout();
    this.state = {
      epoch: 0, global_step: 0, max_steps: layout.totalSteps,
      logging_steps: stepsOf(a.loggingSteps, layout.totalSteps), eval_steps: stepsOf(a.evalSteps ?? a.loggingSteps, layout.totalSteps),
      save_steps: stepsOf(a.saveSteps, layout.totalSteps), train_batch_size: a.perDeviceTrainBatchSize,
      num_train_epochs: layout.numEpochs, num_input_tokens_seen: 0, total_flos: 0, log_history: [],
      best_metric: null, best_global_step: null, best_model_checkpoint: null, is_local_process_zero: true,
      is_world_process_zero: true, is_hyper_param_search: false, trial_name: null, trial_params: null,
      stateful_callbacks: { TrainerControl: { args: { should_epoch_stop: false, should_evaluate: false, should_log: false, should_save: true, should_training_stop: true }, attributes: {} } },
    };
  }

  layout(): RunLayout {
    const a = this.args;
    return runLayout(this.data.train.length, a.perDeviceTrainBatchSize, a.gradientAccumulationSteps, a.numTrainEpochs, a.maxSteps, a.dataloaderDropLast);
  }

  trainableParameters(): [string, Tensor][] {
    return this.model.namedParameters().filter(([, p]) => p.requiresGrad);
  }

  /** One micro-batch: forward, loss, backward of loss/ga; returns the unscaled loss. */
  microStep(b: PairBatch & { refLogps?: Float64Array | null }, ga: number, mode: 'train' | 'eval'): number {
    const a = this.args;
    return scope(() => {
      const ref = b.refLogps ?? this.reference!.logps(b, a.ldAlpha);
      const run = () => {
        const pol = sequenceLogps(this.model, b, { ldAlpha: a.ldAlpha, stats: true, wpo: a.useWeighting });
        const loss = computeLoss(pol, ref, b, a);
        return { pol, loss };
      };
      const { pol, loss } = mode === 'train' ? run() : noGrad(run);
      const lossValue = loss.item();
      if (mode === 'train') {
        this.totalTrainTokens += countOnes(b.attentionMask);
        backward(scale(loss, 1 / ga));
      }
      const B = b.rows / 2;
      const lp = pol.logps.data;
      recordBatchMetrics(this.metrics[mode], {
        stats: pol.stats!, numTokens: this.totalTrainTokens, beta: a.beta,
        chosenLogps: lp.subarray(0, B), rejectedLogps: lp.subarray(B), refChosenLogps: ref.subarray(0, B), refRejectedLogps: ref.subarray(B),
      });
      return lossValue;
    });
  }
}

function stepsOf(v: number, total: number): number {
  return v < 1 ? Math.ceil(total * v) : Math.floor(v);
}

function countOnes(m: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < m.length; i++) s += m[i];
  return s;
}

/** TRL's disable_dropout_in_model: every dropout probability to 0, LoRA dropout included. */
export function disableDropout(model: CausalLM): void {
  const arch = model.arch as { residDropout: number; embdDropout: number; attnDropout: number };
  arch.residDropout = 0;
  arch.embdDropout = 0;
  arch.attnDropout = 0;
  for (const [, l] of loraLayers(model)) (l.cfg as { dropout: number }).dropout = 0;
}
