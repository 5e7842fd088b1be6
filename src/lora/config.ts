/**
 * LoraConfig with PEFT 0.21's names and defaults (r=8, lora_alpha=8, lora_dropout=0). Accepts camelCase
 * (`loraAlpha`) or PEFT's snake_case (`lora_alpha`), and checks what PEFT's __post_init__ checks.
 */
import { DpoError } from '../errors.js';

/** PEFT's init_lora_weights values implemented here (pissa_niter_N is randomised: not supported). */
export type LoraInit = boolean | 'gaussian' | 'pissa' | 'olora';
export const LORA_INITS = [true, false, 'gaussian', 'pissa', 'olora'] as const;

export class LoraConfig {
  r = 8;
  loraAlpha = 8;
  loraDropout = 0;
  /** Module names, a regex string (full match on the module's name), "all-linear", or null for PEFT's per-architecture default. */
  targetModules: string[] | string | null = null;
  useRslora = false;
  /** DoRA: a trained magnitude per output feature times the direction of W + ΔW (PEFT's DoraLinearLayer). */
  useDora = false;
  /** Modules trained in full (a copy), e.g. lm_head or embed_tokens; saved under their own names. */
  modulesToSave: string[] | null = null;
  initLoraWeights: LoraInit = true;
  /** Per-module rank / alpha: keys are regexes matched at the end of the module name (PEFT's get_pattern_key). */
  rankPattern: Record<string, number> = {};
  alphaPattern: Record<string, number> = {};
  layersToTransform: number[] | number | null = null;
  layersPattern: string[] | string | null = null;
  excludeModules: string[] | string | null = null;
  bias: 'none' = 'none';
  taskType = 'CAUSAL_LM';

  /** @example new LoraConfig({ r: 64, loraAlpha: 16, loraDropout: 0.1, taskType: 'CAUSAL_LM', use_dora: true, rank_pattern: { down_proj: 8 } }) */
  constructor(opts: Record<string, unknown> = {}) {
    const fields = ['r', 'loraAlpha', 'loraDropout', 'targetModules', 'useRslora', 'useDora', 'modulesToSave', 'initLoraWeights', 'rankPattern', 'alphaPattern', 'layersToTransform', 'layersPattern', 'excludeModules', 'bias', 'taskType'] as const;
    const snake = (f: string) => f.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    const keys = new Map<string, string>();
    for (const f of fields) {
      keys.set(f, f);
      keys.set(snake(f), f);
    }
    for (const [k, v] of Object.entries(opts)) {
      if (v === undefined) continue;
      const f = keys.get(k);
      if (!f) throw new DpoError(`LoraConfig: unknown option "${k}" (supported: ${fields.map(snake).join(', ')})`);
      (this as Record<string, unknown>)[f] = v;
    }
    const bad = (m: string) => new DpoError(`LoraConfig: ${m}`);
    if (!Number.isInteger(this.r) || this.r <= 0) throw bad(`r must be a positive integer, got ${this.r}`);
    if (!(typeof this.loraAlpha === 'number' && Number.isFinite(this.loraAlpha))) throw bad(`lora_alpha must be a number, got ${this.loraAlpha}`);
    if (!(this.loraDropout >= 0 && this.loraDropout < 1)) throw bad(`lora_dropout must be in [0, 1), got ${this.loraDropout}`);
    if (this.bias !== 'none') throw bad(`only bias "none" is supported, got "${this.bias}"`);
    if (this.taskType !== 'CAUSAL_LM') throw bad(`only task_type CAUSAL_LM is supported, got "${this.taskType}"`);
    if (Array.isArray(this.targetModules) && this.targetModules.length === 1 && this.targetModules[0].toLowerCase() === 'all-linear') {
      this.targetModules = 'all-linear';
    }
    if (typeof this.useDora !== 'boolean') throw bad(`use_dora must be true or false, got ${JSON.stringify(this.useDora)}`);
    if (typeof this.initLoraWeights === 'string' && /^pissa_niter_\d+$/.test(this.initLoraWeights)) {
      throw bad(`init_lora_weights "${this.initLoraWeights}" (randomised SVD) is not supported; use "pissa" (the exact SVD)`);
    }
    if (!LORA_INITS.some((i) => i === this.initLoraWeights)) throw bad(`init_lora_weights must be one of true, false, "gaussian", "pissa", "olora"; got ${JSON.stringify(this.initLoraWeights)}`);
    for (const [name, pat, isRank] of [['rank_pattern', this.rankPattern, true], ['alpha_pattern', this.alphaPattern, false]] as const) {
      if (!pat || typeof pat !== 'object' || Array.isArray(pat)) throw bad(`${name} must be a mapping of module-name pattern → ${isRank ? 'rank' : 'alpha'}, got ${JSON.stringify(pat)}`);
      for (const [k, v] of Object.entries(pat)) {
        if (isRank ? !(Number.isInteger(v) && v > 0) : !(typeof v === 'number' && Number.isFinite(v))) throw bad(`${name}["${k}"] must be ${isRank ? 'a positive integer' : 'a number'}, got ${JSON.stringify(v)}`);
        try {
          new RegExp(k);
        } catch {
          throw bad(`${name} key "${k}" is not a valid regular expression`);
        }
      }
    }
    if (this.modulesToSave !== null && !(Array.isArray(this.modulesToSave) && this.modulesToSave.every((m) => typeof m === 'string'))) throw bad(`modules_to_save must be a list of module names, got ${JSON.stringify(this.modulesToSave)}`);
    const lt = this.layersToTransform;
    if (lt !== null && !(Number.isInteger(lt) || (Array.isArray(lt) && lt.every((i) => Number.isInteger(i))))) throw bad(`layers_to_transform must be a layer index or a list of them, got ${JSON.stringify(lt)}`);
    // PEFT's LoraConfig.__post_init__ refuses these combinations.
    // Also for "all-linear", as PEFT's __post_init__ (a str either way).
    const regex = typeof this.targetModules === 'string';
    if (regex && lt !== null) throw bad('layers_to_transform cannot be used when target_modules is a str (a regex); list the module names instead');
    if (regex && this.layersPattern !== null) throw bad('layers_pattern cannot be used when target_modules is a str (a regex); list the module names instead');
    if (this.layersPattern !== null && this.layersPattern.length && lt === null) throw bad('when layers_pattern is specified, layers_to_transform must also be specified');
  }
}

/**
 * TRL's get_peft_config(ModelConfig) plus our `peft_config` mapping (PEFT's own LoraConfig keys,
 * which win): a single lora_target_modules value is a string, i.e. a full-match regex in PEFT, as
 * TRL's ModelConfig.__post_init__ makes it ("all-linear" stays the shorthand).
 * @example loraConfigFromOptions({ lora_r: 16, lora_alpha: 32, lora_target_modules: ['.*proj'], peft_config: { init_lora_weights: 'pissa' } })
 */
export function loraConfigFromOptions(o: Record<string, unknown>): LoraConfig {
  const tm = o.lora_target_modules as string[] | string | null | undefined;
  const extra = (o.peft_config ?? {}) as Record<string, unknown>;
  if (typeof extra !== 'object' || Array.isArray(extra)) throw new DpoError(`peft_config must be a mapping of PEFT LoraConfig keys, got ${JSON.stringify(extra)}`);
  return new LoraConfig({
    r: o.lora_r, lora_alpha: o.lora_alpha, lora_dropout: o.lora_dropout, use_rslora: o.use_rslora, use_dora: o.use_dora,
    target_modules: Array.isArray(tm) && tm.length === 1 ? tm[0] : (tm ?? null),
    modules_to_save: (o.lora_modules_to_save as string[] | null | undefined) ?? null,
    ...extra,
  });
}
