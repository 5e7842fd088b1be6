/**
 * config.json -> a typed ModelConfig, with transformers 5.17's class defaults for what a file
 * leaves out (so a config means here what it means to transformers), and the raw JSON kept for
 * saving back unchanged. Every problem is one line naming the file and the key.
 *
 * Covers llama, mistral, qwen2, qwen3 and gpt2 (GPT-2's n_embd/n_layer/... names are mapped to the
 * common fields). RoPE: transformers 5 writes `rope_parameters` {rope_type, rope_theta, ...};
 * 4.x wrote top-level `rope_theta` and `rope_scaling` {type|rope_type, ...}; both are read, with
 * transformers' precedence (rope_scaling over rope_parameters; theta inside the dict over top level).
 *
 * @example
 * const cfg = readModelConfig('/models/llama'); // cfg.hiddenSize, cfg.ropeScaling?.factor, cfg.raw
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { JsonSyntaxError, parseJson, stringifyPython } from './json.js';

export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3', 'gpt2'] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

export interface RopeScaling {
  /** 'llama3' (the only scaled type supported). */
  ropeType: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export type LayerType = 'full_attention' | 'sliding_attention';

export interface ModelConfig {
  /** The config.json path (for messages). */
  path: string;
  /** The parsed JSON, unchanged. */
  raw: Record<string, unknown>;
  /** Paths of integral numbers written as floats in the file (for writing back faithfully). */
  floatPaths: Set<string>;
  modelType: ModelType;
  architectures: string[];
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  /** rms_norm_eps (llama family) or layer_norm_epsilon (gpt2). */
  normEps: number;
  /** RoPE base; null for gpt2 (learned positions). */
  ropeTheta: number | null;
  /** null for 'default' RoPE. */
  ropeScaling: RopeScaling | null;
  /** The attention_bias key (default false). */
  attentionBias: boolean;
  /** What the model has: q/k/v projections with bias (qwen2 always; llama/qwen3 per attention_bias; gpt2). */
  qkvBias: boolean;
  /** o_proj (c_proj) with bias (llama/qwen3 per attention_bias; gpt2). */
  oBias: boolean;
  /** MLP projections with bias (llama per mlp_bias; gpt2). */
  mlpBias: boolean;
  tieWordEmbeddings: boolean;
  /** The window of sliding-attention layers, or null when no layer slides. */
  slidingWindow: number | null;
  /** Per layer, as transformers applies it: full or sliding (qwen2/qwen3 slide from max_window_layers on). */
  layerTypes: LayerType[];
  hiddenAct: string;
  /** `dtype` (transformers 5) or `torch_dtype` (4.x), e.g. 'bfloat16'; null when absent. */
  dtype: string | null;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  attentionDropout: number;
  /** GPT-2 dropouts (0 for the llama family). */
  residPdrop: number;
  embdPdrop: number;
  attnPdrop: number;
}

type Raw = Record<string, unknown>;

/** Reads `<dir>/config.json` (or the given .json path). */
export function readModelConfig(dirOrFile: string): ModelConfig {
  const path = dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DpoError(`${path}: ${code === 'ENOENT' ? 'missing; a model directory needs config.json' : `cannot read (${code ?? (e as Error).message})`}`);
  }
  let parsed;
  try {
    parsed = parseJson(text);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw new DpoError(`${path}: not valid JSON (${e.message})`);
  }
  return parseModelConfig(parsed.value, path, parsed.floatPaths);
}

/** Normalises an already-parsed config object; `path` names it in messages. */
export function parseModelConfig(raw: unknown, path = 'config.json', floatPaths: Set<string> = new Set()): ModelConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new DpoError(`${path}: must be a JSON object`);
  const r = new Reader(raw as Raw, path);
  const modelType = r.get('model_type', 'string', undefined) as string;
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new DpoError(`${path}: model_type "${modelType}" is not supported; supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`);
  }
  const mt = modelType as ModelType;
  const architectures = r.opt('architectures', 'string[]', []) as string[];
  const dtypeRaw = r.opt('dtype', 'string|null', null) ?? r.opt('torch_dtype', 'string|null', null);
  const common = {
    path, raw: raw as Raw, floatPaths, modelType: mt, architectures,
    dtype: dtypeRaw as string | null,
    padTokenId: r.opt('pad_token_id', 'int|null', null) as number | null,
  };
  if (mt === 'gpt2') {
    const C = r.posInt('n_embd');
    const H = r.posInt('n_head');
    if (C % H !== 0) throw new DpoError(`${path}: n_embd ${C} is not a multiple of n_head ${H}`);
    const L = r.posInt('n_layer');
    return {
      ...common,
      vocabSize: r.posInt('vocab_size'),
      hiddenSize: C, numHiddenLayers: L, numAttentionHeads: H, numKeyValueHeads: H, headDim: C / H,
      intermediateSize: (r.opt('n_inner', 'int|null', null) as number | null) ?? 4 * C,
      maxPositionEmbeddings: r.posInt('n_positions', 1024),
      normEps: r.num('layer_norm_epsilon', 1e-5),
      ropeTheta: null, ropeScaling: null,
      attentionBias: true, qkvBias: true, oBias: true, mlpBias: true,
      tieWordEmbeddings: r.opt('tie_word_embeddings', 'boolean', true) as boolean,
      slidingWindow: null, layerTypes: Array<LayerType>(L).fill('full_attention'),
      hiddenAct: r.opt('activation_function', 'string', 'gelu_new') as string,
      bosTokenId: r.opt('bos_token_id', 'int|null', 50256) as number | null,
      eosTokenId: r.opt('eos_token_id', 'int|int[]|null', 50256) as number | number[] | null,
      attentionDropout: r.num('attn_pdrop', 0.1),
      residPdrop: r.num('resid_pdrop', 0.1), embdPdrop: r.num('embd_pdrop', 0.1), attnPdrop: r.num('attn_pdrop', 0.1),
    };
  }
  const C = r.posInt('hidden_size');
  const H = r.posInt('num_attention_heads');
  const L = r.posInt('num_hidden_layers');
  const kvDefault = mt === 'mistral' ? 8 : mt === 'llama' ? H : 32;
  const KV = (r.opt('num_key_value_heads', 'int|null', kvDefault) as number | null) ?? H;
  if (KV <= 0 || H % KV !== 0) throw new DpoError(`${path}: num_attention_heads ${H} is not a multiple of num_key_value_heads ${KV}`);
  // Qwen3 declares head_dim = 128 by default; the others derive it from hidden_size.
  const headDimRaw = r.opt('head_dim', 'int|null', mt === 'qwen3' ? 128 : null) as number | null;
  if (headDimRaw === null && C % H !== 0) throw new DpoError(`${path}: hidden_size ${C} is not a multiple of num_attention_heads ${H}; set head_dim`);
  const headDim = headDimRaw ?? C / H;
  if (headDim <= 0) throw new DpoError(`${path}: "head_dim" must be a positive integer, got ${headDim}`);
  const maxPos = r.posInt('max_position_embeddings', mt === 'llama' ? 2048 : mt === 'mistral' ? 131072 : 32768);
  const { theta, scaling } = readRope(r, raw as Raw, path, maxPos);
  const attentionBias = r.opt('attention_bias', 'boolean', false) as boolean;
  const bosDefault = mt === 'llama' || mt === 'mistral' ? 1 : null;
  const eosDefault = mt === 'llama' || mt === 'mistral' ? 2 : null;

  // Sliding window as transformers 5 applies it: mistral on every layer when set (default 4096);
  // qwen2/qwen3 only with use_sliding_window, on layers from max_window_layers on (or as layer_types says).
  let slidingWindow: number | null = null;
  let layerTypes: LayerType[] = Array<LayerType>(L).fill('full_attention');
  if (mt === 'mistral') {
    slidingWindow = r.opt('sliding_window', 'int|null', 4096) as number | null;
    if (slidingWindow !== null) layerTypes = Array<LayerType>(L).fill('sliding_attention');
  } else if (mt === 'qwen2' || mt === 'qwen3') {
    const use = r.opt('use_sliding_window', 'boolean', false) as boolean;
    const win = r.opt('sliding_window', 'int|null', 4096) as number | null;
    slidingWindow = use ? win : null;
    const given = r.opt('layer_types', 'string[]|null', null) as string[] | null;
    if (given) {
      if (given.length !== L) throw new DpoError(`${path}: "layer_types" has ${given.length} entries for ${L} layers`);
      const badType = given.find((t) => t !== 'full_attention' && t !== 'sliding_attention');
      if (badType) throw new DpoError(`${path}: "layer_types" entry "${badType}" is not full_attention or sliding_attention`);
      layerTypes = given as LayerType[];
    } else {
      const mwl = r.opt('max_window_layers', 'int', 28) as number;
      layerTypes = layerTypes.map((_, i) => (slidingWindow !== null && i >= mwl ? 'sliding_attention' : 'full_attention'));
    }
    // Effective types: without a window (use_sliding_window false) every layer attends fully.
    if (slidingWindow === null) layerTypes = layerTypes.map(() => 'full_attention');
    if (!layerTypes.includes('sliding_attention')) slidingWindow = null;
  }
  if (slidingWindow !== null && slidingWindow <= 0) throw new DpoError(`${path}: "sliding_window" must be a positive integer, got ${slidingWindow}`);

  return {
    ...common,
    vocabSize: r.posInt('vocab_size'),
    hiddenSize: C, numHiddenLayers: L, numAttentionHeads: H, numKeyValueHeads: KV, headDim,
    intermediateSize: r.posInt('intermediate_size'),
    maxPositionEmbeddings: maxPos,
    normEps: r.num('rms_norm_eps', 1e-6),
    ropeTheta: theta, ropeScaling: scaling,
    attentionBias,
    // Fixed by the architecture: qwen2 has q/k/v biases and no o_proj bias; mistral has none.
    qkvBias: mt === 'qwen2' || (attentionBias && mt !== 'mistral'),
    oBias: attentionBias && mt !== 'mistral' && mt !== 'qwen2',
    mlpBias: mt === 'llama' ? (r.opt('mlp_bias', 'boolean', false) as boolean) : false,
    tieWordEmbeddings: r.opt('tie_word_embeddings', 'boolean', false) as boolean,
    slidingWindow, layerTypes,
    hiddenAct: r.opt('hidden_act', 'string', 'silu') as string,
    bosTokenId: r.opt('bos_token_id', 'int|null', bosDefault) as number | null,
    eosTokenId: r.opt('eos_token_id', 'int|int[]|null', eosDefault) as number | number[] | null,
    attentionDropout: r.num('attention_dropout', 0),
    residPdrop: 0, embdPdrop: 0, attnPdrop: 0,
  };
}

/** rope_theta and llama3 scaling from either layout; other scaled types are refused. */
function readRope(r: Reader, raw: Raw, path: string, maxPos: number): { theta: number; scaling: RopeScaling | null } {
  const legacy = r.opt('rope_scaling', 'object|null', null) as Raw | null;
  const params = r.opt('rope_parameters', 'object|null', null) as Raw | null;
  const key = legacy ? 'rope_scaling' : 'rope_parameters';
  const d = legacy ?? params ?? {};
  if (['full_attention', 'sliding_attention'].some((k) => k in d)) {
    throw new DpoError(`${path}: per-layer-type "${key}" is not supported for model_type "${raw.model_type}"`);
  }
  const sub = new Reader(d, path, `${key}.`);
  const topTheta = r.num('rope_theta', 10000);
  const theta = sub.num('rope_theta', topTheta);
  if (!(theta > 0)) throw new DpoError(`${path}: rope_theta must be positive, got ${theta}`);
  const type = (sub.opt('rope_type', 'string|null', null) ?? sub.opt('type', 'string|null', null) ?? 'default') as string;
  if (type === 'default') return { theta, scaling: null };
  if (type !== 'llama3') throw new DpoError(`${path}: ${key}.rope_type "${type}" is not supported (supported: default, llama3)`);
  const scaling: RopeScaling = {
    ropeType: 'llama3',
    factor: sub.num('factor'),
    lowFreqFactor: sub.num('low_freq_factor'),
    highFreqFactor: sub.num('high_freq_factor'),
    // transformers copies a top-level original_max_position_embeddings in, else falls back to max_position_embeddings.
    originalMaxPositionEmbeddings: sub.posInt('original_max_position_embeddings', r.posInt('original_max_position_embeddings', maxPos)),
  };
  if (!(scaling.factor > 0) || !(scaling.lowFreqFactor > 0) || !(scaling.highFreqFactor > scaling.lowFreqFactor)) {
    throw new DpoError(`${path}: ${key} llama3 needs factor > 0 and high_freq_factor > low_freq_factor > 0, got factor ${scaling.factor}, low ${scaling.lowFreqFactor}, high ${scaling.highFreqFactor}`);
  }
  return { theta, scaling };
}

type Kind = 'string' | 'string|null' | 'string[]' | 'string[]|null' | 'int' | 'int|null' | 'int|int[]|null' | 'boolean' | 'object|null';

/** Typed access to config keys; `prefix` names nested dicts in messages. */
class Reader {
  constructor(private readonly raw: Raw, private readonly path: string, private readonly prefix = '') {}

  private has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.raw, key);
  }

  private fail(key: string, want: string, v: unknown): never {
    throw new DpoError(`${this.path}: "${this.prefix}${key}" must be ${want}, got ${JSON.stringify(v)}`);
  }

  /** A required key (fallback undefined) or an optional one with a default. */
  get(key: string, kind: Kind, fallback: unknown): unknown {
    if (!this.has(key)) {
      if (fallback === undefined) throw new DpoError(`${this.path}: missing "${this.prefix}${key}"`);
      return fallback;
    }
    const v = this.raw[key];
    const isInt = (x: unknown): boolean => typeof x === 'number' && Number.isSafeInteger(x);
    const ok: Record<Kind, () => boolean> = {
      string: () => typeof v === 'string',
      'string|null': () => v === null || typeof v === 'string',
      'string[]': () => Array.isArray(v) && v.every((x) => typeof x === 'string'),
      'string[]|null': () => v === null || (Array.isArray(v) && v.every((x) => typeof x === 'string')),
      int: () => isInt(v),
      'int|null': () => v === null || isInt(v),
      'int|int[]|null': () => v === null || isInt(v) || (Array.isArray(v) && v.every(isInt)),
      boolean: () => typeof v === 'boolean',
      'object|null': () => v === null || (typeof v === 'object' && !Array.isArray(v)),
    };
    const want: Record<Kind, string> = {
      string: 'a string', 'string|null': 'a string or null', 'string[]': 'a list of strings', 'string[]|null': 'a list of strings or null',
      int: 'an integer', 'int|null': 'an integer or null', 'int|int[]|null': 'an integer, a list of integers or null',
      boolean: 'true or false', 'object|null': 'an object or null',
    };
    if (!ok[kind]()) this.fail(key, want[kind], v);
    return v;
  }

  opt(key: string, kind: Kind, fallback: unknown): unknown {
    return this.get(key, kind, fallback);
  }

  posInt(key: string, fallback?: number): number {
    if (!this.has(key) || (this.raw[key] === null && fallback !== undefined)) {
      if (fallback === undefined) throw new DpoError(`${this.path}: missing "${this.prefix}${key}"`);
      return fallback;
    }
    const v = this.raw[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(key, 'a positive integer', v);
    return v as number;
  }

  num(key: string, fallback?: number): number {
    if (!this.has(key) || (this.raw[key] === null && fallback !== undefined)) {
      if (fallback === undefined) throw new DpoError(`${this.path}: missing "${this.prefix}${key}"`);
      return fallback;
    }
    const v = this.raw[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'a number', v);
    return v as number;
  }
}

/**
 * The raw config with `updates` applied (undefined deletes a key), for saving. Setting `dtype`
 * also updates a legacy `torch_dtype` so the two never disagree.
 */
export function updatedConfig(raw: Record<string, unknown>, updates: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  for (const [k, v] of Object.entries(updates)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  if ('dtype' in updates && 'torch_dtype' in out && updates.torch_dtype === undefined) out.torch_dtype = updates.dtype;
  return out;
}

/** config.json text as transformers writes it (sorted keys, indent 2, floats kept floats). */
export function configJsonText(raw: Record<string, unknown>, floatPaths: ReadonlySet<string> = new Set()): string {
  return `${stringifyPython(raw, floatPaths)}\n`;
}

/** Writes `<dir>/config.json` atomically. */
export function writeModelConfig(dir: string, raw: Record<string, unknown>, floatPaths: ReadonlySet<string> = new Set()): void {
  writeFileAtomic(join(dir, 'config.json'), configJsonText(raw, floatPaths));
}
