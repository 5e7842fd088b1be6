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
import { hasDropout } from './model-dropout.js';
import type { StorageSpec } from '../quant/load-stored.js';

/** How the model's base linears are stored (the first FrozenLinear's kind; quant/load-stored.ts stores them all alike). */
export function storageOf(model: CausalLM): StorageSpec | null {
  for (const [, m] of model.namedModules()) if (m instanceof FrozenLinear) return { kind: m._w.kind, nested: m._w.qabsmax !== null };
  return null;
}

export function trainingEstimate(model: CausalLM, args: DPOConfig, pairs: readonly TokenizedPair[], peft: LoraConfig | null, refModelGiven: boolean): MemoryEstimate {
  const layers = loraLayers(model);
  const lora = peft
    ? { r: peft.r, targetModules: peft.targetModules, dropout: peft.loraDropout }
    : layers.length ? { r: layers[0][1].cfg.r, targetModules: layers.map(([n]) => n), dropout: layers[0][1].cfg.dropout } : null;
  // Dropout stays on only without disable_dropout; then a pair's prompt is not shared (trainer.packing).
  const dropout = !args.disableDropout && ((lora?.dropout ?? 0) > 0 || hasDropout(model));
  const bs = Math.min(args.perDeviceTrainBatchSize, pairs.length);
  const { seqLen, tokens } = largestBatch(pairs, bs, args.maxLength, args.sharePrompt && !dropout);
  return estimateTraining(model.arch, args, { lora: lora && { ...lora, dropout: dropout ? lora.dropout : 0 }, seqLen, tokens, rows: bs, refModelGiven, storage: storageOf(model) });
}

/**
 * The longest row, and the tokens of the largest packed micro-batch: the bs pairs with the most
 * tokens, each its two rows truncated to max_length, the prompt once when shared (a lower bound
 * of the common prefix packRows shares).
 */
export function largestBatch(pairs: readonly TokenizedPair[], bs: number, maxLength: number | null, sharePrompt: boolean): { seqLen: number; tokens: number } {
  const cap = (n: number) => (maxLength === null ? n : Math.min(n, maxLength));
  let seqLen = 0;
  const perPair: number[] = [];
  for (const p of pairs) {
    const P = p.promptIds.length, c = cap(P + p.chosenIds.length), r = cap(P + p.rejectedIds.length);
    seqLen = Math.max(seqLen, c, r);
    perPair.push(c + r - (sharePrompt ? Math.min(P, c, r) : 0));
  }
  perPair.sort((a, b) => b - a);
  return { seqLen, tokens: perPair.slice(0, Math.max(1, bs)).reduce((a, n) => a + n, 0) };
}
