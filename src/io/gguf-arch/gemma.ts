/**
 * Gemma 2 and Gemma 3 (conversion/gemma.py: Gemma2Model, Gemma3Model), as llama.cpp's gemma2 /
 * gemma3 graphs read them:
 * - every norm weight stored + 1 (Gemma's RMSNorm is x·(1 + w), llama.cpp's x·w); NEOX RoPE (no
 *   permutation); four norms per layer (post_attention_norm, ffn_norm, post_ffw_norm); tied head;
 * - embeddings × √hidden and gelu (tanh) gated MLP are built into the graphs;
 * - the score scale is not a key: llama.cpp uses head_dim^−½ (hidden / heads for the 27B layouts), so
 *   another query_pre_attn_scalar is refused;
 * - which layers slide: attention.sliding_window_pattern, one bool per layer (what Olmo2Model
 *   writes), with attention.sliding_window;
 * - Gemma 2's soft-caps (attn_logit_softcapping, final_logit_softcapping): its graph always caps, so
 *   a config without them is refused; Gemma 3's graph has no soft-capping (the converter asserts none);
 * - Gemma 3's local RoPE: rope.freq_base_swa; scaling only on the full-attention table.
 */
import { DpoError } from '../../errors.js';
import type { ArchConfig } from '../../models/arch.js';
import { arr, f32, u32, type GgufValue } from '../gguf.js';
import { LLAMA_MODULES, POST_NORM_MODULES, decoderHparams, headDimHparams, noPermute, ropeCaveats, ropeHparams, slidingLayers, SPM_VOCAB, type GgufArchTable } from './common.js';

const fail = (a: ArchConfig, what: string, fix: string): never => {
  throw new DpoError(`GGUF export: ${what} on model_type ${a.modelType} is not what llama.cpp's ${a.modelType === 'gemma2' ? 'gemma2' : 'gemma3'} graph computes; ${fix}`);
};

/** The score scale llama.cpp's gemma2 / gemma3 graphs use: hidden / heads for the 27B layouts (46 / 62 layers), else head_dim. */
function checkScale(a: ArchConfig, layers27b: number): void {
  const d = a.numLayers === layers27b ? a.hiddenSize / a.numHeads : a.headDim;
  if (Math.abs(a.attnScale * Math.sqrt(d) - 1) > 1e-6) fail(a, `query_pre_attn_scalar ${a.raw.query_pre_attn_scalar ?? (a.raw.text_config as Record<string, unknown> | undefined)?.query_pre_attn_scalar} (scores × ${a.attnScale.toPrecision(6)})`, `llama.cpp scales scores by ${d}^−½ for ${a.numLayers} layers; export safetensors instead`);
}

/** sliding_window and the per-layer pattern, when any layer slides. */
function windowHparams(p: string, a: ArchConfig): [string, GgufValue][] {
  if (!a.slidingWindow) return [];
  return [[`${p}.attention.sliding_window`, u32(a.slidingWindow)], [`${p}.attention.sliding_window_pattern`, arr('bool', slidingLayers(a))]];
}

const MODULES = [...POST_NORM_MODULES, ...LLAMA_MODULES];

export const gemma2: GgufArchTable = {
  arch: 'gemma2',
  modules: MODULES,
  permuteHeads: noPermute,
  normShift: 1,
  // Gemma2Model / Gemma3Model.set_vocab: a tokenizer.model is SentencePiece without the space prefix.
  sentencePiece: { ...SPM_VOCAB, addSpacePrefix: false },
  hparams: (a) => {
    checkScale(a, 46);
    if (!a.attnSoftcap || !a.finalSoftcap) fail(a, 'attn_logit_softcapping / final_logit_softcapping null', 'llama.cpp always soft-caps Gemma 2 (defaults 50 and 30)');
    return [
      ...decoderHparams('gemma2', a, false),
      ...headDimHparams('gemma2', a),
      ...ropeHparams('gemma2', a),
      ['gemma2.attn_logit_softcapping', f32(a.attnSoftcap)],
      ['gemma2.final_logit_softcapping', f32(a.finalSoftcap)],
      ...windowHparams('gemma2', a),
    ];
  },
  extraTensors: () => [],
  caveats: ropeCaveats,
};

/** Gemma 3's local (sliding-layer) RoPE table: its theta, and no scaling. */
function localTheta(a: ArchConfig): number {
  const plan = a.rope!.plan;
  const local = plan.perLayer ? plan.params.sliding_attention : null;
  if (!local) return a.ropeTheta;
  if (local.rope_type !== 'default') fail(a, `rope scaling "${local.rope_type}" on the sliding layers`, 'llama.cpp scales only the full-attention layers\' RoPE');
  return local.rope_theta;
}

export const gemma3: GgufArchTable = {
  arch: 'gemma3',
  modules: MODULES,
  permuteHeads: noPermute,
  normShift: 1,
  // Gemma2Model / Gemma3Model.set_vocab: a tokenizer.model is SentencePiece without the space prefix.
  sentencePiece: { ...SPM_VOCAB, addSpacePrefix: false },
  hparams: (a) => {
    checkScale(a, 62);
    if (a.attnSoftcap || a.finalSoftcap) fail(a, 'logit soft-capping', 'llama.cpp\'s Gemma 3 has none (set attn_logit_softcapping / final_logit_softcapping to null)');
    return [
      ...decoderHparams('gemma3', a, false),
      ...headDimHparams('gemma3', a),
      ...ropeHparams('gemma3', a),
      ['gemma3.rope.freq_base_swa', f32(localTheta(a))],
      ...windowHparams('gemma3', a),
    ];
  },
  extraTensors: () => [],
  caveats: ropeCaveats,
};
