/**
 * The GGUF tables by model_type: one table per architecture under gguf-arch/ (how llama.cpp names
 * our modules, which output rows it permutes, the hyper-parameters it reads, the extra tensors it
 * needs), each what llama.cpp's convert_hf_to_gguf.py (conversion/*.py) does for it. The
 * merged-model export and the LoRA export both go through these tables, so an adapter's names
 * and permutations always match its base's.
 */
import { DpoError } from '../errors.js';
import type { GgufArchTable } from './gguf-arch/common.js';
import { gemma2, gemma3 } from './gguf-arch/gemma.js';
import { gpt2 } from './gguf-arch/gpt2.js';
import { granite } from './gguf-arch/granite.js';
import { llama } from './gguf-arch/llama.js';
import { olmo2 } from './gguf-arch/olmo2.js';
import { phi3 } from './gguf-arch/phi3.js';
import { qwen } from './gguf-arch/qwen.js';
import { smollm3 } from './gguf-arch/smollm3.js';

export type { GgufArchTable } from './gguf-arch/common.js';
export { llama3RopeFactors } from './gguf-arch/common.js';

const TABLES: Record<string, GgufArchTable> = {
  llama, mistral: llama, qwen2: qwen('qwen2'), qwen3: qwen('qwen3'), gpt2,
  gemma2, gemma3_text: gemma3, gemma3, olmo2, granite, smollm3, phi3,
};

/** The table for a model_type, or an error naming what can be exported and the alternatives. */
export function ggufTableFor(modelType: string): GgufArchTable {
  const t = TABLES[modelType];
  if (!t) {
    throw new DpoError(`GGUF export: model_type "${modelType}" has no llama.cpp mapping here (GGUF export covers ${Object.keys(TABLES).join(', ')}); export safetensors with dpo merge and convert them with llama.cpp's convert_hf_to_gguf.py if llama.cpp supports the architecture, or run the model with transformers`);
  }
  return t;
}

/** llama.cpp's name for one of our modules ("model.layers.0.self_attn.q_proj" → "blk.0.attn_q"). */
export function ggufModuleName(t: GgufArchTable, module: string): string {
  for (const [re, to] of t.modules) if (re.test(module)) return module.replace(re, to);
  throw new DpoError(`GGUF export: no llama.cpp tensor name for "${module}" (${t.arch}); this module cannot be exported`);
}

/**
 * LlamaModel.permute on the rows of a (rows, cols) matrix: within each head, rows [0..half) and
 * [half..hd) are interleaved, so out[h·hd + 2i + j] = in[h·hd + j·half + i].
 */
export function permuteRows(data: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  if (rows % (2 * heads) !== 0) throw new DpoError(`GGUF export: cannot permute ${rows} rows into ${heads} heads of rotary pairs`);
  const hd = rows / heads;
  const half = hd / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * hd + j * half + i) * cols;
        out.set(data.subarray(src, src + cols), (h * hd + 2 * i + j) * cols);
      }
    }
  }
  return out;
}
