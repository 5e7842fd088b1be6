/**
 * Loading and saving whole models in the Hugging Face layout: config.json + safetensors weights,
 * through the same loaders a user's downloaded checkpoint goes through.
 */
import { mkdirSync } from 'node:fs';
import { readModelConfig, writeModelConfig } from '../io/config.js';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { resolveModelDir } from '../io/model-source.js';
import { openCheckpointWeights } from '../io/checkpoint-files.js';
import { writeSafetensors, type STDType } from '../io/safetensors.js';
import type { ArchConfig } from './arch.js';
import { checkCheckpoint } from './check-checkpoint.js';
import { WEIGHTS_INDEX_NAME, WEIGHTS_NAME } from '../io/sharded.js';
import type { CausalLM } from './causal-lm.js';
import { archFromConfig, buildModel, exportWeights } from './registry.js';
import { buildStoredModel, type StorageSpec } from '../quant/load-stored.js';

export interface LoadedModel {
  model: CausalLM;
  /** The resolved checkpoint directory. */
  dir: string;
  /** What the user passed (path or model id). */
  nameOrPath: string;
}

/** config.json of a checkpoint directory (raw JSON and float paths). */
export function readConfig(dir: string): { raw: Record<string, unknown>; floatPaths: Set<string> } {
  return readModelConfig(dir);
}

/**
 * Loads a causal LM from a local directory or an HF-cache model id. `beforeBuild` sees the checked
 * architecture before any layer exists (e.g. to refuse a run that cannot fit in memory).
 */
export function loadCausalLM(nameOrPath: string, opts: { beforeBuild?: (arch: ArchConfig) => void; storage?: StorageSpec | null } = {}): LoadedModel {
  const dir = resolveModelDir(nameOrPath);
  const { raw, floatPaths } = readConfig(dir);
  const arch = { ...archFromConfig(raw, join(dir, 'config.json')), floatPaths };
  const w = openCheckpointWeights(dir);
  try {
    // Headers against config.json first: a wrong size fails here, before a layer or buffer exists.
    const weights = w.sharded ? { path: join(dir, WEIGHTS_INDEX_NAME), label: `the shards of ${WEIGHTS_INDEX_NAME}` } : { path: join(dir, WEIGHTS_NAME), label: WEIGHTS_NAME };
    checkCheckpoint(arch, w.entries.map(([name, info]) => ({ name, dtype: info.dtype, shape: info.shape, file: w.pathOf(name) })), join(dir, 'config.json'), weights);
    opts.beforeBuild?.(arch);
    // storage: the frozen base linears in bf16 / f16 / 4-bit / 8-bit (quant/load-stored.ts).
    const model = opts.storage && opts.storage.kind !== 'f32'
      ? buildStoredModel(arch, w, dir, opts.storage)
      : buildModel(arch, w.entries.map(([name, info, load]) => [name, (into?: Float32Array) => ({ shape: info.shape, data: load(into) })]), dir);
    model._nameOrPath = nameOrPath;
    return { model, dir, nameOrPath };
  } finally {
    w.close();
  }
}

/** Saves config.json + model.safetensors so transformers' from_pretrained loads it. */
export function saveCausalLM(model: CausalLM, dir: string, opts: { dtype?: STDType } = {}): void {
  mkdirSync(dir, { recursive: true });
  const raw = { ...model.arch.raw };
  if (opts.dtype) raw.torch_dtype = opts.dtype === 'BF16' ? 'bfloat16' : opts.dtype === 'F16' ? 'float16' : 'float32';
  writeModelConfig(dir, raw, model.arch.floatPaths);
  const tensors = exportWeights(model).map(([name, t]) => [name, { shape: t.shape, data: t.data, dtype: opts.dtype ?? 'F32' }] as [string, { shape: number[]; data: Float32Array; dtype: STDType }]);
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
}
