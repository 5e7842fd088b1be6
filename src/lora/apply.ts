/**
 * Applying LoRA to a model's linear layers the way PEFT's LoraModel does: target_modules as a list
 * (a module matches when its name equals an entry or ends with "." + entry), as a regex string
 * (full match), or "all-linear" (every linear layer except the output head).
 */
import { DpoError } from '../errors.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/linear.js';
import { Rng } from '../tensor/rng.js';
import type { CausalLM } from '../models/causal-lm.js';
import { defaultLoraTargets } from '../models/registry.js';
import { LoraLinear, type LoraLayerConfig } from './lora-linear.js';

export function targetMatches(target: string | string[], name: string): boolean {
  if (typeof target === 'string') return new RegExp(`^(?:${target})$`).test(name);
  return target.some((t) => name === t || name.endsWith(`.${t}`));
}

/** The linear-layer names LoRA would wrap for this config (PEFT's resolution of target_modules). */
export function resolveTargets(model: CausalLM, target: string | string[] | null | undefined): string[] {
  const linears = model.namedModules().filter(([n, m]) => m instanceof Linear && n !== 'lm_head').map(([n]) => n);
  let spec: string | string[];
  if (target === null || target === undefined || (Array.isArray(target) && target.length === 0)) {
    const d = defaultLoraTargets(model.arch.modelType);
    if (!d) throw new DpoError(`no default LoRA target_modules for model_type ${model.arch.modelType} (PEFT has none); pass lora_target_modules`);
    spec = [...d];
  } else if (typeof target === 'string' && target.toLowerCase() === 'all-linear') {
    return linears;
  } else spec = target;
  const found = linears.filter((n) => targetMatches(spec, n));
  if (!found.length) {
    const sample = [...new Set(linears.map((n) => n.split('.').pop()))].join(', ');
    throw new DpoError(`LoRA target_modules ${JSON.stringify(spec)} match no linear layer of this ${model.arch.modelType} model; its linear layers are: ${sample}`);
  }
  return found;
}

function parentOf(root: Module, path: string): [Record<string, unknown>, string] {
  const parts = path.split('.');
  let obj: Record<string, unknown> = root as unknown as Record<string, unknown>;
  for (const p of parts.slice(0, -1)) obj = obj[p] as Record<string, unknown>;
  return [obj, parts[parts.length - 1]];
}

/**
 * Freezes every base parameter and wraps each target linear in a LoraLinear. `seed` drives the
 * A-matrix init (torch's RNG cannot be reproduced; load an adapter for bit-exact starts).
 */
export function applyLora(model: CausalLM, cfg: LoraLayerConfig, targets: string[], seed: number): Map<string, LoraLinear> {
  for (const p of model.parameters()) p.requiresGrad = false;
  const init = new Rng(seed);
  const drop = new Rng(seed + 1);
  const out = new Map<string, LoraLinear>();
  for (const name of targets) {
    const [parent, key] = parentOf(model, name);
    const base = parent[key];
    if (!(base instanceof Linear)) throw new DpoError(`LoRA target "${name}" is not a linear layer`);
    const l = new LoraLinear(base, cfg, drop, init);
    parent[key] = l;
    out.set(name, l);
  }
  return out;
}

/** Every LoRA layer of a model with its module name. */
export function loraLayers(model: Module): [string, LoraLinear][] {
  return model.namedModules().filter((e): e is [string, LoraLinear] => e[1] instanceof LoraLinear);
}

/** Turns all adapters off (reference forward of a fresh LoRA) while fn runs. */
export function withAdaptersDisabled<T>(model: Module, fn: () => T): T {
  const layers = loraLayers(model);
  for (const [, l] of layers) l.disabled = true;
  try {
    return fn();
  } finally {
    for (const [, l] of layers) l.disabled = false;
  }
}
