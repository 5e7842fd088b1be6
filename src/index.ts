/**
 * dpo-ts: Direct Preference Optimization for causal LMs, TRL-compatible.
 * @example
 * const model = AutoModelForCausalLM.fromPretrained('./SmolLM2-135M-Instruct');
 * const tokenizer = AutoTokenizer.fromPretrained('./SmolLM2-135M-Instruct');
 * const trainer = new DPOTrainer({ model, args: new DPOConfig({ beta: 0.1 }), trainDataset, processingClass: tokenizer });
 * await trainer.train();
 */
import { loadCausalLM, saveCausalLM } from './models/load.js';
import { resolveModelDir } from './io/model-source.js';
import { HfTokenizer } from './tokenizer/tokenizer.js';
import type { CausalLM } from './models/causal-lm.js';

export const AutoModelForCausalLM = {
  /** Loads a model directory or an HF-cache model id (config.json + safetensors). */
  fromPretrained(nameOrPath: string): CausalLM {
    return loadCausalLM(nameOrPath).model;
  },
};

export const AutoTokenizer = {
  /** Loads tokenizer.json / tokenizer_config.json (and the chat template) of a model. */
  fromPretrained(nameOrPath: string): HfTokenizer {
    return HfTokenizer.fromDir(resolveModelDir(nameOrPath));
  },
};

export { HfTokenizer, saveCausalLM, loadCausalLM };
export type { CausalLM };
export { Dataset } from './data/dataset.js';
export { DPOConfig } from './dpo/config.js';
export { DPOTrainer, type DPOTrainerInit, type TrainOutput } from './dpo/trainer.js';
export { LoraConfig } from './lora/config.js';
export { loadAdapter, saveAdapter, mergeAndUnload } from './lora/peft-io.js';
export { generate, generateBatch, type GenerationConfig } from './generate/generate.js';
export { LOSSES } from './dpo/losses.js';
export { DpoError } from './errors.js';
export { setBackend, getBackend } from './backend/index.js';
export { Tensor } from './tensor/tensor.js';
export { noGrad, backward } from './autograd/tape.js';
export { generatePairs, type GeneratePairsOptions, type PairsResult, type PairsStats } from './generate/pairs.js';
export { loadJudge, type Judge, type RewardFn, type PairwiseJudge, type JudgePrompt } from './generate/judge.js';
export { judgeEval, type JudgeEvalOptions, type JudgeEvalResult } from './generate/judge-eval.js';
export { iterativeDPO, iterativeHistory, type IterativeDPOOptions, type IterativeDPOResult, type RoundRecord, type RefUpdate } from './dpo/iterative.js';
