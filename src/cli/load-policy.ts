/**
 * Resolves what a command was pointed at: a model directory / HF-cache id, optionally with a PEFT
 * adapter (given separately, or the path itself is an adapter directory naming its base model).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { loadCausalLM } from '../models/load.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { ArchConfig } from '../models/arch.js';
import { HfTokenizer } from '../tokenizer/tokenizer.js';
import { loadAdapter, readAdapterConfig } from '../lora/peft-io.js';
import { trainsEmbeddings, type StorageSpec } from '../quant/load-stored.js';

export interface Policy {
  model: CausalLM;
  tokenizer: HfTokenizer;
  /** The base model's path or id. */
  base: string;
  /** The base model's resolved checkpoint directory. */
  dir: string;
  adapter: string | null;
}

/**
 * `beforeBuild(arch, hasAdapter)` runs once the checkpoint is checked, before the model is built;
 * `storage(hasAdapter)` says how the frozen base linears are stored (quant/options.ts), null = float32.
 */
export function loadPolicy(modelNameOrPath: string, adapterPath: string | null = null, beforeBuild?: (arch: ArchConfig, hasAdapter: boolean) => void, storage?: (hasAdapter: boolean) => StorageSpec | null): Policy {
  let base = modelNameOrPath;
  let adapter = adapterPath;
  if (!adapter && existsSync(join(modelNameOrPath, 'adapter_config.json')) && !existsSync(join(modelNameOrPath, 'config.json'))) {
    adapter = modelNameOrPath;
    const b = readAdapterConfig(adapter).baseModel;
    if (!b) throw new DpoError(`${adapter}: adapter_config.json has no base_model_name_or_path; pass --model_name_or_path <base> --adapter_name_or_path ${adapter}`);
    base = b;
  }
  let spec = storage?.(adapter !== null) ?? null;
  // A continued adapter that trains the embedding or lm_head keeps them float32 (quant/load-stored.ts).
  if (spec && adapter) {
    const c = readAdapterConfig(adapter).config;
    if (trainsEmbeddings(c.target_modules as string[] | string | null, c.modules_to_save as string[] | null)) spec = { ...spec, trainedEmbeddings: true };
  }
  const { model, dir } = loadCausalLM(base, { beforeBuild: beforeBuild && ((arch) => beforeBuild(arch, adapter !== null)), storage: spec });
  // The tokenizer saved next to an adapter wins (it is what training used).
  const tokDir = adapter && existsSync(join(adapter, 'tokenizer.json')) ? adapter : dir;
  const tokenizer = HfTokenizer.fromDir(tokDir);
  if (adapter) loadAdapter(model, adapter);
  if (tokenizer.vocabSize > model.arch.vocabSize) {
    throw new DpoError(`${tokDir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${model.arch.vocabSize}; the tokenizer does not belong to this model`);
  }
  return { model, tokenizer, base, dir, adapter };
}
