/**
 * A model saved back in the layout of the checkpoint it was loaded from (dpo merge; a full
 * fine-tune of a multimodal checkpoint's text model): every tensor we loaded under its source name
 * with the model's values, every tensor we never loaded (a gemma3 checkpoint's vision tower and
 * projector: registration.passThrough) copied unchanged (same name, dtype and bytes), so a merged
 * gemma-3-4b-it still loads in transformers as Gemma3ForConditionalGeneration.
 *
 * @example
 * mergeAndUnload(model);
 * saveLikeSource(model, sourceDir, 'out/merged', { dtype: 'source' });
 * copySourceFiles(sourceDir, 'out/merged'); // config.json, processor and tokenizer files, as they are
 */
import { mkdirSync } from 'node:fs';
import { copyTokenizerFiles, TOKENIZER_FILES } from '../io/checkpoint-dir.js';
import { openCheckpointWeights, type CheckpointWeights } from '../io/checkpoint-files.js';
import type { STDType, TensorToWrite } from '../io/safetensors.js';
import { writeWeights, type WrittenWeights } from '../io/sharded.js';
import type { CausalLM } from './causal-lm.js';
import { architectureFor } from './registry.js';

/** Besides the tokenizer files: config.json and a multimodal model's processor files, copied verbatim. */
export const SOURCE_FILES = ['config.json', 'preprocessor_config.json', 'processor_config.json'] as const;

export interface SaveLikeSourceOptions {
  /** 'source': each loaded tensor in the dtype the source stores it in; 'F32': float32 (training checkpoints). */
  dtype: 'source' | 'F32';
  /** Shard limit, e.g. '5GB'; default 50GB like transformers. */
  maxShardSize?: number | string;
}

/**
 * The tensors to write, in the source's order: the model's parameters under the source names
 * (stored layout, e.g. GPT-2's Conv1D), pass-through tensors as raw bytes (16-bit ones as views of
 * the mapped source: keep `w` open until written), then any parameter the source lacked.
 */
export function weightsLikeSource(model: CausalLM, w: CheckpointWeights, dtype: SaveLikeSourceOptions['dtype']): [string, TensorToWrite][] {
  const arch = model.arch;
  const A = architectureFor(arch);
  const byModule = new Map(model.namedParameters().map(([name, t]) => [name, A.export(name, { shape: t.shape.slice(), data: t.data as Float32Array }, arch)] as const));
  const out: [string, TensorToWrite][] = [];
  const used = new Set<string>();
  for (const [name, info] of w.entries) {
    // Loading checked every tensor's dtype (F32, BF16 or F16: check-checkpoint.ts), these included.
    if (A.passThrough?.(name, arch)) {
      out.push([name, { shape: info.shape, data: info.dtype === 'F32' ? w.read(name) : w.viewRaw16(name), dtype: info.dtype as STDType }]);
      continue;
    }
    const m = A.rename(name, arch);
    const e = m === null ? undefined : byModule.get(m);
    if (!e || used.has(m!)) continue; // buffers and a tied lm_head: transformers does not need them
    used.add(m!);
    out.push([name, { shape: e[1].shape, data: e[1].data, dtype: dtype === 'source' ? (info.dtype as STDType) : 'F32' }]);
  }
  for (const [m, [name, t]] of byModule) if (!used.has(m)) out.push([name, { shape: t.shape, data: t.data, dtype: 'F32' }]);
  return out;
}

/** Writes the model's weights into `outDir` in the layout of the checkpoint at `sourceDir` (see weightsLikeSource). */
export function saveLikeSource(model: CausalLM, sourceDir: string, outDir: string, opts: SaveLikeSourceOptions): WrittenWeights {
  mkdirSync(outDir, { recursive: true });
  const w = openCheckpointWeights(sourceDir);
  try {
    return writeWeights(outDir, weightsLikeSource(model, w, opts.dtype), { maxShardSize: opts.maxShardSize });
  } finally {
    w.close();
  }
}

/** Copies config.json, the processor files and the tokenizer / generation files of `sourceDir` that exist, unchanged. */
export function copySourceFiles(sourceDir: string, outDir: string): string[] {
  return copyTokenizerFiles(sourceDir, outDir, [...SOURCE_FILES, ...TOKENIZER_FILES]);
}
