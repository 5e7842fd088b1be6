/**
 * ArchConfig: the normalised facts a model builder needs, read from a Hugging Face config.json by
 * the one parser below with transformers 5.17's per-model_type defaults (each model file's
 * registration gives its defaults and its own keys; see registry.ts: archFromConfig).
 * Per layer, `layer(i)` says what transformers' layer i does: its sliding window and its RoPE
 * table (or none); keys that would change the numbers and that we do not implement are errors.
 */
import { DpoError } from '../errors.js';
import { ConfigReader, type Raw } from './config-reader.js';
import { ropeParameters, type RopeConfigOptions, type RopeDims, type RopeParameters, type RopePlan } from './rope-init.js';

export type Family = 'llama' | 'gpt2';

export type LayerType = 'full_attention' | 'sliding_attention';

/** What decoder layer i does differently from the others: given at construction. */
export interface LayerSpec {
  type: LayerType;
  /** Sliding window (keys within `window` positions, itself included); 0 = none. */
  window: number;
  /** The RoPE plan's layer type ('default' for a single plan), or null for a layer without RoPE (SmolLM3's no_rope_layers). */
  rope: string | null;
}

export interface ArchConfig {
  modelType: string;
  family: Family;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  normEps: number;
  /** The full-attention layers' RoPE (what GGUF export writes): theta, and its parameters unless default RoPE; 0 / null without RoPE. */
  ropeTheta: number;
  ropeScaling: RopeParameters | null;
  /** The model's RoPE (transformers' standardized rope_parameters, one or per layer type) and the dims its init reads; null without RoPE. */
  rope: { plan: RopePlan; dims: RopeDims } | null;
  /**
   * Layer i's spec, a function of i rather than a list: a config can name 10⁹ layers, which
   * checkCheckpoint reports against the weights before anything per layer exists.
   */
  layer(i: number): LayerSpec;
  /** Multiplier of q·k in attention (head_dim^−½, query_pre_attn_scalar^−½, attention_multiplier). */
  attnScale: number;
  /** q/k/v projections carry a bias (qwen2, or attention_bias). */
  qkvBias: boolean;
  /** o_proj carries a bias (attention_bias in llama). */
  oBias: boolean;
  mlpBias: boolean;
  /** RMSNorm on q and k per head (qwen3). */
  qkNorm: boolean;
  tieEmbeddings: boolean;
  /** The largest sliding window of any layer; 0 = none. */
  slidingWindow: number;
  hiddenAct: string;
  /** Input embeddings × this (Gemma: √hidden; Granite: embedding_multiplier). */
  embedScale: number;
  /** Branch outputs × this before each residual add (Granite). */
  residualMultiplier: number;
  /** Logits ÷ this (Granite's logits_scaling). */
  logitsScaling: number;
  /** Gemma's attn_logit_softcapping (scores → cap·tanh(scores / cap)) and final_logit_softcapping; 0 = none. */
  attnSoftcap: number;
  finalSoftcap: number;
  /** GPT-2 dropouts (0 elsewhere); TRL's disable_dropout sets them to 0. */
  residDropout: number;
  embdDropout: number;
  attnDropout: number;
  /** The raw config.json, saved back unchanged. */
  raw: Record<string, unknown>;
  /** JSON paths of numbers written as floats in config.json (10000.0), so saving keeps them floats. */
  floatPaths?: Set<string>;
  /** See CausalLM.recomputeCacheAt (Phi-3: original_max_position_embeddings + 1). */
  recomputeCacheAt?: number;
  /** Where the text model's weights sit in a multimodal checkpoint ('model.language_model.'), else ''. */
  weightPrefix?: string;
  /** transformers' module path of that text model ('model.language_model.'), which PEFT's adapter keys use, else ''. */
  modulePrefix?: string;
}

/** transformers' class defaults for a decoder model type (what a config.json may leave out). */
export interface DecoderDefaults {
  /** undefined: num_attention_heads (transformers' `if num_key_value_heads is None`). */
  numKvHeads?: number;
  /** undefined: hidden_size / num_attention_heads. */
  headDim?: number;
  normEps: number;
  maxPositions: number;
  tie: boolean;
  /** The config class's default_theta (Gemma 3's second, local table is read by gemma3.ts). */
  theta: number;
  /** The activation key and its default; `acts` lists what we implement. */
  actKey: 'hidden_act' | 'hidden_activation';
  act: string;
  acts: readonly string[];
  /** q/k/v bias: always (qwen2), never, or the attention_bias key. */
  qkvBias: boolean | 'attention_bias';
  oBias: boolean | 'attention_bias';
  mlpBias: boolean | 'mlp_bias';
  /** How the config class reads RoPE beyond llama's (Phi-3: aliases, original_max_position_embeddings). */
  rope?: Omit<RopeConfigOptions, 'where' | 'maxPositionEmbeddings' | 'defaultTheta'>;
  /** The default RoPE honours partial_rotary_factor (Phi-3). */
  defaultUsesPartialRotary?: boolean;
}

/**
 * The settings every decoder shares, from config.json with the type's defaults: all layers full
 * attention with the 'default' RoPE until the model's own parse refines `layer` (windows, per-type
 * RoPE, no RoPE).
 */
export function parseDecoder(r: ConfigReader, d: DecoderDefaults): ArchConfig {
  const where = r.where;
  const modelType = r.modelType;
  const C = r.size('hidden_size');
  const H = r.size('num_attention_heads');
  const L = r.size('num_hidden_layers');
  const KV = r.size('num_key_value_heads', d.numKvHeads ?? H);
  let D: number;
  if (r.has('head_dim') || d.headDim !== undefined) D = r.size('head_dim', d.headDim);
  else if (C % H !== 0) throw new DpoError(`${where}: "num_attention_heads" ${H} does not divide "hidden_size" ${C}; expected a divisor of ${C} (or set head_dim)`);
  else D = C / H;
  if (H % KV !== 0) throw new DpoError(`${where}: num_attention_heads ${H} is not a multiple of num_key_value_heads ${KV}; expected a divisor of ${H}`);
  const hiddenAct = r.str(d.actKey, d.act);
  if (!d.acts.includes(hiddenAct)) throw new DpoError(`${where}: ${d.actKey} "${hiddenAct}" is not supported for ${modelType} (supported: ${d.acts.join(', ')})`);
  const flag = (v: boolean | string) => (typeof v === 'boolean' ? v : r.bool(v, false));
  const maxPositions = r.size('max_position_embeddings', d.maxPositions);
  const arch: ArchConfig = {
    modelType, family: 'llama', raw: r.raw,
    vocabSize: r.size('vocab_size'),
    hiddenSize: C, numLayers: L, numHeads: H, numKvHeads: KV, headDim: D,
    intermediateSize: r.size('intermediate_size'),
    maxPositions,
    normEps: r.inRange('rms_norm_eps', d.normEps, 0, 1),
    ropeTheta: 0, ropeScaling: null, rope: null,
    layer: () => ({ type: 'full_attention', window: 0, rope: 'default' }),
    attnScale: 1 / Math.sqrt(D),
    qkvBias: flag(d.qkvBias), oBias: flag(d.oBias), mlpBias: flag(d.mlpBias), qkNorm: false,
    tieEmbeddings: r.bool('tie_word_embeddings', d.tie),
    slidingWindow: 0, hiddenAct,
    embedScale: 1, residualMultiplier: 1, logitsScaling: 1, attnSoftcap: 0, finalSoftcap: 0,
    residDropout: 0, embdDropout: 0, attnDropout: r.inRange('attention_dropout', 0, 0, 1),
  };
  setRopes(arch, readRopes(r, { defaultTheta: d.theta, ...d.rope }, maxPositions), d.defaultUsesPartialRotary);
  return arch;
}

/**
 * Layer types as transformers derives them: `layer_types` when given, else `fallback(i)`; a layer
 * of type sliding_attention gets `window` (none when the window is null).
 */
export function setLayerTypes(arch: ArchConfig, r: ConfigReader, window: number | null, fallback: (i: number) => LayerType): void {
  const ok = (x: unknown) => x === 'full_attention' || x === 'sliding_attention';
  const given = r.list<LayerType>('layer_types', arch.numLayers, ok, '"full_attention" / "sliding_attention"');
  const prev = arch.layer;
  arch.layer = (i) => {
    const type = given ? given[i] : fallback(i);
    return { ...prev(i), type, window: type === 'sliding_attention' && window !== null ? window : 0 };
  };
  arch.slidingWindow = window !== null && layerTypes(arch).includes('sliding_attention') ? window : 0;
}

/** The layer types of the first layers (all of them in any real model; a config naming 10⁹ layers is refused by the weights later). */
export function layerTypes(arch: ArchConfig): LayerType[] {
  return Array.from({ length: Math.min(arch.numLayers, 4096) }, (_, i) => arch.layer(i).type);
}

/**
 * Points every layer at its RoPE (its layer type's entry when the plan is per layer type; none
 * where that entry is null). `defaultUsesPartialRotary`: the model's default RoPE honours
 * partial_rotary_factor (Phi-3); the scaled types always do.
 */
export function setRopes(arch: ArchConfig, plan: RopePlan, defaultUsesPartialRotary = false): void {
  arch.rope = { plan, dims: { headDim: arch.headDim, maxPositionEmbeddings: arch.maxPositions, defaultUsesPartialRotary } };
  const prev = arch.layer;
  arch.layer = (i) => {
    const l = prev(i);
    if (l.rope === null) return l;
    return { ...l, rope: !plan.perLayer ? 'default' : plan.params[l.type] ? l.type : null };
  };
  const full = plan.perLayer ? plan.params.full_attention ?? null : plan.params;
  arch.ropeTheta = full?.rope_theta ?? 0;
  arch.ropeScaling = full && (full.rope_type !== 'default' || (full.partial_rotary_factor ?? 1) !== 1) ? full : null;
}

/**
 * rope_parameters (transformers 5) or rope_theta + rope_scaling (4.x), standardised as
 * transformers' convert_rope_params_to_dict / standardize_rope_params do (rope-init.ts:
 * ropeParameters), plus the check transformers' llama3 validation makes.
 */
export function readRopes(r: ConfigReader, opts: Omit<RopeConfigOptions, 'where' | 'maxPositionEmbeddings'>, maxPositions: number): RopePlan {
  const where = r.where;
  const plan = ropeParameters(r.raw, { ...opts, where, maxPositionEmbeddings: maxPositions });
  for (const p of plan.perLayer ? Object.values(plan.params) : [plan.params]) {
    if (p?.rope_type === 'llama3' && !(p.high_freq_factor! > p.low_freq_factor!)) {
      throw new DpoError(`${where}: llama3 rope scaling needs high_freq_factor > low_freq_factor, got ${p.high_freq_factor} and ${p.low_freq_factor}`);
    }
  }
  return plan;
}

export { ConfigReader };
