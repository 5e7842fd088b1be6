/**
 * The trainer's memory check: the estimate for this model, these options and the longest
 * tokenized pair, before the gradients, AdamW state and reference copy are allocated.
 */
import type { CausalLM } from '../models/causal-lm.js';
import { estimateTraining, type MemoryEstimate } from '../models/memory-estimate.js';
import { loraLayers } from '../lora/apply.js';
import type { LoraConfig } from '../lora/config.js';
import type { TokenizedPair } from '../data/prepare.js';
import type { DPOConfig } from './config.js';
import { FrozenLinear } from '../nn/frozen-linear.js';
import type { StorageSpec } from '../quant/load-stored.js';

/** How the model's base linears are stored (the first FrozenLinear's kind; quant/load-stored.ts stores them all alike). */
export function storageOf(model: CausalLM): StorageSpec | null {
  for (const [, m] of model.namedModules()) if (m instanceof FrozenLinear) return { kind: m._w.kind, nested: m._w.qabsmax !== null };
  return null;
}

export function trainingEstimate(model: CausalLM, args: DPOConfig, pairs: readonly TokenizedPair[], peft: LoraConfig | null, refModelGiven: boolean): MemoryEstimate {
  let seqLen = 0;
  for (const p of pairs) seqLen = Math.max(seqLen, p.promptIds.length + Math.max(p.chosenIds.length, p.rejectedIds.length));
  const layers = loraLayers(model);
  const lora = peft
    ? { r: peft.r, targetModules: peft.targetModules }
    : layers.length ? { r: layers[0][1].cfg.r, targetModules: layers.map(([n]) => n) } : null;
  return estimateTraining(model.arch, args, { lora, seqLen, rows: Math.min(args.perDeviceTrainBatchSize, pairs.length), refModelGiven, storage: storageOf(model) });
}
