/**
 * PEFT adapter files: adapter_model.safetensors with PEFT's key names
 * (base_model.model.<module>.lora_A.weight) and adapter_config.json, so PeftModel.from_pretrained
 * loads them; and loading such an adapter onto a model to continue training or to merge.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import type { CausalLM } from '../models/causal-lm.js';
import { Linear } from '../nn/linear.js';
import { applyLora, loraLayers, targetMatches } from './apply.js';
import type { LoraLinear } from './lora-linear.js';

const PREFIX = 'base_model.model.';

export function adapterTensors(model: CausalLM): [string, TensorToWrite][] {
  const out: [string, TensorToWrite][] = [];
  for (const [name, l] of loraLayers(model)) {
    out.push([`${PREFIX}${name}.lora_A.weight`, { shape: l.lora_A.weight.shape, data: l.lora_A.weight.data }]);
    out.push([`${PREFIX}${name}.lora_B.weight`, { shape: l.lora_B.weight.shape, data: l.lora_B.weight.data }]);
  }
  return out;
}

export function adapterConfig(model: CausalLM, baseModelNameOrPath: string): Record<string, unknown> {
  const layers = loraLayers(model);
  if (!layers.length) throw new DpoError('the model has no LoRA adapter to save');
  const cfg = layers[0][1].cfg;
  const targets = [...new Set(layers.map(([n]) => n.split('.').pop()!))].sort();
  return {
    alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: baseModelNameOrPath, bias: 'none',
    exclude_modules: null, fan_in_fan_out: model.arch.family === 'gpt2', inference_mode: true, init_lora_weights: true,
    layer_replication: null, layers_pattern: null, layers_to_transform: null, loftq_config: {}, lora_alpha: cfg.alpha,
    lora_bias: false, lora_dropout: cfg.dropout, megatron_config: null, megatron_core: 'megatron.core', modules_to_save: null,
    peft_type: 'LORA', peft_version: '0.21.0', r: cfg.r, rank_pattern: {}, revision: null, target_modules: targets,
    target_parameters: null, task_type: 'CAUSAL_LM', trainable_token_indices: null, use_dora: false, use_qalora: false,
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

/**
 * Applies the adapter in `dir` to `model` (LoRA layers created on its target modules, weights
 * loaded). Every adapter tensor must find its layer; a key-prefix mismatch is an error here, not
 * a silent no-op as in PEFT.
 */
export function loadAdapter(model: CausalLM, dir: string, seed = 0): Map<string, LoraLinear> {
  const { config } = readAdapterConfig(dir);
  const file = join(dir, 'adapter_model.safetensors');
  if (!existsSync(file)) throw new DpoError(`${dir}: no adapter_model.safetensors`);
  const st = new SafetensorsFile(file);
  try {
    const modules = new Set<string>();
    for (const name of st.tensors.keys()) {
      const m = /^base_model\.model\.(.+)\.lora_[AB](?:\.default)?\.weight$/.exec(name);
      if (!m) throw new DpoError(`${file}: unexpected tensor "${name}" (expected base_model.model.<module>.lora_A.weight / lora_B.weight)`);
      modules.add(m[1]);
    }
    if (!modules.size) throw new DpoError(`${file}: holds no LoRA weights`);
    const all = new Map(model.namedModules());
    for (const name of modules) {
      if (!(all.get(name) instanceof Linear)) throw new DpoError(`${file}: adapter targets "${name}", which is not a linear layer of this ${model.arch.modelType} model; is the adapter for another base model?`);
    }
    const r = checkAdapterConfig(config, join(dir, 'adapter_config.json'), [...modules]);
    // Header shapes against r and the base layers before any LoRA buffer exists.
    for (const name of modules) {
      const base = all.get(name) as Linear;
      for (const [ab, want] of [['A', [r, base.inFeatures]], ['B', [base.outFeatures, r]]] as const) {
        const key = [`${PREFIX}${name}.lora_${ab}.weight`, `${PREFIX}${name}.lora_${ab}.default.weight`].find((k) => st.tensors.has(k));
        if (!key) throw new DpoError(`${file}: missing lora_${ab} for ${name}`);
        const got = st.tensors.get(key)!.shape;
        if (got.join() === want.join()) continue;
        const rAxis = ab === 'A' ? 0 : 1;
        if (got.length === 2 && got[1 - rAxis] === want[1 - rAxis]) throw new DpoError(`${join(dir, 'adapter_config.json')}: r is ${r} but ${file} has ${key} of shape [${got.join(', ')}]; expected ${got[rAxis]}`);
        throw new DpoError(`${file}: ${key} has shape [${got.join(', ')}] but r=${r} on ${name} (${base.inFeatures} → ${base.outFeatures}) needs [${want.join(', ')}]; is the adapter for another base model?`);
      }
    }
    const layers = applyLora(model, { r, alpha: Number(config.lora_alpha), dropout: Number(config.lora_dropout ?? 0), useRslora: config.use_rslora === true }, [...modules], seed);
    for (const [name, l] of layers) {
      for (const ab of ['A', 'B'] as const) {
        const key = [`${PREFIX}${name}.lora_${ab}.weight`, `${PREFIX}${name}.lora_${ab}.default.weight`].find((k) => st.tensors.has(k));
        if (!key) throw new DpoError(`${file}: missing lora_${ab} for ${name}`);
        const t = ab === 'A' ? l.lora_A.weight : l.lora_B.weight;
        const info = st.tensors.get(key)!;
        if (info.shape.join() !== t.shape.join()) throw new DpoError(`${file}: ${key} has shape [${info.shape}] but r=${r} on ${name} needs [${t.shape}]`);
        st.read(key, t.data as Float32Array);
      }
    }
    return layers;
  } finally {
    st.close();
  }
}

/** r, lora_alpha, lora_dropout and target_modules of adapter_config.json, checked against the adapter's modules; returns r. */
function checkAdapterConfig(config: Record<string, unknown>, path: string, modules: string[]): number {
  const r = config.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) throw new DpoError(`${path}: "r" must be a whole number ≥ 1, got ${JSON.stringify(r)}`);
  if (typeof config.lora_alpha !== 'number' || !Number.isFinite(config.lora_alpha)) throw new DpoError(`${path}: "lora_alpha" must be a number, got ${JSON.stringify(config.lora_alpha)}`);
  const drop = config.lora_dropout ?? 0;
  if (typeof drop !== 'number' || !(drop >= 0 && drop < 1)) throw new DpoError(`${path}: "lora_dropout" must be a number in [0, 1), got ${JSON.stringify(drop)}`);
  const tm = config.target_modules;
  if (Array.isArray(tm) && tm.every((t) => typeof t === 'string')) {
    const stray = modules.filter((m) => !targetMatches(tm as string[], m));
    if (stray.length) throw new DpoError(`${path}: target_modules ${JSON.stringify(tm)} does not cover "${stray[0]}", which the adapter's weights hold; is adapter_config.json from this adapter?`);
  }
  return r;
}

/** Merges every LoRA layer into its base weight and unwraps it (PEFT's merge_and_unload). */
export function mergeAndUnload(model: CausalLM): void {
  for (const [name, l] of loraLayers(model)) {
    l.base_layer.weight.data.set(l.mergedWeight());
    const parts = name.split('.');
    let parent: Record<string, unknown> = model as unknown as Record<string, unknown>;
    for (const p of parts.slice(0, -1)) parent = parent[p] as Record<string, unknown>;
    parent[parts[parts.length - 1]] = l.base_layer;
  }
  for (const p of model.parameters()) p.requiresGrad = true;
}
