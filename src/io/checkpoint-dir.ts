/**
 * Saving a model directory that transformers' from_pretrained loads: config.json (the source's raw
 * config with updated fields, written as transformers writes it), the weights (one file or shards
 * plus index) and the tokenizer / generation files copied from the source directory.
 *
 * @example
 * saveModelDir('out/final', { config: cfg.raw, floatPaths: cfg.floatPaths, weights, dtype: 'BF16', sourceDir: cfg.dir });
 * writeDirAtomically('out/checkpoint-10', (tmp) => saveModelDir(tmp, { ... }));
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DpoError } from '../errors.js';
import { updatedConfig, writeModelConfig } from './config.js';
import type { STDType, TensorToWrite } from './safetensors.js';
import { writeWeights, type WrittenWeights } from './sharded.js';

export { writeDirAtomically, writeFileAtomic } from './atomic.js';

/** Files copied from the source model next to the weights, when present. */
export const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'chat_template.json',
  'added_tokens.json', 'vocab.json', 'merges.txt', 'tokenizer.model', 'generation_config.json',
] as const;

/** Copies the tokenizer / generation files (or `files`) of `srcDir` that exist into `dstDir`; returns their names. */
export function copyTokenizerFiles(srcDir: string, dstDir: string, files: readonly string[] = TOKENIZER_FILES): string[] {
  const copied: string[] = [];
  for (const f of files) {
    const src = join(srcDir, f);
    if (!existsSync(src) || resolve(src) === resolve(dstDir, f)) continue;
    try {
      copyFileSync(src, join(dstDir, f));
    } catch (e) {
      throw new DpoError(`cannot copy ${src} to ${dstDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    copied.push(f);
  }
  return copied;
}

const TORCH_DTYPE: Record<STDType, string> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };

export interface SaveModelDirOptions {
  /** The raw config.json object to write (usually the source's, unchanged). */
  config: Record<string, unknown>;
  /** Keys to set (undefined removes one). `dtype` is set from `dtype` below. */
  configUpdates?: Record<string, unknown>;
  /** Paths of integral floats in the source config (ModelConfig.floatPaths), to write them as floats. */
  floatPaths?: ReadonlySet<string>;
  /** Tensors in state-dict order (shards follow this order); tied weights already removed. */
  weights: readonly (readonly [string, TensorToWrite])[];
  /** Stored dtype for float tensors given without one (default F32); also written to config "dtype". */
  dtype?: STDType;
  /** Shard limit, e.g. '5GB'; default 50GB like transformers. */
  maxShardSize?: number | string;
  /** Copy tokenizer / generation files from here. */
  sourceDir?: string;
}

export interface SavedModelDir extends WrittenWeights {
  dir: string;
  copied: string[];
}

/** Writes config.json, weights and tokenizer files into `dir` (created if needed); each file atomically. */
export function saveModelDir(dir: string, opts: SaveModelDirOptions): SavedModelDir {
  mkdirSync(dir, { recursive: true });
  const dtype = opts.dtype ?? 'F32';
  const updates: Record<string, unknown> = { ...opts.configUpdates };
  if (opts.dtype) updates.dtype = TORCH_DTYPE[dtype];
  writeModelConfig(dir, updatedConfig(opts.config, updates), opts.floatPaths);
  const tensors = opts.weights.map(([n, t]) => [n, t.dtype || t.data instanceof Uint16Array ? t : { ...t, dtype }] as const);
  const written = writeWeights(dir, tensors, { maxShardSize: opts.maxShardSize });
  const copied = opts.sourceDir ? copyTokenizerFiles(opts.sourceDir, dir) : [];
  return { dir, copied, ...written };
}
