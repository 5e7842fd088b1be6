/**
 * ArchConfig: the normalised facts a model builder needs, read from a Hugging Face config.json.
 * One shape covers llama / mistral / qwen2 / qwen3 (by flags) and gpt2.
 */
import { DpoError } from '../errors.js';

export type Family = 'llama' | 'gpt2';

export interface RopeScaling {
  type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
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
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** q/k/v projections carry a bias (qwen2, or attention_bias). */
  qkvBias: boolean;
  /** o_proj carries a bias (attention_bias in llama). */
  oBias: boolean;
  mlpBias: boolean;
  /** RMSNorm on q and k per head (qwen3). */
  qkNorm: boolean;
  tieEmbeddings: boolean;
  /** Mistral-style sliding window; 0 = none. */
  slidingWindow: number;
  hiddenAct: string;
  /** GPT-2 dropouts (0 elsewhere); TRL's disable_dropout sets them to 0. */
  residDropout: number;
  embdDropout: number;
  attnDropout: number;
  /** The raw config.json, saved back unchanged. */
  raw: Record<string, unknown>;
  /** JSON paths of numbers written as floats in config.json (10000.0), so saving keeps them floats. */
  floatPaths?: Set<string>;
}

type Raw = Record<string, unknown>;

function num(raw: Raw, key: string, where: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new DpoError(`${where}: config.json has no "${key}"; it is required for model_type "${raw.model_type}"`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new DpoError(`${where}: "${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** Largest size accepted for one dimension: typed-array lengths and int32 token ids stay exact. */
const MAX_DIM = 2 ** 31 - 1;

/** A size (layers, heads, widths): a whole number ≥ 1; absurd ones are caught here, before any buffer exists. */
function size(raw: Raw, key: string, where: string, fallback?: number): number {
  const v = num(raw, key, where, fallback);
  if (!Number.isInteger(v) || v < 1 || v > MAX_DIM) throw new DpoError(`${where}: "${key}" must be a whole number from 1 to ${MAX_DIM}, got ${v}`);
  return v;
}

/** A number in [lo, hi] (dropouts, epsilons). */
function inRange(raw: Raw, key: string, where: string, fallback: number, lo: number, hi: number): number {
  const v = num(raw, key, where, fallback);
  if (v < lo || v > hi) throw new DpoError(`${where}: "${key}" must be between ${lo} and ${hi}, got ${v}`);
  return v;
}

/** head_dim = hidden / heads unless given; either way a whole number. */
function headDim(raw: Raw, C: number, H: number, keys: { hidden: string; heads: string }, where: string): number {
  if (raw.head_dim !== undefined && raw.head_dim !== null) return size(raw, 'head_dim', where);
  if (C % H !== 0) throw new DpoError(`${where}: "${keys.heads}" ${H} does not divide "${keys.hidden}" ${C}; expected a divisor of ${C} (or set head_dim)`);
  return C / H;
}

function positive(raw: Raw, key: string, where: string): number {
  const v = num(raw, key, where);
  if (v <= 0) throw new DpoError(`${where}: "${key}" must be a positive number, got ${v}`);
  return v;
}

/** rope_theta and rope_scaling as transformers 4.x (top level) or 5.x (`rope_parameters`) write them. */
function rope(raw: Raw, where: string): { theta: number; scaling: RopeScaling | null } {
  const params = (raw.rope_parameters ?? null) as Raw | null;
  const scalingRaw = (raw.rope_scaling ?? params ?? null) as Raw | null;
  const theta = Number(params?.rope_theta ?? raw.rope_theta ?? 10000);
  if (!Number.isFinite(theta) || theta <= 0) throw new DpoError(`${where}: "rope_theta" must be a positive number, got ${JSON.stringify(params?.rope_theta ?? raw.rope_theta)}`);
  if (!scalingRaw) return { theta, scaling: null };
  if (typeof scalingRaw !== 'object' || Array.isArray(scalingRaw)) throw new DpoError(`${where}: "${raw.rope_scaling !== undefined && raw.rope_scaling !== null ? 'rope_scaling' : 'rope_parameters'}" must be an object, got ${JSON.stringify(scalingRaw)}`);
  const type = String(scalingRaw.rope_type ?? scalingRaw.type ?? 'default');
  if (type === 'default') return { theta, scaling: null };
  if (type !== 'llama3') {
    throw new DpoError(`${where}: rope scaling type "${type}" is not supported (supported: default, llama3)`);
  }
  return {
    theta,
    scaling: {
      type: 'llama3',
      factor: positive(scalingRaw, 'factor', where),
      low_freq_factor: positive(scalingRaw, 'low_freq_factor', where),
      high_freq_factor: positive(scalingRaw, 'high_freq_factor', where),
      original_max_position_embeddings: size(scalingRaw, 'original_max_position_embeddings', where),
    },
  };
}

export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3', 'gpt2'] as const;

/** Normalises a config.json object; `where` names the file for error messages. */
export function archFromConfig(raw: Raw, where = 'config.json'): ArchConfig {
  const modelType = String(raw.model_type ?? '');
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new DpoError(`${where}: model_type "${modelType}" is not supported; supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`);
  }
  if (modelType === 'gpt2') {
    const C = size(raw, 'n_embd', where);
    const H = size(raw, 'n_head', where);
    if (C % H !== 0) throw new DpoError(`${where}: "n_head" ${H} does not divide "n_embd" ${C}; expected a divisor of ${C}`);
    return {
      modelType, family: 'gpt2', raw,
      vocabSize: size(raw, 'vocab_size', where),
      hiddenSize: C, numLayers: size(raw, 'n_layer', where), numHeads: H, numKvHeads: H, headDim: C / H,
      intermediateSize: size(raw, 'n_inner', where, Math.min(4 * C, MAX_DIM)),
      maxPositions: size(raw, 'n_positions', where),
      normEps: inRange(raw, 'layer_norm_epsilon', where, 1e-5, 0, 1),
      ropeTheta: 0, ropeScaling: null, qkvBias: true, oBias: true, mlpBias: true, qkNorm: false,
      tieEmbeddings: raw.tie_word_embeddings !== false, slidingWindow: 0,
      hiddenAct: String(raw.activation_function ?? 'gelu_new'),
      residDropout: inRange(raw, 'resid_pdrop', where, 0.1, 0, 1), embdDropout: inRange(raw, 'embd_pdrop', where, 0.1, 0, 1),
      attnDropout: inRange(raw, 'attn_pdrop', where, 0.1, 0, 1),
    };
  }
  const C = size(raw, 'hidden_size', where);
  const H = size(raw, 'num_attention_heads', where);
  const { theta, scaling } = rope(raw, where);
  const attentionBias = raw.attention_bias === true;
  const useSliding = modelType === 'mistral' || (modelType !== 'qwen3' && raw.use_sliding_window === true);
  const sliding = useSliding && raw.sliding_window !== null && raw.sliding_window !== undefined ? size(raw, 'sliding_window', where) : 0;
  const arch: ArchConfig = {
    modelType, family: 'llama', raw,
    vocabSize: size(raw, 'vocab_size', where),
    hiddenSize: C, numLayers: size(raw, 'num_hidden_layers', where), numHeads: H,
    numKvHeads: size(raw, 'num_key_value_heads', where, H),
    headDim: headDim(raw, C, H, { hidden: 'hidden_size', heads: 'num_attention_heads' }, where),
    intermediateSize: size(raw, 'intermediate_size', where),
    maxPositions: size(raw, 'max_position_embeddings', where, 2048),
    normEps: inRange(raw, 'rms_norm_eps', where, 1e-6, 0, 1),
    ropeTheta: theta, ropeScaling: scaling,
    qkvBias: modelType === 'qwen2' || attentionBias,
    oBias: modelType !== 'qwen2' && attentionBias,
    mlpBias: raw.mlp_bias === true,
    qkNorm: modelType === 'qwen3',
    tieEmbeddings: raw.tie_word_embeddings === true,
    slidingWindow: sliding,
    hiddenAct: String(raw.hidden_act ?? 'silu'),
    residDropout: 0, embdDropout: 0, attnDropout: inRange(raw, 'attention_dropout', where, 0, 0, 1),
  };
  if (arch.hiddenAct !== 'silu') throw new DpoError(`${where}: hidden_act "${arch.hiddenAct}" is not supported for ${modelType} (only silu)`);
  if (H % arch.numKvHeads !== 0) throw new DpoError(`${where}: num_attention_heads ${H} is not a multiple of num_key_value_heads ${arch.numKvHeads}; expected a divisor of ${H}`);
  return arch;
}
