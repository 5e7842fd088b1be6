/**
 * What the per-architecture GGUF tables share: the table's shape, llama's tensor names, the base
 * hyper-parameters of the converter's TextModel.set_gguf_parameters, and how each RoPE scaling
 * type is written (llama.cpp's convert_hf_to_gguf.py / conversion/base.py is the specification).
 */
import { DpoError } from '../../errors.js';
import type { ArchConfig } from '../../models/arch.js';
import { longropeAttentionFactor, yarnAttentionFactor, type RopeParameters } from '../../models/rope-init.js';
import { f32, str, u32, type GgufValue } from '../gguf.js';
import type { SpmVocab } from '../gguf-tokenizer-spm.js';

export interface GgufArchTable {
  /** general.architecture, also the prefix of the hyper-parameter keys. */
  arch: string;
  /** Our module path (HF names) → llama.cpp's tensor base name; the .weight / .bias suffix is kept; the first match wins. */
  modules: readonly (readonly [RegExp, string])[];
  /**
   * Heads to permute a module's output rows by (llama.cpp's LlamaModel.permute, which turns HF's
   * rotate-half q/k layout back into interleaved pairs), or 0 for none.
   */
  permuteHeads(module: string, a: ArchConfig): number;
  /** `{arch}.*` hyper-parameters, in the converter's order; throws for a config llama.cpp's graph would not reproduce. */
  hparams(a: ArchConfig): [string, GgufValue][];
  /** Tensors llama.cpp needs that the checkpoint does not hold (rope_freqs, rope_factors_long / _short). */
  extraTensors(a: ArchConfig): { name: string; data: Float32Array }[];
  /** Behaviour llama.cpp lacks for this config: printed at export, never silently dropped. */
  caveats(a: ArchConfig): string[];
  /**
   * Added to every norm weight (GGUF name ending in norm.weight): Gemma's RMSNorm is x·(1 + w)
   * and llama.cpp's x·w, so the converter stores w + 1. Model export only (adapters hold no norms).
   */
  normShift?: number;
  /** Refuses a general.name llama.cpp's vocabulary loader would trip on with this tokenizer (it keys some fixes on the name). */
  checkName?(name: string, tokenToId: (token: string) => number | null): void;
  /** How the converter writes the vocabulary of a checkpoint with a tokenizer.model (SentencePiece); without it, tokenizer.json's byte-level BPE. */
  sentencePiece?: SpmVocab;
}

/** _create_vocab_sentencepiece's added tokens (added_tokens.json, then tokenizer_config.json's added_tokens_decoder). */
export const SPM_VOCAB: SpmVocab = { added: ['added_tokens.json', 'added_tokens_decoder'], looksSpecial: true };

export type GgufModules = readonly (readonly [RegExp, string])[];

export const LLAMA_MODULES: GgufModules = [
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

/** The post-branch norms of Gemma 2 / 3 and OLMo 2 (tensor_mapping.py's ATTN_POST_NORM, FFN_PRE_NORM, FFN_POST_NORM): listed before LLAMA_MODULES. */
export const POST_NORM_MODULES: GgufModules = [
  [/^model\.layers\.(\d+)\.post_attention_layernorm$/, 'blk.$1.post_attention_norm'],
  [/^model\.layers\.(\d+)\.pre_feedforward_layernorm$/, 'blk.$1.ffn_norm'],
  [/^model\.layers\.(\d+)\.post_feedforward_layernorm$/, 'blk.$1.post_ffw_norm'],
];

/** llama's permutation of q_proj / k_proj rows (llama.cpp's NORM RoPE pairs dims 2i, 2i + 1). */
export const permuteQk = (m: string, a: ArchConfig): number => (/\.q_proj$/.test(m) ? a.numHeads : /\.k_proj$/.test(m) ? a.numKvHeads : 0);

/** NEOX RoPE (rotate-half, HF's layout): no permutation. */
export const noPermute = (): number => 0;

/** The base hyper-parameters of TextModel.set_gguf_parameters for a llama-family config. */
export function decoderHparams(p: string, a: ArchConfig, headDimKey = true): [string, GgufValue][] {
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
    ...(headDimKey && a.raw.head_dim !== undefined && a.raw.head_dim !== null ? headDimHparams(p, a) : []),
  ];
}

export function headDimHparams(p: string, a: ArchConfig): [string, GgufValue][] {
  return [[`${p}.attention.key_length`, u32(a.headDim)], [`${p}.attention.value_length`, u32(a.headDim)]];
}

/** Layers that slide, by index (the first 4096; a real model has fewer). */
export function slidingLayers(a: ArchConfig): boolean[] {
  return Array.from({ length: Math.min(a.numLayers, 4096) }, (_, i) => a.layer(i).window > 0);
}

/** For an architecture whose llama.cpp graph has no sliding-window attention. */
export function slidingCaveat(a: ArchConfig, arch = a.modelType): string[] {
  if (!a.slidingWindow || a.slidingWindow >= a.maxPositions) return [];
  return [`llama.cpp's ${arch} architecture has no sliding-window attention: its outputs equal this model's only for sequences of up to sliding_window = ${a.slidingWindow} tokens`];
}

function ropeError(a: ArchConfig, what: string, fix: string): never {
  throw new DpoError(`GGUF export: rope scaling "${what}" on model_type ${a.modelType} has no llama.cpp equivalent here; ${fix}`);
}

/** What an architecture's llama.cpp graph can take beyond linear, yarn and dynamic scaling. */
export interface RopeSupport {
  /** llama3 scaling as a rope_freqs tensor (llama.cpp's llama and granite graphs). */
  llama3?: boolean;
  /** longrope's short / long factors as rope_factors_short / _long (the llama, granite and phi3 graphs). */
  longrope?: boolean;
  /** The graph rotates only rope.dimension_count dims of each head (NEOX RoPE with a partial factor). */
  partialRotary?: boolean;
}

const SUPPORT_NOTE = 'linear, yarn and dynamic scaling export for every architecture, llama3 for llama / mistral / granite, longrope for llama / mistral / granite / phi3';

/** rope.scaling.attn_factor, which llama.cpp multiplies into the attention factor its own scaling derives; none when 1. */
function attnFactor(p: string, a: ArchConfig, f: number): [string, GgufValue][] {
  if (Math.abs(f - 1) < 1e-7) return [];
  // One global key: it would scale a per-layer-type plan's other (sliding) table as well.
  if (a.rope?.plan.perLayer) ropeError(a, `${a.ropeScaling!.rope_type} with attention factor ${f} on a per-layer-type RoPE`, 'llama.cpp applies rope.scaling.attn_factor to every layer');
  return [[`${p}.rope.scaling.attn_factor`, f32(f)]];
}

/**
 * The rope.scaling.* keys of the full-attention RoPE (conversion/base.py: TextModel.set_gguf_parameters):
 * linear → type + factor; yarn → type, factor, original context and the betas when set, and
 * attn_factor where transformers' attention factor is not llama.cpp's own 0.1·ln(factor) + 1
 * (attention_factor, mscale / mscale_all_dim); longrope → type, original context and attn_factor
 * (the factors are tensors: ropeTensors); dynamic → nothing (see ropeCaveats); llama3 → nothing
 * (rope_freqs). Throws for what the graph would not reproduce.
 */
export function ropeHparams(p: string, a: ArchConfig, support: RopeSupport = {}): [string, GgufValue][] {
  const s = a.ropeScaling;
  if (!s) return [];
  if ((s.partial_rotary_factor ?? 1) !== 1 && !support.partialRotary) ropeError(a, `${s.rope_type}, partial rotary`, `llama.cpp's ${a.modelType} graph rotates whole heads`);
  switch (s.rope_type) {
    case 'default':
    case 'dynamic':
      return [];
    case 'linear':
      return [[`${p}.rope.scaling.type`, str('linear')], [`${p}.rope.scaling.factor`, f32(s.factor!)]];
    case 'yarn': {
      if (s.truncate === false && !a.rope?.plan.perLayer) ropeError(a, 'yarn with truncate: false', "llama.cpp always rounds yarn's correction range to whole dims");
      const f = s.factor!;
      return [
        [`${p}.rope.scaling.type`, str('yarn')],
        [`${p}.rope.scaling.factor`, f32(f)],
        [`${p}.rope.scaling.original_context_length`, u32(s.original_max_position_embeddings!)],
        ...(s.beta_fast ? ([[`${p}.rope.scaling.yarn_beta_fast`, f32(s.beta_fast)]] as [string, GgufValue][]) : []),
        ...(s.beta_slow ? ([[`${p}.rope.scaling.yarn_beta_slow`, f32(s.beta_slow)]] as [string, GgufValue][]) : []),
        ...attnFactor(p, a, yarnAttentionFactor(s, a.maxPositions) / (f <= 1 ? 1 : 0.1 * Math.log(f) + 1)),
      ];
    }
    case 'llama3':
      if (!support.llama3) ropeError(a, 'llama3', SUPPORT_NOTE);
      return [];
    case 'longrope':
      if (!support.longrope) ropeError(a, 'longrope', SUPPORT_NOTE);
      return [
        [`${p}.rope.scaling.type`, str('longrope')],
        [`${p}.rope.scaling.original_context_length`, u32(s.original_max_position_embeddings!)],
        ...attnFactor(p, a, longropeAttentionFactor(s, a.maxPositions)),
      ];
  }
}

/** What llama.cpp does differently with this RoPE scaling (dynamic NTK, longrope's switch to long factors). */
export function ropeCaveats(a: ArchConfig): string[] {
  const s = a.ropeScaling;
  if (s?.rope_type === 'dynamic') return [`llama.cpp has no dynamic NTK RoPE scaling: its outputs equal this model's only for sequences of up to max_position_embeddings = ${a.maxPositions} tokens`];
  if (s?.rope_type === 'longrope') return [`llama.cpp picks longrope's long_factor by its context size (above original_max_position_embeddings = ${s.original_max_position_embeddings}) where transformers picks it by the sequence length: with a larger context, sequences of up to ${s.original_max_position_embeddings} tokens differ`];
  return [];
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

/** The extra RoPE tensors: llama3's rope_freqs, longrope's rope_factors_long / _short (Phi3MiniModel.generate_extra_tensors). */
export function ropeTensors(a: ArchConfig): { name: string; data: Float32Array }[] {
  const s = a.ropeScaling;
  if (s?.rope_type === 'llama3') return [{ name: 'rope_freqs.weight', data: llama3RopeFactors(a) }];
  if (s?.rope_type === 'longrope') {
    return [
      { name: 'rope_factors_long.weight', data: Float32Array.from(s.long_factor!) },
      { name: 'rope_factors_short.weight', data: Float32Array.from(s.short_factor!) },
    ];
  }
  return [];
}
