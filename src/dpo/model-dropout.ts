/**
 * The dropout switches of a model and its LoRA layers, apart from the trainer so that the memory
 * check (which the trainer imports) can ask whether dropout is on without importing the trainer.
 */
import type { CausalLM } from '../models/causal-lm.js';
import { loraLayers } from '../lora/apply.js';

/** Whether any dropout (model or LoRA) is active. */
export function hasDropout(model: CausalLM): boolean {
  const arch = model.arch as { residDropout?: number; embdDropout?: number; attnDropout?: number };
  return !!(arch.residDropout || arch.embdDropout || arch.attnDropout) || loraLayers(model).some(([, l]) => l.cfg.dropout > 0);
}

/** TRL's disable_dropout_in_model: every dropout probability to 0, LoRA dropout included. */
export function disableDropout(model: CausalLM): void {
  const arch = model.arch as { residDropout: number; embdDropout: number; attnDropout: number };
  arch.residDropout = 0;
  arch.embdDropout = 0;
  arch.attnDropout = 0;
  for (const [, l] of loraLayers(model)) (l.cfg as { dropout: number }).dropout = 0;
}
