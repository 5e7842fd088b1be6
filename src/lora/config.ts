/**
 * LoraConfig with PEFT's names and defaults (r=8, lora_alpha=8, lora_dropout=0). Accepts camelCase
 * (`loraAlpha`) or PEFT's snake_case (`lora_alpha`).
 */
import { DpoError } from '../errors.js';

export class LoraConfig {
  r = 8;
  loraAlpha = 8;
  loraDropout = 0;
  /** Module names, a regex string, "all-linear", or null for PEFT's per-architecture default. */
  targetModules: string[] | string | null = null;
  useRslora = false;
  bias: 'none' = 'none';
  taskType = 'CAUSAL_LM';

  /** @example new LoraConfig({ r: 64, loraAlpha: 16, loraDropout: 0.1, taskType: 'CAUSAL_LM' }) */
  constructor(opts: Record<string, unknown> = {}) {
    const keys: Record<string, keyof LoraConfig> = {
      r: 'r', lora_alpha: 'loraAlpha', loraAlpha: 'loraAlpha', lora_dropout: 'loraDropout', loraDropout: 'loraDropout',
      target_modules: 'targetModules', targetModules: 'targetModules', use_rslora: 'useRslora', useRslora: 'useRslora',
      bias: 'bias', task_type: 'taskType', taskType: 'taskType',
    };
    for (const [k, v] of Object.entries(opts)) {
      if (v === undefined) continue;
      const f = keys[k];
      if (!f) throw new DpoError(`LoraConfig: unknown option "${k}" (supported: r, lora_alpha, lora_dropout, target_modules, use_rslora, bias, task_type)`);
      (this as Record<string, unknown>)[f] = v;
    }
    if (!Number.isInteger(this.r) || this.r <= 0) throw new DpoError(`LoraConfig: r must be a positive integer, got ${this.r}`);
    if (!(typeof this.loraAlpha === 'number' && Number.isFinite(this.loraAlpha))) throw new DpoError(`LoraConfig: lora_alpha must be a number, got ${this.loraAlpha}`);
    if (!(this.loraDropout >= 0 && this.loraDropout < 1)) throw new DpoError(`LoraConfig: lora_dropout must be in [0, 1), got ${this.loraDropout}`);
    if (this.bias !== 'none') throw new DpoError(`LoraConfig: only bias "none" is supported, got "${this.bias}"`);
    if (this.taskType !== 'CAUSAL_LM') throw new DpoError(`LoraConfig: only task_type CAUSAL_LM is supported, got "${this.taskType}"`);
    if (Array.isArray(this.targetModules) && this.targetModules.length === 1 && this.targetModules[0].toLowerCase() === 'all-linear') {
      this.targetModules = 'all-linear';
    }
  }
}
