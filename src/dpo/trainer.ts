/**
 * DPOTrainer: the training loop of TRL's DPOTrainer on transformers' Trainer, step for step:
 * [chosen; rejected] batches → policy log-probs → reference log-probs → loss table → backward
 * (÷ gradient_accumulation_steps) → clip → AdamW → schedule → log / evaluate / checkpoint.
 * It orchestrates; the math lives in logps.ts, losses.ts, optim/ and the ops.
 */
import { performance } from 'node:perf_hooks';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backward, noGrad } from '../autograd/tape.js';
import { scope } from '../tensor/pool.js';
import { Tensor } from '../tensor/tensor.js';
import { scale } from '../ops/index.js';
import { DpoError } from '../errors.js';
import { getMatmulPrecision, setMatmulPrecision, type MatmulPrecision } from '../backend/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import { applyLoraConfig, loraLayers } from '../lora/apply.js';
import { rememberLoraConfig } from '../lora/peft-io.js';
import type { LoraConfig } from '../lora/config.js';
import type { HfTokenizer } from '../tokenizer/tokenizer.js';
import { DPOConfig } from './config.js';
import { sequenceLogps, type PairBatch } from './logps.js';
import type { TokenizedPair } from '../data/prepare.js';
import { batchOf, checkVocabulary, epochOrder, evalSetsOf, prepareTrainingData, type EvalSet, type TrainingData } from './training-data.js';
import type { Dataset } from '../data/dataset.js';
import { checkpointDirs, loadCheckpointWeights, resolveCheckpoint, restoreTrainerCheckpoint, saveTrainerCheckpoint, writeModelFiles } from './checkpoint.js';
import { BestModelTracker } from './best-model.js';
import { loadRefLogpsFromCheckpoint, outputDirCacheFile, readRefLogps, refDataKey, writeRefLogps, type RefLogps } from './ref-cache.js';
import { MetricLog, recordBatchMetrics } from './metrics.js';
import { adaptersOffReference, copyReference, fixedReference, refAdapterReference, type Reference, type RefLogpsOptions } from './reference.js';
import { microBatchesOf, runLayout, type RunLayout } from './schedule.js';
import { computeLoss } from './loss-step.js';
import { AdamW, clipGradNorm, learningRateAt } from '../optim/index.js';
import { assertRunFits, type MemoryEstimate } from '../models/memory-estimate.js';
import { createTrackers, resolveReportTo, type Tracker } from '../report/trackers.js';
import { trainingEstimate } from './memory-check.js';
import { disableDropout, hasDropout } from './model-dropout.js';

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
  /** Progress of the reference log-prob precomputation. */
  onRefProgress?(done: number, total: number, tokens: number): void;
  /** Progress of tokenising a split (`train`, `eval`) before training. */
  onDataProgress?(split: string, done: number, total: number): void;
}

export interface DPOTrainerInit {
  model: CausalLM;
  args?: DPOConfig;
  trainDataset?: Dataset;
  /** One eval set, or several by name as TRL's eval_dataset dict (metrics eval_<name>_loss, ...). */
  evalDataset?: Dataset | Record<string, Dataset> | null;
  /** The tokenizer (TRL's processing_class). */
  processingClass?: HfTokenizer;
  peftConfig?: LoraConfig | null;
  /** An explicit frozen reference model (default: a copy / adapters off, as TRL). */
  refModel?: CausalLM | null;
  /** With an adapter loaded and no peft_config: the initial adapter (TRL, default) or the bare base as reference. */
  adapterReference?: 'initial' | 'base';
  /** Already prepared data (skips validation and tokenisation). */
  data?: TrainingData;
  callbacks?: TrainerCallbacks;
  modelNameOrPath?: string;
  warn?: (msg: string) => void;
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
  /** Set by a stop-signal handler: the loop stops after the current step (or reference batch) and saves a checkpoint. */
  stopRequested = false;
  private totalTrainTokens = 0;
  private trLoss = 0;
  private lastLoggedStep = 0;
  private totalLossScalar = 0;
  private lastCheckpoint: { step: number; dir: string } | null = null;
  /** report_to's trackers (report/trackers.ts): told of the start and of every logged entry. */
  readonly trackers: Tracker[];
  /** best_metric / best_model_checkpoint bookkeeping (best-model.ts). */
  readonly best: BestModelTracker;
  /** Every eval set, in order (name null: a single unnamed one). */
  readonly evalSets: EvalSet[];
  private readonly warn: (msg: string) => void;
  /** precompute_ref_log_probs without a separate reference: the policy's weights are the reference only before the first update. */
  private referenceIsPolicy = false;

  /** Recorded in adapter_config.json (base_model_name_or_path) and the report. */
  readonly modelNameOrPath: string;
  /** The memory estimate checked before training (models/memory-estimate.ts); printed by dpo train. */
  readonly memoryEstimate: MemoryEstimate;
  /** Saved next to the final model / adapter. */
  readonly tokenizer: HfTokenizer | null;

  /**
   * @example
   * const trainer = new DPOTrainer({ model, args, trainDataset, processingClass: tokenizer, peftConfig })
   * await trainer.train()
   */
  constructor(init: DPOTrainerInit) {
    this.model = init.model;
    this.modelNameOrPath = init.modelNameOrPath ?? init.model._nameOrPath ?? '';
    this.tokenizer = init.processingClass ?? null;
    this.args = init.args ?? new DPOConfig();
    this.callbacks = init.callbacks ?? {};
    this.trackers = createTrackers(resolveReportTo(this.args.reportTo, 'DPOConfig'), { outputDir: this.args.outputDir, loggingDir: this.args.loggingDir });
    this.warn = init.warn ?? ((m: string) => process.emitWarning(m, { code: 'DPO_TRL_ARG' }));
    // TRL arguments given that have no effect here (trl-args.ts): one line each.
    for (const n of this.args.notes ?? []) this.warn(n);
    if (init.data) this.data = init.data;
    else {
      if (!init.trainDataset) throw new DpoError('DPOTrainer needs trainDataset (a Dataset of prompt/chosen/rejected)');
      if (!init.processingClass) throw new DpoError('DPOTrainer needs processingClass (the tokenizer)');
      this.data = prepareTrainingData({ train: init.trainDataset, eval: init.evalDataset, tokenizer: init.processingClass, args: this.args, warn: init.warn, onProgress: this.callbacks.onDataProgress });
    }
    checkVocabulary(this.data, this.model.arch.vocabSize);
    this.evalSets = evalSetsOf(this.data);
    this.best = new BestModelTracker(this.args);
    const a = this.args;
    const hadAdapter = loraLayers(this.model).length > 0;
    this.memoryEstimate = trainingEstimate(this.model, a, this.data.train, init.peftConfig ?? null, !!init.refModel);
    assertRunFits(this.memoryEstimate);
    if (init.peftConfig) {
      if (hadAdapter) throw new DpoError('the model already carries a LoRA adapter and a peft_config was given; merge the adapter first, or drop peft_config to continue training it');
      applyLoraConfig(this.model, init.peftConfig, a.seed);
      rememberLoraConfig(this.model, init.peftConfig);
    }
    if (a.disableDropout) disableDropout(this.model);
    this.model.gradientCheckpointing = a.gradientCheckpointing;
    const isLora = loraLayers(this.model).length > 0;
    // Full fine-tuning trains every weight; under LoRA only the adapters (applyLora froze the rest).
    if (!isLora) for (const p of this.model.parameters()) p.requiresGrad = true;
    if (a.syncRefModel && isLora) throw new DpoError('sync_ref_model is not supported with LoRA (as in TRL); use full fine-tuning or drop sync_ref_model');
    if (init.refModel) this.reference = fixedReference(init.refModel);
    else if (isLora && (!(hadAdapter && !init.peftConfig) || init.adapterReference === 'base')) this.reference = adaptersOffReference(this.model);
    else if (a.precomputeRefLogProbs) {
      // One pass before any update: the policy as it is now is the reference, no copy needed.
      this.reference = fixedReference(this.model);
      this.referenceIsPolicy = true;
    } else if (!isLora) this.reference = copyReference(this.model, { bf16Weights: a.bf16 && !a.syncRefModel });
    else this.reference = refAdapterReference(this.model);
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

  /** One micro-batch: forward, loss, backward of loss/ga (train); returns the unscaled loss. */
  microStep(b: PairBatch & { indices: number[] }, ga: number, mode: 'train' | 'eval', split = mode === 'train' ? 'train' : 'eval'): { loss: number; accuracy: number } {
    const a = this.args;
    return scope(() => {
      const ref = this.refLogpsFor(b, split);
      const run = () => {
        const pol = sequenceLogps(this.model, b, { ldAlpha: a.ldAlpha, stats: true, wpo: a.useWeighting, ...this.packing() });
        return { pol, loss: computeLoss(pol, ref, b, a) };
      };
      const { pol, loss } = mode === 'train' ? run() : noGrad(run);
      const lossValue = loss.item();
      if (!Number.isFinite(lossValue)) throw new NonFiniteLossError(lossValue, this.state.global_step + 1);
      // Copy what the metrics need before backward hands the activations back to the pool.
      const B = b.rows / 2;
      const lp = Float64Array.from(pol.logps.data);
      if (mode === 'train') {
        this.totalTrainTokens += countOnes(b.attentionMask);
        backward(scale(loss, 1 / ga), undefined, { releaseActivations: true });
      }
      recordBatchMetrics(this.metrics[mode], {
        stats: pol.stats!, numTokens: this.totalTrainTokens, beta: a.beta,
        chosenLogps: lp.subarray(0, B), rejectedLogps: lp.subarray(B), refChosenLogps: ref.subarray(0, B), refRejectedLogps: ref.subarray(B),
      });
      let acc = 0;
      for (let i = 0; i < B; i++) acc += lp[i] - ref[i] > lp[i + B] - ref[i + B] ? 1 : 0;
      return { loss: lossValue, accuracy: acc / B };
    });
  }

  private refLogpsFor(b: PairBatch & { indices: number[] }, split: string): Float64Array {
    const cache = this.refCache.get(split)?.values;
    if (cache) {
      const B = b.rows / 2;
      const out = new Float64Array(2 * B);
      b.indices.forEach((pairIdx, i) => {
        out[i] = cache[2 * pairIdx];
        out[i + B] = cache[2 * pairIdx + 1];
      });
      return out;
    }
    return this.reference!.logps(b, this.refOptions());
  }

  private refOptions(): RefLogpsOptions {
    return { ldAlpha: this.args.ldAlpha, ...this.packing() };
  }

  /**
   * Batches are always packed (padding_free or not: the same log-probs as the padded batch, without
   * the padding's work), the policy's and the reference's alike, so at step 1 their log-probs are
   * the same bits; a pair's shared prompt is packed once unless dropout would then share its masks.
   */
  private packing(): { paddingFree: boolean; sharePrompt: boolean } {
    return { paddingFree: true, sharePrompt: this.args.sharePrompt && !hasDropout(this.model) };
  }

  /** Precomputed reference log-probs per split ('train', 'eval', 'eval_<name>'): (chosen, rejected) per pair, by position in the prepared split. */
  refCache = new Map<string, RefLogps>();

  /** The split names of the precomputed caches: 'train', then 'eval' or 'eval_<name>' per eval set. */
  private refSplits(): { split: string; pairs: TokenizedPair[]; kind: 'train' | 'eval' }[] {
    return [{ split: 'train', pairs: this.data.train, kind: 'train' as const }, ...this.evalSets.map((e) => ({ split: evalSplitName(e), pairs: e.pairs, kind: 'eval' as const }))];
  }

  /** What the values of a split depend on besides the reference's weights: data, batch composition (seed, batch size), packing, precision. */
  private refDataKey(pairs: TokenizedPair[], kind: 'train' | 'eval'): string {
    const a = this.args;
    const batching = { seed: a.seed, bs: kind === 'train' ? a.perDeviceTrainBatchSize : a.perDeviceEvalBatchSize, ...this.packing(), bf16: a.bf16 };
    return refDataKey(pairs, { c: this.data.collate, ld: a.ldAlpha, ref: this.reference?.kind, batching });
  }

  /**
   * Reference log-probs for a split, cached on disk under output_dir keyed by a hash of the
   * reference's weights, the tokenised data and the settings that change them, so a rerun skips it.
   */
  cachedRefLogps(pairs: TokenizedPair[], split: 'train' | 'eval'): Float64Array {
    return drain(this.cachedRefLogpsPass(pairs, split, split)).values;
  }

  /** cachedRefLogps batch by batch: it yields after each batch, so a caller can let signals in. */
  *cachedRefLogpsPass(pairs: TokenizedPair[], kind: 'train' | 'eval', split: string = kind): Generator<void, RefLogps> {
    const dataKey = this.refDataKey(pairs, kind);
    const file = outputDirCacheFile(this.args.outputDir, split, dataKey, this.reference!);
    const cached = readRefLogps(file, pairs.length);
    if (cached) return { values: cached, dataKey };
    const values = yield* this.refLogpsPass(pairs, kind, this.callbacks.onRefProgress);
    writeRefLogps(file, values);
    return { values, dataKey };
  }

  /**
   * One no-grad pass of the reference over a split (precompute_ref_log_probs), in the batches the
   * split is later consumed in: the training micro-batches of epoch 0 (its seeded order) or the
   * eval batches. Same batch, same shapes, same kernels, so where the policy still equals the
   * reference (step 1) its log-probs equal these bit for bit and TRL's exact zeros stay exact on
   * every CPU (GEMM summation order can depend on the batch's shape).
   */
  computeRefLogps(pairs: TokenizedPair[], split: 'train' | 'eval', onProgress?: (done: number, total: number, tokens: number) => void): Float64Array {
    return drain(this.refLogpsPass(pairs, split, onProgress));
  }

  private *refLogpsPass(pairs: TokenizedPair[], split: 'train' | 'eval', onProgress?: (done: number, total: number, tokens: number) => void): Generator<void, Float64Array> {
    const a = this.args;
    const bs = split === 'train' ? a.perDeviceTrainBatchSize : a.perDeviceEvalBatchSize;
    const order = split === 'train' ? epochOrder(pairs.length, a.seed, 0) : Int32Array.from(pairs.keys());  // as the train loop / evaluate take them
    const out = new Float64Array(pairs.length * 2);
    for (let bi = 0; bi * bs < pairs.length; bi++) {
      const b = batchOf(pairs, this.data.collate, order, bi, bs);
      const r = scope(() => this.reference!.logps(b, this.refOptions()));
      const B = b.indices.length;
      b.indices.forEach((pos, i) => {
        out[2 * pos] = r[i];
        out[2 * pos + 1] = r[i + B];
      });
      onProgress?.(Math.min((bi + 1) * bs, pairs.length), pairs.length, countOnes(b.attentionMask));
      yield;
    }
    return out;
  }

  /** cachedRefLogps with a turn of the event loop after each batch, so a stop signal ends this long pass promptly (null then). */
  private async cachedRefLogpsYielding(pairs: TokenizedPair[], kind: 'train' | 'eval', split: string): Promise<RefLogps | null> {
    const pass = this.cachedRefLogpsPass(pairs, kind, split);
    for (let r = pass.next(); !this.stopRequested; r = pass.next()) {
      if (r.done) return r.value;
      await new Promise((res) => setImmediate(res));
    }
    return null;
  }

  /**
   * precompute_ref_log_probs, before any update and before a resume restores trained weights (TRL
   * computes every split in __init__): each split's values come from the checkpoint resumed from
   * (made from the initial weights; never recomputed from restored ones), else from output_dir's
   * cache, else from one pass of the reference.
   */
  private async precomputeRefLogps(resumedFrom: string | null): Promise<void> {
    for (const { split, pairs, kind } of this.refSplits()) {
      if (this.stopRequested) return;
      if (this.refCache.has(split)) continue;
      if (resumedFrom) {
        const dataKey = this.refDataKey(pairs, kind);
        const stored = loadRefLogpsFromCheckpoint(resumedFrom, split, dataKey, pairs.length);
        if (stored instanceof Float64Array) {
          this.refCache.set(split, { values: stored, dataKey });
          continue;
        }
        if (stored === 'other-data') this.warn(`${resumedFrom}: its precomputed reference log-probs for ${split} were made for other data or settings; computing them from the model as loaded (it must be the initial model)`);
      }
      const r = await this.cachedRefLogpsYielding(pairs, kind, split);
      if (r) this.refCache.set(split, r);
    }
  }

  /** Optimizer over the trainable parameters (created on first use). */
  ensureOptimizer(): AdamW {
    const a = this.args;
    return (this.optimizer ??= new AdamW(this.trainableParameters(), { lr: a.learningRate, beta1: a.adamBeta1, beta2: a.adamBeta2, eps: a.adamEpsilon, weightDecay: a.weightDecay }));
  }

  /** Runs the whole training; resumes from `resumeFrom` (a checkpoint dir) when given. */
  async train(opts: { resumeFromCheckpoint?: string | null } = {}): Promise<TrainOutput> {
    const prev = this.enterPrecision();
    try {
      return await this.trainLoop(opts);
    } finally {
      setMatmulPrecision(prev);
    }
  }

  /** bf16: every float32 GEMM runs on bf16 operands (weights, grads and optimizer stay float32). */
  private enterPrecision(): MatmulPrecision {
    const prev = getMatmulPrecision();
    if (this.args.bf16) setMatmulPrecision('bfloat16');
    return prev;
  }

  private async trainLoop(opts: { resumeFromCheckpoint?: string | null }): Promise<TrainOutput> {
    const a = this.args;
    const layout = this.layout();
    const total = layout.totalSteps;
    const warmup = a.warmupFor(total);
    const opt = this.ensureOptimizer();
    const params = opt.params.map(([, p]) => p);
    for (const p of params) p.grad ??= Tensor.zeros(p.shape, p.dtype).keep();
    const start = performance.now();
    let startStep = 0;
    const resume = opts.resumeFromCheckpoint ?? a.resumeFromCheckpoint;
    const resumedFrom = resume ? resolveCheckpoint(a.outputDir, resume) : null;
    // The reference pass runs on the initial weights, before a resume restores trained ones (TRL
    // computes both splits before any update too).
    if (a.precomputeRefLogProbs) await this.precomputeRefLogps(resumedFrom);
    if (resumedFrom) startStep = this.restore(resumedFrom);
    for (const t of this.trackers) t.trainBegin({ argsJson: JSON.stringify(a.toJSON(), null, 2) });
    this.model.train();
    // transformers: eval_on_start evaluates before the first step (on resume too); it does not enter best-model tracking.
    if (a.evalOnStart && this.evalSets.length && !this.stopRequested) this.evaluate();
    const ga = a.gradientAccumulationSteps;
    let lastGradNorm = 0;
    let lastLoss = NaN, lastAcc = NaN;
    let tokensThisStep = 0;
    for (let step = startStep; step < total && !this.stopRequested; step++) {
      const epoch = Math.floor(step / layout.stepsPerEpoch);
      const u = step % layout.stepsPerEpoch;
      const order = epochOrder(this.data.train.length, a.seed, epoch);
      const micro = microBatchesOf(u, layout, ga);
      let stepLoss = 0;
      tokensThisStep = 0;
      let accSum = 0;
      for (const mb of micro) {
        const b = batchOf(this.data.train, this.data.collate, order, mb, a.perDeviceTrainBatchSize);
        tokensThisStep += countOnes(b.attentionMask);
        const r = this.microStep(b, micro.length, 'train');
        stepLoss += r.loss / micro.length;
        accSum += r.accuracy / micro.length;
      }
      lastGradNorm = clipGradNorm(params, a.maxGradNorm);
      if (!Number.isFinite(lastGradNorm)) throw new NonFiniteLossError(lastGradNorm, step + 1, 'gradient norm');
      const lr = learningRateAt(a.learningRate, a.lrSchedulerType, step + 1, warmup, total, a.lrSchedulerKwargs);
      opt.update(lr);
      opt.zeroGrad();
      if (this.reference && a.syncRefModel && (step + 1) % a.refModelSyncSteps === 0) this.reference.mixup(this.model, a.refModelMixupAlpha);
      this.trLoss += stepLoss;
      lastLoss = stepLoss;
      lastAcc = accSum;
      this.state.global_step = step + 1;
      this.state.epoch = epoch + (Math.min((u + 1) * ga, layout.batchesPerEpoch)) / layout.batchesPerEpoch;
      this.state.num_input_tokens_seen = this.totalTrainTokens;
      const gs = this.state.global_step;
      const last = gs >= total;
      const doLog = gs % this.state.logging_steps === 0 || (a.loggingFirstStep && gs === 1);
      if (doLog) this.logStep(lastGradNorm, lr);
      // DefaultFlowCallback.on_step_end: the last step also evaluates (when off the eval grid) and saves.
      this.evaluateAndSave(a.evalStrategy === 'steps' && (gs % this.state.eval_steps === 0 || last), a.saveStrategy === 'steps' && (gs % this.state.save_steps === 0 || last));
      this.callbacks.onStep?.({ step: gs, totalSteps: total, loss: lastLoss, rewardAccuracy: lastAcc, tokens: tokensThisStep, elapsedS: (performance.now() - start) / 1000 });
      // on_epoch_end: after an epoch's last step, or the step max_steps stops in.
      if (u === layout.stepsPerEpoch - 1 || last) this.evaluateAndSave(a.evalStrategy === 'epoch', a.saveStrategy === 'epoch');
      // Let signals (Ctrl-C) and output through between steps.
      await new Promise((r) => setImmediate(r));
    }
    const runtime = (performance.now() - start) / 1000;
    // A stop after the last step changes nothing: the run finishes and saves its final model.
    if (this.stopRequested && this.state.global_step < total) {
      const interrupted = { globalStep: this.state.global_step, trainingLoss: NaN, metrics: {}, interrupted: true };
      // No step taken (stopped in the reference pass): nothing new to save; resume where this run did.
      if (this.state.global_step === startStep) return { ...interrupted, checkpoint: resumedFrom, saved: false };
      // One more turn of the event loop before the (synchronous) save, so a second signal that came
      // with the first is seen now and quits without a checkpoint.
      await new Promise((r) => setImmediate(r));
      const saved = this.lastCheckpoint?.step === this.state.global_step ? this.lastCheckpoint.dir : this.saveCheckpoint();
      return { ...interrupted, checkpoint: saved, saved: true };
    }
    // transformers' _finalize_training: speed metrics + the average loss over the run.
    this.totalLossScalar += this.trLoss;
    const trainLoss = this.totalLossScalar / Math.max(this.state.global_step, 0.001);
    const samples = a.maxSteps > 0 ? a.maxSteps * a.perDeviceTrainBatchSize * ga : this.data.train.length * a.numTrainEpochs;
    const final: LogEntry = {
      train_runtime: round(runtime, 4), train_samples_per_second: round(samples / runtime, 3),
      train_steps_per_second: round(total / runtime, 3), total_flos: 0, train_loss: trainLoss,
    };
    this.log(final, 'train');
    this.endWithBestModel();
    this.saveModel(a.outputDir);
    return { globalStep: this.state.global_step, trainingLoss: trainLoss, metrics: final, interrupted: false, checkpoint: null, saved: false };
  }

  private logStep(gradNorm: number, lr: number): void {
    const steps = this.state.global_step - this.lastLoggedStep;
    const entry: LogEntry = { loss: this.trLoss / steps, grad_norm: gradNorm, learning_rate: lr };
    this.totalLossScalar += this.trLoss;
    this.trLoss = 0;
    this.lastLoggedStep = this.state.global_step;
    this.log(entry, 'train');
  }

  /** DPOTrainer.log: merge the averaged metric lists, add epoch + step, append to log_history. */
  log(logs: LogEntry, mode: 'train' | 'eval'): LogEntry {
    const entry: LogEntry = { ...logs, ...this.metrics[mode].drain(mode === 'eval' ? 'eval_' : '') };
    entry.epoch = this.state.epoch;
    entry.step = this.state.global_step;
    this.state.log_history.push(entry);
    this.callbacks.onLog?.(entry);
    const { step: _step, ...onLog } = entry; // transformers' on_log gets the entry without step
    for (const t of this.trackers) t.log(onLog, this.state.global_step);
    return entry;
  }

  /**
   * transformers' _maybe_log_save_evaluate after the log: evaluate (then best-model tracking; under
   * save_strategy best a new best is what saves), then save.
   */
  private evaluateAndSave(evaluate: boolean, save: boolean): void {
    if (evaluate && this.evalSets.length) {
      const isBest = this.best.update(this.state, this.evaluate());
      if (this.args.saveStrategy === 'best') save = isBest;
    }
    if (save) this.saveCheckpoint();
  }

  /**
   * Evaluates every eval set, as transformers' evaluate() (TRL's for a dict of sets): one logged
   * entry per set with eval_loss (eval_<name>_loss, ...) and the eval_ DPO metrics; returns them merged.
   */
  evaluate(): LogEntry {
    if (!this.evalSets.length) throw new DpoError('no eval data set given');
    const merged: LogEntry = {};
    for (const set of this.evalSets) Object.assign(merged, this.evaluateSet(set));
    return merged;
  }

  private evaluateSet(set: EvalSet): LogEntry {
    const pairs = set.pairs;
    const split = evalSplitName(set);
    const start = performance.now();
    const wasTraining = this.model.training;
    const prevPrecision = this.enterPrecision();
    this.model.eval();
    const bs = this.args.perDeviceEvalBatchSize;
    let lossSum = 0, n = 0;
    // Outside train() (nothing precomputed yet): the weights are still the initial ones only before the first step.
    if (this.args.precomputeRefLogProbs && !this.refCache.has(split)) {
      if (this.referenceIsPolicy && this.state.global_step > 0) {
        throw new DpoError(`precompute_ref_log_probs: the reference log-probs of ${split} were not computed before training, and the policy is the reference only until the first update (full fine-tuning, no ref_model); pass that eval set at the start, or a ref_model`);
      }
      this.refCache.set(split, drain(this.cachedRefLogpsPass(pairs, 'eval', split)));
    }
    try {
      const order = Int32Array.from(pairs.keys());
      for (let bi = 0; bi * bs < pairs.length; bi++) {
        lossSum += this.microStep(batchOf(pairs, this.data.collate, order, bi, bs), 1, 'eval', split).loss;
        n++;
      }
    } finally {
      setMatmulPrecision(prevPrecision);
      if (wasTraining) this.model.train();
    }
    const runtime = (performance.now() - start) / 1000;
    const p = set.name === null ? 'eval' : `eval_${set.name}`;
    return this.log({ [`${p}_loss`]: lossSum / n, [`${p}_runtime`]: round(runtime, 4), [`${p}_samples_per_second`]: round(pairs.length / runtime, 3), [`${p}_steps_per_second`]: round(n / runtime, 3) }, 'eval');
  }

  /**
   * _finalize_training: with load_best_model_at_end the best checkpoint's weights become the final
   * model; with save_total_limit 1 only the best checkpoint stays.
   */
  private endWithBestModel(): void {
    const best = this.state.best_model_checkpoint;
    if (!best) return;
    if (this.args.loadBestModelAtEnd) loadCheckpointWeights(this.model, best);
    if (this.args.saveTotalLimit === 1) for (const d of checkpointDirs(this.args.outputDir)) if (d !== best) rmSync(d, { recursive: true, force: true });
  }

  /** The final model (or adapter), tokenizer and trainer_state.json, as TRL's save_model + save_state. */
  saveModel(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeModelFiles(this.model, dir, this.modelNameOrPath);
    this.tokenizer?.save(dir);
    writeFileSync(join(dir, 'trainer_state.json'), `${JSON.stringify(this.state, null, 2)}\n`);
    writeFileSync(join(dir, 'training_args.json'), `${JSON.stringify(this.args.toJSON(), null, 2)}\n`);
  }

  // Checkpointing lives in checkpoint.ts.
  saveCheckpoint(): string {
    this.best.beforeSave(this.state, join(this.args.outputDir, `checkpoint-${this.state.global_step}`));
    this.lastCheckpoint = { step: this.state.global_step, dir: saveTrainerCheckpoint(this) };
    return this.lastCheckpoint.dir;
  }

  private restore(dir: string): number {
    // The run's own settings win over the checkpoint's (e.g. a larger max_steps when continuing).
    const { max_steps, logging_steps, eval_steps, save_steps, train_batch_size, num_train_epochs } = this.state;
    const r = restoreTrainerCheckpoint(this, dir);
    Object.assign(this.state, { max_steps, logging_steps, eval_steps, save_steps, train_batch_size, num_train_epochs });
    this.totalTrainTokens = r.totalTrainTokens;
    this.trLoss = r.trLoss;
    this.totalLossScalar = r.totalLossScalar;
    this.lastLoggedStep = r.lastLoggedStep;
    return this.state.global_step;
  }

  /** Bookkeeping that checkpoints carry besides weights and optimizer state. */
  counters(): { totalTrainTokens: number; trLoss: number; totalLossScalar: number; lastLoggedStep: number } {
    return { totalTrainTokens: this.totalTrainTokens, trLoss: this.trLoss, totalLossScalar: this.totalLossScalar, lastLoggedStep: this.lastLoggedStep };
  }
}

export interface TrainOutput {
  globalStep: number;
  trainingLoss: number;
  metrics: LogEntry;
  /** Stopped early (stopRequested) before the last step. */
  interrupted: boolean;
  /** When interrupted: the checkpoint to resume from (null: none, no step was taken). */
  checkpoint: string | null;
  /** When interrupted: whether `checkpoint` was written by this run (false: it is the one it resumed from). */
  saved: boolean;
}

/** A NaN / Inf loss or gradient norm: training stops, the last good checkpoint stays. */
export class NonFiniteLossError extends DpoError {
  constructor(value: number, step: number, what = 'loss') {
    super(`${what} became ${value} at step ${step}; training stopped (the last checkpoint is kept). Lower learning_rate or check the data`);
  }
}

/** The precomputed-cache split name of an eval set: 'eval', or 'eval_<name>' for a named one. */
function evalSplitName(set: EvalSet): string {
  return set.name === null ? 'eval' : `eval_${set.name}`;
}

/** Runs a generator to its end and returns its result. */
function drain<T>(g: Generator<void, T>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

function round(v: number, d: number): number {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

function stepsOf(v: number, total: number): number {
  return v < 1 ? Math.ceil(total * v) : Math.floor(v);
}

function countOnes(m: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < m.length; i++) s += m[i];
  return s;
}
