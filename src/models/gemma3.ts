/**
 * Gemma 3 (transformers' modular_gemma3.py), as it differs from Llama:
 * - RMSNorm as x·(1 + w); four norms per layer, the post-attention and post-feedforward ones on
 *   the branch outputs; per-head q/k norms before RoPE;
 * - embeddings × √hidden (rounded to the weight dtype, float32 here); tied head;
 * - gelu_pytorch_tanh gated MLP (`hidden_activation`); scores × query_pre_attn_scalar^−½;
 *   Gemma 2's soft-caps only when set (default none);
 * - sliding / full layers (`layer_types`, else every `sliding_window_pattern`-th layer is full)
 *   with `sliding_window`, and two RoPE tables: full layers rope_theta (+ scaling), sliding layers
 *   rope_local_base_freq;
 * - `gemma3` (multimodal) checkpoints: the text model of `text_config`, weights under
 *   language_model.model. (what save_pretrained writes) or model.language_model. (5.x module
 *   names); the vision tower and projector are not loaded; saving back copies them unchanged
 *   (models/save-like-source.ts).
 */
import type { ArchConfig, LayerType } from './arch.js';
import { layerTypes, parseDecoder, readRopes, setLayerTypes, setRopes } from './arch.js';
import { ConfigReader } from './config-reader.js';
import { DecoderForCausalLM, decoderWeightShapes, type DecoderPlan } from './decoder.js';
import { plainNames, type ModelRegistration } from './registration.js';

export const GEMMA3: DecoderPlan = {
  norm: 'offset-rms',
  qkNorm: 'head',
  norms: { preAttn: 'input_layernorm', postAttn: 'post_attention_layernorm', preMlp: 'pre_feedforward_layernorm', postMlp: 'post_feedforward_layernorm' },
};

/** Gemma3TextConfig.convert_rope_params_to_dict: rope_scaling updates the full-attention entry; thetas default to rope_theta (10⁶) and rope_local_base_freq (10⁴). */
const GEMMA3_ROPES = { full_attention: { thetaKey: 'rope_theta', defaultTheta: 1e6, scaling: true }, sliding_attention: { thetaKey: 'rope_local_base_freq', defaultTheta: 1e4 } };

/** Gemma3TextConfig of a gemma3_text config, or of a gemma3 config's text_config. */
function parseGemma3(top: ConfigReader): ArchConfig {
  const multimodal = top.modelType === 'gemma3';
  const r = multimodal ? new ConfigReader({ model_type: 'gemma3_text', ...(top.sub('text_config').raw) }, top.where, 'text_config.') : top;
  const a = parseDecoder(r, {
    numKvHeads: 4, headDim: 256, normEps: 1e-6, maxPositions: 131072, tie: true, theta: 1e6,
    actKey: 'hidden_activation', act: 'gelu_pytorch_tanh', acts: ['gelu_pytorch_tanh'],
    qkvBias: 'attention_bias', oBias: 'attention_bias', mlpBias: false,
  });
  a.attnSoftcap = r.softcap('attn_logit_softcapping', null);
  a.finalSoftcap = r.softcap('final_logit_softcapping', null);
  r.only('use_bidirectional_attention', [false, null], 'bidirectional attention');
  a.attnScale = 1 / Math.sqrt(r.positive('query_pre_attn_scalar', 256));
  a.embedScale = Math.fround(Math.sqrt(a.hiddenSize));
  const pattern = r.size('sliding_window_pattern', 6);
  setLayerTypes(a, r, r.sizeOrNull('sliding_window', 4096), (i): LayerType => ((i + 1) % pattern ? 'sliding_attention' : 'full_attention'));
  setRopes(a, readRopes(r, { layerTypes: layerTypes(a), legacyPerLayer: GEMMA3_ROPES }, a.maxPositions));
  if (multimodal) {
    a.modelType = 'gemma3';
    a.raw = top.raw;
    a.tieEmbeddings = top.bool('tie_word_embeddings', true);
    a.weightPrefix = 'language_model.model.';
    a.modulePrefix = 'model.language_model.';
  }
  return a;
}

/** A multimodal checkpoint's text weights by transformers 5's module names, as save_pretrained writes them. */
function legacyName(name: string, a: ArchConfig): string {
  if (!a.weightPrefix) return name;
  if (name.startsWith('model.language_model.')) return `${a.weightPrefix}${name.slice('model.language_model.'.length)}`;
  if (name === 'language_model.lm_head.weight') return 'lm_head.weight';
  return name;
}

export const gemma3Registration: ModelRegistration = {
  modelTypes: ['gemma3_text', 'gemma3'],
  parse: parseGemma3,
  build: (a) => new DecoderForCausalLM(a, GEMMA3),
  weightShapes: (a) => decoderWeightShapes(a, GEMMA3),
  ...plainNames,
  rename: (name, a) => plainNames.rename(legacyName(name, a), a),
  sanitize: (name, t, a) => plainNames.sanitize(legacyName(name, a), t, a),
  passThrough: (name, a) => plainNames.passThrough(legacyName(name, a), a),
  // PEFT maps gemma3_text to q_proj / v_proj; a multimodal gemma3 has no default there.
  loraTargets: { gemma3_text: ['q_proj', 'v_proj'] },
};
