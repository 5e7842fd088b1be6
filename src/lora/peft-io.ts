/**
 * PEFT adapter files: adapter_model.safetensors with PEFT 0.21's key names and adapter_config.json,
 * so PeftModel.from_pretrained loads them; and loading such an adapter onto a model to continue
 * training or to merge. Keys (get_peft_model_state_dict, adapter name removed):
 *   base_model.model.<module>.lora_A.weight / lora_B.weight     LoRA factors
 *   base_model.model.<module>.lora_magnitude_vector             DoRA magnitude (out)
 *   base_model.model.<module>.weight                            a modules_to_save copy
 *   base_model.model.<module>.base_layer.weight                 lm_head's base (PEFT saves it with a LoRA lm_head)
 * pissa / olora adapters are saved as PEFT saves them (init_lora_weights kept): PEFT, and this
 * loader, redo the initialisation on the base (W − s·B₀·A₀) before reading A and B.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import type { CausalLM } from '../models/causal-lm.js';
import { Linear } from '../nn/linear.js';
import { applyLoraTargets, loraLayers, makeTrainableCopy, planTargets, resolveModulesToSave, targetMatches, trainedCopies } from './apply.js';
import { LoraConfig, type LoraInit } from './config.js';
import type { LoraLinear } from './lora-linear.js';

const PREFIX = 'base_model.model.';

/**
 * Our module names ↔ PEFT's for this model: the same, except in a multimodal checkpoint, whose
 * text layers PEFT names by transformers' module path (Gemma3ForConditionalGeneration:
 * model.language_model.layers.…; lm_head stays lm_head).
 */
export function peftModuleNames(model: CausalLM): { toPeft(name: string): string; fromPeft(name: string): string } {
  const p = model.arch.modulePrefix;
  if (!p) return { toPeft: (n) => n, fromPeft: (n) => n };
  return {
    toPeft: (n) => (n.startsWith('model.') ? `${p}${n.slice('model.'.length)}` : n),
    fromPeft: (n) => (n.startsWith(p) ? `model.${n.slice(p.length)}` : n),
  };
}

/** The LoraConfig an adapter was made or loaded with, for adapter_config.json. */
const settings = new WeakMap<CausalLM, LoraConfig>();

/** Records the config of the adapter now on `model` (applyLoraConfig's caller, loadAdapter). */
export function rememberLoraConfig(model: CausalLM, cfg: LoraConfig): void {
  settings.set(model, cfg);
}

/** The LoraConfig recorded for the adapter on `model`, if any. */
export function loraConfigOf(model: CausalLM): LoraConfig | undefined {
  return settings.get(model);
}

export function adapterTensors(model: CausalLM): [string, TensorToWrite][] {
  const out: [string, TensorToWrite][] = [];
  const { toPeft } = peftModuleNames(model);
  const t = (name: string, x: { shape: readonly number[]; data: Float32Array | Float64Array }) => out.push([`${PREFIX}${toPeft(name)}`, { shape: x.shape as number[], data: x.data }]);
  for (const [name, l] of loraLayers(model)) {
    t(`${name}.lora_A.weight`, l.lora_A.weight);
    t(`${name}.lora_B.weight`, l.lora_B.weight);
    if (l.lora_magnitude_vector) t(`${name}.lora_magnitude_vector`, l.lora_magnitude_vector);
    if (name === 'lm_head') t(`${name}.base_layer.weight`, l.base_layer.weight);
  }
  for (const [name, m] of trainedCopies(model)) for (const [k, x] of m._mts.trained) t(`${name}.${k}`, x);
  return out;
}

export function adapterConfig(model: CausalLM, baseModelNameOrPath: string): Record<string, unknown> {
  const layers = loraLayers(model);
  if (!layers.length) throw new DpoError('the model has no LoRA adapter to save');
  const cfg = layers[0][1].cfg;
  const s = settings.get(model);
  const leaves = [...new Set(layers.map(([n]) => n.split('.').pop()!))].sort();
  // r / lora_alpha: the config's; layers that differ are in the patterns (PEFT's own layout).
  const r = s?.r ?? cfg.r;
  const alpha = s?.loraAlpha ?? cfg.alpha;
  const { toPeft } = peftModuleNames(model);
  const rankPattern = s ? s.rankPattern : Object.fromEntries(layers.filter(([, l]) => l.cfg.r !== r).map(([n, l]) => [toPeft(n), l.cfg.r]));
  const alphaPattern = s ? s.alphaPattern : Object.fromEntries(layers.filter(([, l]) => l.cfg.alpha !== alpha).map(([n, l]) => [toPeft(n), l.cfg.alpha]));
  // A multimodal model: leaf names would also put LoRA on the vision tower's layers there, so a regex over the text model.
  const mp = model.arch.modulePrefix;
  const leafTargets = mp ? `(?:${mp.replace(/\./g, '\\.')}.*\\.)?(?:${leaves.join('|')})` : leaves;
  return {
    alpha_pattern: alphaPattern, auto_mapping: null, base_model_name_or_path: baseModelNameOrPath, bias: 'none',
    exclude_modules: s?.excludeModules ?? null, fan_in_fan_out: model.arch.family === 'gpt2', inference_mode: true, init_lora_weights: s?.initLoraWeights ?? true,
    layer_replication: null, layers_pattern: s?.layersPattern ?? null, layers_to_transform: s?.layersToTransform ?? null, loftq_config: {}, lora_alpha: alpha,
    lora_bias: false, lora_dropout: cfg.dropout, megatron_config: null, megatron_core: 'megatron.core', modules_to_save: s?.modulesToSave ?? null,
    peft_type: 'LORA', peft_version: '0.21.0', r, rank_pattern: rankPattern, revision: null,
    target_modules: typeof s?.targetModules === 'string' && s.targetModules.toLowerCase() !== 'all-linear' ? s.targetModules : leafTargets,
    target_parameters: null, task_type: 'CAUSAL_LM', trainable_token_indices: null, use_dora: !!cfg.useDora, use_qalora: false,
    use_rslora: cfg.useRslora,
  };
}

/** Writes adapter_model.safetensors + adapter_config.json into `dir`. */
export function saveAdapter(model: CausalLM, dir: string, baseModelNameOrPath: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_config.json'), `${JSON.stringify(adapterConfig(model, baseModelNameOrPath), null, 2)}\n`);
  writeSafetensors(join(dir, 'adapter_model.safetensors'), adapterTensors(model));
}

export interface AdapterInfo {
  config: Record<string, unknown>;
  baseModel: string | null;
}

/** Reads an adapter's config (to find its base model) without touching a model. */
export function readAdapterConfig(dir: string): AdapterInfo {
  const p = join(dir, 'adapter_config.json');
  if (!existsSync(p)) throw new DpoError(`${dir}: no adapter_config.json; --adapter_name_or_path must point at a PEFT adapter directory`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new DpoError(`${p}: not valid JSON (${(e as Error).message})`);
  }
  if (!config || typeof config !== 'object' || Array.isArray(config)) throw new DpoError(`${p}: must be a JSON object`);
  if (config.peft_type !== 'LORA') throw new DpoError(`${p}: peft_type ${String(config.peft_type)} is not supported (only LORA)`);
  return { config, baseModel: typeof config.base_model_name_or_path === 'string' ? config.base_model_name_or_path : null };
}

const LORA_KEY = /^base_model\.model\.(.+)\.(lora_A|lora_B)(?:\.default)?\.weight$/;
const MAG_KEY = /^base_model\.model\.(.+)\.lora_magnitude_vector(?:\.default)?(?:\.weight)?$/;

/**
 * Applies the adapter in `dir` to `model` (LoRA layers created on its target modules with the
 * r / alpha of rank_pattern / alpha_pattern, the init redone where it changes the base, weights
 * loaded). Every adapter tensor must find its place; a key-prefix mismatch is an error here, not
 * a silent no-op as in PEFT.
 */
export function loadAdapter(model: CausalLM, dir: string, seed = 0): Map<string, LoraLinear> {
  const { config } = readAdapterConfig(dir);
  const cfgPath = join(dir, 'adapter_config.json');
  const file = join(dir, 'adapter_model.safetensors');
  if (!existsSync(file)) throw new DpoError(`${dir}: no adapter_model.safetensors`);
  const st = new SafetensorsFile(file);
  try {
    const cfg = checkAdapterConfig(config, cfgPath);
    const saved = resolveModulesToSave(model, cfg.modulesToSave);
    const modules = new Set<string>();
    const others: string[] = [];
    const { toPeft, fromPeft } = peftModuleNames(model);
    for (const name of st.tensors.keys()) {
      const m = LORA_KEY.exec(name) ?? MAG_KEY.exec(name);
      if (m) modules.add(fromPeft(m[1]));
      else others.push(name);
    }
    if (!modules.size) throw new DpoError(`${file}: holds no LoRA weights`);
    for (const k of others) {
      const rest = k.startsWith(PREFIX) ? fromPeft(k.slice(PREFIX.length)) : null;
      const ok = rest !== null && (saved.some((s) => rest.startsWith(`${s}.`)) || (/^(.+)\.base_layer\.weight$/.test(rest) && modules.has(rest.replace(/\.base_layer\.weight$/, ''))));
      if (!ok) throw new DpoError(`${file}: unexpected tensor "${k}" (expected base_model.model.<module>.lora_A.weight / lora_B.weight${cfg.modulesToSave ? ', or a modules_to_save weight' : '; modules_to_save is not set in adapter_config.json'})`);
    }
    const all = new Map(model.namedModules());
    for (const name of modules) {
      if (model.arch.modulePrefix && !all.has(name) && !name.startsWith('model.layers.')) throw new DpoError(`${file}: adapter targets "${name}", outside the text model of this multimodal ${model.arch.modelType} checkpoint (the vision tower and projector are not loaded); use an adapter on the language model only`);
      if (!(all.get(name) instanceof Linear)) throw new DpoError(`${file}: adapter targets "${name}", which is not a linear layer of this ${model.arch.modelType} model; is the adapter for another base model?`);
    }
    const tm = config.target_modules;
    if ((Array.isArray(tm) && tm.every((t) => typeof t === 'string')) || (typeof tm === 'string' && tm.toLowerCase() !== 'all-linear')) {
      const stray = [...modules].filter((m) => !targetMatches(tm as string | string[], toPeft(m)));
      if (stray.length) throw new DpoError(`${cfgPath}: target_modules ${JSON.stringify(tm)} does not cover "${stray[0]}", which the adapter's weights hold; is adapter_config.json from this adapter?`);
    }
    // Per-layer r / alpha exactly as PEFT builds them (a pattern may match no layer of a saved adapter: no error then).
    // (Under PEFT's names, which rank_pattern / alpha_pattern keys use.)
    const targets = planTargetsLoose([...modules].map(toPeft), cfg).map((t) => ({ ...t, name: fromPeft(t.name) }));
    // Header shapes against each layer's r and the base layers before any LoRA buffer exists.
    const keyOf = (name: string, ab: 'A' | 'B') => [`${PREFIX}${toPeft(name)}.lora_${ab}.weight`, `${PREFIX}${toPeft(name)}.lora_${ab}.default.weight`].find((k) => st.tensors.has(k));
    for (const { name, r } of targets) {
      const base = all.get(name) as Linear;
      for (const [ab, want] of [['A', [r, base.inFeatures]], ['B', [base.outFeatures, r]]] as const) {
        const key = keyOf(name, ab);
        if (!key) throw new DpoError(`${file}: missing lora_${ab} for ${name}`);
        const got = st.tensors.get(key)!.shape;
        if (got.join() === want.join()) continue;
        const rAxis = ab === 'A' ? 0 : 1;
        if (got.length === 2 && got[1 - rAxis] === want[1 - rAxis]) throw new DpoError(`${cfgPath}: r is ${r}${r !== cfg.r ? ` for ${name} (rank_pattern)` : ''} but ${file} has ${key} of shape [${got.join(', ')}]; expected ${got[rAxis]}`);
        throw new DpoError(`${file}: ${key} has shape [${got.join(', ')}] but r=${r} on ${name} (${base.inFeatures} → ${base.outFeatures}) needs [${want.join(', ')}]; is the adapter for another base model?`);
      }
    }
    const useDora = config.use_dora === true;
    const layers = applyLoraTargets(model, targets, { dropout: cfg.loraDropout, useRslora: cfg.useRslora, useDora, init: cfg.initLoraWeights }, seed);
    for (const [name, l] of layers) {
      for (const ab of ['A', 'B'] as const) st.read(keyOf(name, ab)!, (ab === 'A' ? l.lora_A.weight.data : l.lora_B.weight.data) as Float32Array);
      const pn = `${PREFIX}${toPeft(name)}`;
      const baseKey = `${pn}.base_layer.weight`;
      if (st.tensors.has(baseKey)) readShaped(st, baseKey, l.base_layer.weight.data as Float32Array, l.base_layer.weight.shape, file);
      const magKey = [`${pn}.lora_magnitude_vector`, `${pn}.lora_magnitude_vector.default.weight`, `${pn}.lora_magnitude_vector.weight`].find((k) => st.tensors.has(k));
      if (useDora && !magKey) throw new DpoError(`${file}: use_dora is true but ${name} has no lora_magnitude_vector`);
      if (!useDora && magKey) throw new DpoError(`${file}: ${magKey} is a DoRA magnitude but adapter_config.json has use_dora false`);
      if (magKey) readShaped(st, magKey, l.lora_magnitude_vector!.data as Float32Array, [l.outFeatures], file);
    }
    for (const name of saved) {
      makeTrainableCopy(model, name);
      const m = trainedCopies(model).find(([n]) => n === name)![1];
      for (const [k, t] of m._mts.trained) {
        const key = `${PREFIX}${toPeft(name)}.${k}`;
        if (!st.tensors.has(key)) throw new DpoError(`${file}: modules_to_save ${JSON.stringify(cfg.modulesToSave)} selects ${name} but the file has no ${key}`);
        readShaped(st, key, t.data as Float32Array, t.shape, file);
      }
    }
    rememberLoraConfig(model, cfg);
    return layers;
  } finally {
    st.close();
  }
}

function readShaped(st: SafetensorsFile, key: string, out: Float32Array, shape: readonly number[], file: string): void {
  const got = st.tensors.get(key)!.shape;
  if (got.join() !== shape.join()) throw new DpoError(`${file}: ${key} has shape [${got.join(', ')}] but the model needs [${shape.join(', ')}]; is the adapter for another base model?`);
  st.read(key, out);
}

/** planTargets without the unused-key check (a saved adapter's patterns may name layers it does not hold). */
function planTargetsLoose(names: string[], cfg: LoraConfig) {
  const pick = (p: Record<string, number>) => Object.fromEntries(Object.entries(p).filter(([k]) => names.some((n) => new RegExp(`^(?:.*\\.)?(?:${k})$`).test(n))));
  return planTargets(names, { ...cfg, rankPattern: pick(cfg.rankPattern), alphaPattern: pick(cfg.alphaPattern) });
}

/** adapter_config.json's LoRA settings as a LoraConfig (each field checked, one line per problem). */
function checkAdapterConfig(config: Record<string, unknown>, path: string): LoraConfig {
  const r = config.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) throw new DpoError(`${path}: "r" must be a whole number ≥ 1, got ${JSON.stringify(r)}`);
  if (typeof config.lora_alpha !== 'number' || !Number.isFinite(config.lora_alpha)) throw new DpoError(`${path}: "lora_alpha" must be a number, got ${JSON.stringify(config.lora_alpha)}`);
  const drop = config.lora_dropout ?? 0;
  if (typeof drop !== 'number' || !(drop >= 0 && drop < 1)) throw new DpoError(`${path}: "lora_dropout" must be a number in [0, 1), got ${JSON.stringify(drop)}`);
  for (const [k, ok] of [['lora_bias', false], ['layer_replication', null], ['target_parameters', null], ['trainable_token_indices', null], ['use_qalora', false]] as const) {
    if (config[k] !== undefined && config[k] !== ok && !(Array.isArray(config[k]) && !(config[k] as unknown[]).length)) throw new DpoError(`${path}: "${k}" ${JSON.stringify(config[k])} is not supported (only ${JSON.stringify(ok)})`);
  }
  const init = config.init_lora_weights ?? true;
  try {
    return new LoraConfig({
      r, lora_alpha: config.lora_alpha, lora_dropout: drop, use_rslora: config.use_rslora === true, use_dora: config.use_dora === true,
      init_lora_weights: init as LoraInit, rank_pattern: config.rank_pattern ?? {}, alpha_pattern: config.alpha_pattern ?? {},
      modules_to_save: config.modules_to_save ?? null, exclude_modules: config.exclude_modules ?? null,
      target_modules: (config.target_modules as string | string[] | null) ?? null,
      ...(typeof config.target_modules === 'string' ? {} : { layers_to_transform: config.layers_to_transform ?? null, layers_pattern: config.layers_pattern ?? null }),
    });
  } catch (e) {
    throw new DpoError(`${path}: ${(e as Error).message.replace(/^LoraConfig: /, '')}`);
  }
}

/** Merges every LoRA layer into its base weight and unwraps it (PEFT's merge_and_unload); modules_to_save copies become the modules' weights. */
export function mergeAndUnload(model: CausalLM): void {
  for (const [name, l] of loraLayers(model)) {
    l.base_layer.weight.data.set(l.mergedWeight());
    const parts = name.split('.');
    let parent: Record<string, unknown> = model as unknown as Record<string, unknown>;
    for (const p of parts.slice(0, -1)) parent = parent[p] as Record<string, unknown>;
    parent[parts[parts.length - 1]] = l.base_layer;
  }
  for (const [, m] of trainedCopies(model)) delete (m as { _mts?: unknown })._mts;
  settings.delete(model);
  for (const p of model.parameters()) p.requiresGrad = true;
}
