/**
 * One table per architecture: how llama.cpp names our modules, which output rows it permutes,
 * the hyper-parameters it reads, and extra tensors it needs: what convert_hf_to_gguf.py (llama.cpp
 * v0.5.0, conversion/llama.py, qwen.py, gpt2.py) does for each. The merged-model export and the
 * LoRA export both go through these tables, so an adapter's names and permutations always match
 * its base's.
 */
import { DpoError } from '../errors.js';
import type { ArchConfig } from '../models/arch.js';
import type { RopeParameters } from '../models/rope-init.js';
import { f32, u32, type GgufValue } from './gguf.js';

export interface GgufArchTable {
  /** general.architecture, also the prefix of the hyper-parameter keys. */
  arch: string;
  /** Our module path (HF names) → llama.cpp's tensor base name; the .weight / .bias suffix is kept. */
  modules: readonly (readonly [RegExp, string])[];
  /**
   * Heads to permute a module's output rows by (llama.cpp's LlamaModel.permute, which turns HF's
   * rotate-half q/k layout back into interleaved pairs), or 0 for none.
   */
  permuteHeads(module: string, a: ArchConfig): number;
  /** `{arch}.*` hyper-parameters, in the converter's order. */
  hparams(a: ArchConfig): [string, GgufValue][];
  /** Tensors llama.cpp needs that the checkpoint does not hold (rope_freqs for llama3 scaling). */
  extraTensors(a: ArchConfig): { name: string; data: Float32Array }[];
  /** Behaviour llama.cpp lacks for this config: printed at export, never silently dropped. */
  caveats(a: ArchConfig): string[];
}

const LLAMA_MODULES: [RegExp, string][] = [
  [/^model\.embed_tokens$/, 'token_embd'],
  [/^model\.norm$/, 'output_norm'],
  [/^lm_head$/, 'output'],
  [/^model\.layers\.(\d+)\.self_attn\.q_proj$/, 'blk.$1.attn_q'],
  [/^model\.layers\.(\d+)\.self_attn\.k_proj$/, 'blk.$1.attn_k'],
  [/^model\.layers\.(\d+)\.self_attn\.v_proj$/, 'blk.$1.attn_v'],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj$/, 'blk.$1.attn_output'],
  [/^model\.layers\.(\d+)\.self_attn\.q_norm$/, 'blk.$1.attn_q_norm'],
  [/^model\.layers\.(\d+)\.self_attn\.k_norm$/, 'blk.$1.attn_k_norm'],
  [/^model\.layers\.(\d+)\.mlp\.gate_proj$/, 'blk.$1.ffn_gate'],
  [/^model\.layers\.(\d+)\.mlp\.up_proj$/, 'blk.$1.ffn_up'],
  [/^model\.layers\.(\d+)\.mlp\.down_proj$/, 'blk.$1.ffn_down'],
  [/^model\.layers\.(\d+)\.input_layernorm$/, 'blk.$1.attn_norm'],
  [/^model\.layers\.(\d+)\.post_attention_layernorm$/, 'blk.$1.ffn_norm'],
];

/** The base hyper-parameters of TextModel.set_gguf_parameters for a llama-family config. */
function decoderHparams(p: string, a: ArchConfig): [string, GgufValue][] {
  return [
    [`${p}.block_count`, u32(a.numLayers)],
    [`${p}.context_length`, u32(a.maxPositions)],
    [`${p}.embedding_length`, u32(a.hiddenSize)],
    [`${p}.feed_forward_length`, u32(a.intermediateSize)],
    [`${p}.attention.head_count`, u32(a.numHeads)],
    [`${p}.attention.head_count_kv`, u32(a.numKvHeads)],
    [`${p}.rope.freq_base`, f32(a.ropeTheta)],
    [`${p}.attention.layer_norm_rms_epsilon`, f32(a.normEps)],
    // Written only when config.json says head_dim, as the converter does (else llama.cpp derives it).
    ...(a.raw.head_dim !== undefined && a.raw.head_dim !== null
      ? ([[`${p}.attention.key_length`, u32(a.headDim)], [`${p}.attention.value_length`, u32(a.headDim)]] as [string, GgufValue][])
      : []),
  ];
}

/**
 * llama.cpp's rope_freqs for llama3 scaling: one divisor per rotary pair, computed in float32 as
 * LlamaModel.generate_extra_tensors does (HF divides inv_freq by the same factors).
 */
export function llama3RopeFactors(a: ArchConfig): Float32Array {
  const s = a.ropeScaling as Required<RopeParameters>;
  const fr = Math.fround;
  const dim = a.headDim;
  const out = new Float32Array(dim / 2);
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  for (let i = 0; i < dim / 2; i++) {
    const freq = fr(1 / fr(a.ropeTheta ** fr((2 * i) / dim)));
    const wavelen = fr((2 * Math.PI) / freq);
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = fr(fr(fr(s.original_max_position_embeddings / wavelen) - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor));
      out[i] = fr(1 / fr(fr(fr(1 - smooth) / s.factor) + smooth));
    }
  }
  return out;
}

function slidingCaveat(a: ArchConfig): string[] {
  if (!a.slidingWindow || a.slidingWindow >= a.maxPositions) return [];
  return [`llama.cpp's ${a.modelType === 'mistral' ? 'llama' : a.modelType} architecture has no sliding-window attention: its outputs equal this model's only for sequences of up to sliding_window = ${a.slidingWindow} tokens`];
}

/** Refuses RoPE scaling llama.cpp's graph would not reproduce (all of it, or all but full-dim llama3); returns a. */
function noRopeScaling(a: ArchConfig, llama3 = false): ArchConfig {
  const s = a.ropeScaling;
  if (s && !(llama3 && s.rope_type === 'llama3' && (s.partial_rotary_factor ?? 1) === 1)) throw new DpoError(`GGUF export: rope scaling "${s.rope_type}${(s.partial_rotary_factor ?? 1) !== 1 ? ', partial rotary' : ''}" on model_type ${a.modelType} has no llama.cpp equivalent here; only llama / mistral carry llama3 rope_freqs`);
  return a;
}

const llama: GgufArchTable = {
  arch: 'llama',
  modules: LLAMA_MODULES,
  permuteHeads: (m, a) => (/\.q_proj$/.test(m) ? a.numHeads : /\.k_proj$/.test(m) ? a.numKvHeads : 0),
  hparams: (a) => [
    ...decoderHparams('llama', noRopeScaling(a, true)),
    ['llama.vocab_size', u32(a.vocabSize)],
    ['llama.rope.dimension_count', u32(a.headDim)],
  ],
  extraTensors: (a) => (a.ropeScaling?.rope_type === 'llama3' ? [{ name: 'rope_freqs.weight', data: llama3RopeFactors(a) }] : []),
  caveats: slidingCaveat,
};

const qwen = (arch: 'qwen2' | 'qwen3'): GgufArchTable => ({
  arch,
  modules: LLAMA_MODULES,
  // Qwen's llama.cpp graph applies NEOX-style (rotate-half) RoPE: HF's layout, no permutation.
  permuteHeads: () => 0,
  hparams: (a) => {
    noRopeScaling(a);
    return decoderHparams(arch, a);
  },
  extraTensors: () => [],
  caveats: slidingCaveat,
});

const gpt2: GgufArchTable = {
  arch: 'gpt2',
  modules: [
    [/^transformer\.wte$/, 'token_embd'],
    [/^transformer\.wpe$/, 'position_embd'],
    [/^transformer\.ln_f$/, 'output_norm'],
    [/^lm_head$/, 'output'],
    [/^transformer\.h\.(\d+)\.ln_1$/, 'blk.$1.attn_norm'],
    [/^transformer\.h\.(\d+)\.attn\.c_attn$/, 'blk.$1.attn_qkv'],
    [/^transformer\.h\.(\d+)\.attn\.c_proj$/, 'blk.$1.attn_output'],
    [/^transformer\.h\.(\d+)\.ln_2$/, 'blk.$1.ffn_norm'],
    [/^transformer\.h\.(\d+)\.mlp\.c_fc$/, 'blk.$1.ffn_up'],
    [/^transformer\.h\.(\d+)\.mlp\.c_proj$/, 'blk.$1.ffn_down'],
  ],
  permuteHeads: () => 0,
  hparams: (a) => [
    ['gpt2.block_count', u32(a.numLayers)],
    ['gpt2.context_length', u32(a.maxPositions)],
    ['gpt2.embedding_length', u32(a.hiddenSize)],
    ['gpt2.feed_forward_length', u32(a.intermediateSize)],
    ['gpt2.attention.head_count', u32(a.numHeads)],
    ['gpt2.attention.layer_norm_epsilon', f32(a.normEps)],
  ],
  extraTensors: () => [],
  caveats: () => [],
};

const TABLES: Record<string, GgufArchTable> = { llama, mistral: llama, qwen2: qwen('qwen2'), qwen3: qwen('qwen3'), gpt2 };

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
