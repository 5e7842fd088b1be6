/**
 * Applying LoRA to a model the way PEFT 0.21's LoraModel does (check_target_module_exists):
 * target_modules as a list (a module matches when its name equals an entry or ends with "." + entry,
 * then layers_to_transform / layers_pattern), as a regex string (full match on the name), or
 * "all-linear" (every linear layer except the output head); exclude_modules and modules_to_save
 * take precedence; rank_pattern / alpha_pattern pick each layer's r and alpha (get_pattern_key).
 */
import { DpoError } from '../errors.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/linear.js';
import { Tensor } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { LoraConfig, LoraInit } from './config.js';
import { defaultLoraTargets } from '../models/registry.js';
import { LoraLinear, type LoraLayerConfig } from './lora-linear.js';
import { initLoraLayer } from './init.js';

/** A string is a regex (re.fullmatch); a list matches a name equal to an entry or ending with "." + entry. */
export function targetMatches(target: string | string[], name: string): boolean {
  if (typeof target === 'string') return new RegExp(`^(?:${target})$`).test(name);
  return target.some((t) => name === t || name.endsWith(`.${t}`));
}

/** PEFT's get_pattern_key: the first pattern key k with re.match(rf"(.*\.)?({k})$", name), else null. */
export function patternKey(keys: readonly string[], name: string): string | null {
  return keys.find((k) => new RegExp(`^(?:.*\\.)?(?:${k})$`).test(name)) ?? null;
}

/** The layer index PEFT reads for layers_to_transform: the first number after a layers_pattern segment (any segment without one). */
function layerIndex(name: string, layersPattern: string | string[] | null): number | null {
  const pats = layersPattern === null || layersPattern.length === 0 ? null : typeof layersPattern === 'string' ? [layersPattern] : layersPattern;
  const m = pats ? pats.map((p) => new RegExp(`^(?:|.*?\\.)${p}\\.(\\d+)\\.`).exec(name)).find((x) => x) : /^.*?\.[^.]*\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

function isExcluded(cfg: Pick<LoraConfig, 'excludeModules' | 'modulesToSave'>, name: string): boolean {
  const ex = cfg.excludeModules;
  if (ex && (typeof ex === 'string' ? new RegExp(`^(?:${ex})$`).test(name) : ex.some((e) => name === e || name.endsWith(`.${e}`)))) return true;
  return !!cfg.modulesToSave?.some((m) => new RegExp(`(^|.*\\.)${m}($|\\..*)`).test(name));
}

/** One planned LoRA layer. */
export interface LoraTarget {
  name: string;
  r: number;
  alpha: number;
}

type TargetSpec = Pick<LoraConfig, 'targetModules' | 'excludeModules' | 'modulesToSave' | 'layersToTransform' | 'layersPattern'>;

/** The module names LoRA wraps for this config (PEFT's resolution of target_modules and its filters). */
export function resolveTargets(model: CausalLM, spec: string | string[] | null | undefined | TargetSpec): string[] {
  const cfg: TargetSpec = spec !== null && typeof spec === 'object' && !Array.isArray(spec)
    ? spec
    : { targetModules: spec ?? null, excludeModules: null, modulesToSave: null, layersToTransform: null, layersPattern: null };
  const modules = model.namedModules().filter(([n]) => n !== '');
  const linears = modules.filter(([, m]) => m instanceof Linear).map(([n]) => n);
  let target = cfg.targetModules;
  if (target === null || (Array.isArray(target) && target.length === 0)) {
    const d = defaultLoraTargets(model.arch.modelType);
    if (!d) throw new DpoError(`no default LoRA target_modules for model_type ${model.arch.modelType} (PEFT has none); pass lora_target_modules`);
    target = [...d];
  }
  const allLinear = typeof target === 'string' && target.toLowerCase() === 'all-linear';
  const lt = cfg.layersToTransform;
  const found: string[] = [];
  for (const [name, m] of modules) {
    if (isExcluded(cfg, name)) continue;
    let hit = allLinear ? m instanceof Linear && name !== 'lm_head' : targetMatches(target, name);
    // As PEFT: layers_to_transform filters suffix matches only (a name listed in full is taken as is; all-linear is a list of leaf names there).
    if (hit && (allLinear || (typeof target !== 'string' && !target.includes(name))) && lt !== null && !(Array.isArray(lt) && !lt.length)) {
      const idx = layerIndex(name, cfg.layersPattern);
      hit = idx !== null && (typeof lt === 'number' ? idx === lt : lt.includes(idx));
    }
    if (!hit) continue;
    if (!(m instanceof Linear)) {
      if (typeof target === 'string') continue; // a regex also matches containers (model.layers.0); PEFT errors only on leaves it cannot wrap
      throw new DpoError(`LoRA target_modules ${JSON.stringify(target)} match "${name}", which is not a linear layer; LoRA is supported on linear layers only`);
    }
    found.push(name);
  }
  if (!found.length) {
    const sample = [...new Set(linears.map((n) => n.split('.').pop()))].join(', ');
    const hint = typeof target === 'string' && !allLinear ? ` (a single target is a regex on the full module name, as in PEFT: try ".*\\.${target}" or list several names)` : '';
    const filters = cfg.excludeModules || cfg.modulesToSave || lt !== null ? ' after exclude_modules / modules_to_save / layers_to_transform' : '';
    throw new DpoError(`LoRA target_modules ${JSON.stringify(target)} match no linear layer of this ${model.arch.modelType} model${filters}${hint}; its linear layers are: ${sample}`);
  }
  return found;
}

/** Each target's r and alpha from rank_pattern / alpha_pattern; a pattern key that matches no target is an error. */
export function planTargets(names: string[], cfg: Pick<LoraConfig, 'r' | 'loraAlpha' | 'rankPattern' | 'alphaPattern'>, where = 'LoraConfig'): LoraTarget[] {
  const rKeys = Object.keys(cfg.rankPattern ?? {});
  const aKeys = Object.keys(cfg.alphaPattern ?? {});
  const used = new Set<string>();
  const out = names.map((name) => {
    const rk = patternKey(rKeys, name);
    const ak = patternKey(aKeys, name);
    if (rk !== null) used.add(`r:${rk}`);
    if (ak !== null) used.add(`a:${ak}`);
    return { name, r: rk !== null ? cfg.rankPattern[rk] : cfg.r, alpha: ak !== null ? cfg.alphaPattern[ak] : cfg.loraAlpha };
  });
  for (const [label, keys, p] of [['rank_pattern', rKeys, 'r'], ['alpha_pattern', aKeys, 'a']] as const) {
    const stray = keys.find((k) => !used.has(`${p}:${k}`));
    if (stray !== undefined) throw new DpoError(`${where}: ${label} key "${stray}" matches none of the LoRA layers (${names.slice(0, 4).join(', ')}${names.length > 4 ? ', ...' : ''}); keys match the end of a module name, e.g. "down_proj" or "layers\\.0\\.self_attn\\.q_proj"`);
  }
  return out;
}

function parentOf(root: Module, path: string): [Record<string, unknown>, string] {
  const parts = path.split('.');
  let obj: Record<string, unknown> = root as unknown as Record<string, unknown>;
  for (const p of parts.slice(0, -1)) obj = obj[p] as Record<string, unknown>;
  return [obj, parts[parts.length - 1]];
}

export interface ApplyLoraOptions {
  dropout: number;
  useRslora: boolean;
  useDora?: boolean;
  init?: LoraInit;
}

/**
 * Freezes every base parameter and wraps each target linear in a LoraLinear with its own r and
 * alpha. `seed` drives the random parts of the init (torch's RNG cannot be reproduced; load an
 * adapter for bit-exact starts); seed + 1 the LoRA dropout.
 */
export function applyLoraTargets(model: CausalLM, targets: LoraTarget[], opts: ApplyLoraOptions, seed: number): Map<string, LoraLinear> {
  for (const p of model.parameters()) p.requiresGrad = false;
  const init = new Rng(seed);
  const drop = new Rng(seed + 1);
  const out = new Map<string, LoraLinear>();
  for (const t of targets) {
    const [parent, key] = parentOf(model, t.name);
    const base = parent[key];
    if (!(base instanceof Linear)) throw new DpoError(`LoRA target "${t.name}" is not a linear layer`);
    if (t.name === 'lm_head' && opts.dropout > 0) throw new DpoError('LoRA on lm_head needs lora_dropout 0 (the output head is one fused log-prob op here, with no dropout on its input); pass --lora_dropout 0');
    if (opts.init === 'olora' && model.arch.family === 'gpt2') {
      throw new DpoError(`init_lora_weights olora on ${t.name}: PEFT 0.21 factors GPT-2's transposed Conv1D weight and builds adapters of the wrong shape; use pissa or true`);
    }
    const cfg: LoraLayerConfig = { r: t.r, alpha: t.alpha, dropout: opts.dropout, useRslora: opts.useRslora, useDora: !!opts.useDora };
    const l = new LoraLinear(base, cfg, drop);
    initLoraLayer(l, opts.init ?? true, init, t.name);
    parent[key] = l;
    out.set(t.name, l);
  }
  return out;
}

/** The same r / alpha / dropout on every target (PEFT's LoraConfig without patterns, default init). */
export function applyLora(model: CausalLM, cfg: LoraLayerConfig, targets: string[], seed: number): Map<string, LoraLinear> {
  return applyLoraTargets(model, targets.map((name) => ({ name, r: cfg.r, alpha: cfg.alpha })), { dropout: cfg.dropout, useRslora: cfg.useRslora, useDora: cfg.useDora }, seed);
}

/** Applies a whole LoraConfig: targets, per-layer r / alpha, init, DoRA, modules_to_save. */
export function applyLoraConfig(model: CausalLM, cfg: LoraConfig, seed: number): Map<string, LoraLinear> {
  const modules = resolveModulesToSave(model, cfg.modulesToSave);
  const targets = planTargets(resolveTargets(model, cfg), cfg);
  const layers = applyLoraTargets(model, targets, { dropout: cfg.loraDropout, useRslora: cfg.useRslora, useDora: cfg.useDora, init: cfg.initLoraWeights }, seed);
  for (const name of modules) makeTrainableCopy(model, name);
  return layers;
}

/** Module names modules_to_save selects (PEFT's _set_trainable: the name ends with an entry). */
export function resolveModulesToSave(model: CausalLM, names: string[] | null): string[] {
  if (!names?.length) return [];
  const all = model.namedModules().filter(([n]) => n !== '');
  const found: string[] = [];
  for (const want of names) {
    if (model.arch.tieEmbeddings && (want === 'lm_head' || /embed_tokens$|wte$/.test(want))) {
      throw new DpoError(`modules_to_save "${want}": this ${model.arch.modelType} model ties lm_head to the input embedding; a trained copy of one of them is not supported on tied models`);
    }
    const hits = all.filter(([n]) => n.endsWith(want) && !found.some((f) => n.startsWith(`${f}.`)));
    if (!hits.length) throw new DpoError(`modules_to_save "${want}" matches no module of this ${model.arch.modelType} model; e.g. lm_head, ${model.arch.family === 'gpt2' ? 'transformer.wte' : 'embed_tokens'}`);
    found.push(...hits.map(([n]) => n));
  }
  return found;
}

/** What a modules_to_save module keeps: its frozen original tensors and the trained copies. */
export interface TrainableCopy {
  original: Map<string, Tensor>;
  trained: Map<string, Tensor>;
}

/** modules_to_save: the module's own tensors become trainable copies; the frozen originals serve the adapters-off reference. */
export function makeTrainableCopy(model: Module, name: string): void {
  const [parent, key] = parentOf(model, name);
  const m = parent[key] as Module & { _mts?: TrainableCopy };
  if (!(m instanceof Module)) throw new DpoError(`modules_to_save "${name}" is not a module`);
  if ('_w' in m) throw new DpoError(`modules_to_save "${name}": its weight was loaded frozen in ${(m._w as { kind: string }).kind} storage; name it in modules_to_save before loading (dpo train does) so it loads as float32`);
  const copy: TrainableCopy = { original: new Map(), trained: new Map() };
  for (const [k, v] of Object.entries(m)) {
    if (!(v instanceof Tensor)) continue;
    const c = new Tensor(Float32Array.from(v.data as Float32Array), v.shape).keep();
    c.requiresGrad = true;
    copy.original.set(k, v);
    copy.trained.set(k, c);
    (m as unknown as Record<string, unknown>)[k] = c;
  }
  m._mts = copy;
}

/** Every modules_to_save module with its name. */
export function trainedCopies(model: Module): [string, Module & { _mts: TrainableCopy }][] {
  return model.namedModules().filter((e): e is [string, Module & { _mts: TrainableCopy }] => !!(e[1] as { _mts?: unknown })._mts);
}

/** Every LoRA layer of a model with its module name. */
export function loraLayers(model: Module): [string, LoraLinear][] {
  return model.namedModules().filter((e): e is [string, LoraLinear] => e[1] instanceof LoraLinear);
}

/** The adapter's trained tensors: every layer's A, B (and DoRA magnitude), then the modules_to_save copies. */
export function adapterParameters(model: Module): Tensor[] {
  const out: Tensor[] = [];
  for (const [, l] of loraLayers(model)) out.push(l.lora_A.weight, l.lora_B.weight, ...(l.lora_magnitude_vector ? [l.lora_magnitude_vector] : []));
  for (const [, m] of trainedCopies(model)) out.push(...m._mts.trained.values());
  return out;
}

/** Whether the model carries an adapter (LoRA layers or modules_to_save copies). */
export function hasAdapter(model: Module): boolean {
  return loraLayers(model).length > 0 || trainedCopies(model).length > 0;
}

/** Turns all adapters off (reference forward of a fresh LoRA: base layers, original modules_to_save) while fn runs. */
export function withAdaptersDisabled<T>(model: Module, fn: () => T): T {
  const layers = loraLayers(model);
  const copies = trainedCopies(model);
  const swap = (to: 'original' | 'trained') => {
    for (const [, m] of copies) for (const [k, t] of m._mts[to]) (m as unknown as Record<string, unknown>)[k] = t;
  };
  for (const [, l] of layers) l.disabled = true;
  swap('original');
  try {
    return fn();
  } finally {
    for (const [, l] of layers) l.disabled = false;
    swap('trained');
  }
}
