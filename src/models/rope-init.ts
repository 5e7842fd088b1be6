/**
 * RoPE parameters and inverse frequencies exactly as transformers 5.17 computes them
 * (modeling_rope_utils.py: RotaryEmbeddingConfigMixin.standardize_rope_params, ROPE_INIT_FUNCTIONS,
 * dynamic_rope_update, and each model's compute_default_rope_parameters), every tensor step
 * rounded to float32 as torch's float32 tensors are (Python scalars are cast to float32 inside each
 * op; `scalar / t` is `t.reciprocal() · scalar`). No model; `RotaryState.tables` is the only part
 * that makes tensors.
 *
 * - `ropeParameters(raw, opts)`: the config's `rope_parameters` (transformers 5) or legacy
 *   `rope_scaling` + `rope_theta` (+ Gemma 3's `rope_local_base_freq`), standardized; one dict, or
 *   one per layer type ({full_attention: {...}, sliding_attention: {...}}).
 * - `ropeInit(plan, layerType, dims, seqLen)`: inv_freq (rotaryDim / 2 entries, float32 values) and
 *   the attention scaling that multiplies cos and sin.
 * - `RotaryState`: the state a transformers RotaryEmbedding keeps between forwards. dynamic NTK
 *   recomputes inv_freq for seq_len = max(position_ids) + 1 when it grows past the longest length
 *   seen (initially max_position_embeddings) and goes back to the original inv_freq once a shorter
 *   sequence than max_position_embeddings comes; so, as in transformers, a training batch longer
 *   than max_position_embeddings changes the frequencies of that batch and of later batches of
 *   length ≥ max_position_embeddings. longrope uses long_factor when seq_len exceeds
 *   original_max_position_embeddings, short_factor otherwise (stateless).
 */
import { DpoError } from '../errors.js';
import { invFreq, ropeTablesFrom } from '../ops/rope.js';
import type { Tensor } from '../tensor/tensor.js';

const f32 = Math.fround;

export const ROPE_TYPES = ['default', 'linear', 'dynamic', 'yarn', 'longrope', 'llama3'] as const;
export type RopeType = (typeof ROPE_TYPES)[number];

/** One standardized rope_parameters dict (transformers' RopeParameters). */
export interface RopeParameters {
  rope_type: RopeType;
  rope_theta: number;
  partial_rotary_factor?: number;
  factor?: number;
  original_max_position_embeddings?: number;
  attention_factor?: number;
  beta_fast?: number;
  beta_slow?: number;
  mscale?: number;
  mscale_all_dim?: number;
  truncate?: boolean;
  short_factor?: number[];
  long_factor?: number[];
  low_freq_factor?: number;
  high_freq_factor?: number;
}

/** A model's RoPE: one dict for every layer, or one per layer type (null: that type has no RoPE). */
export type RopePlan = { perLayer: false; params: RopeParameters } | { perLayer: true; params: Record<string, RopeParameters | null> };

/** How a config class reads its RoPE keys (its convert_rope_params_to_dict); llama's by default. */
export interface RopeConfigOptions {
  /** Names config.json in error messages. */
  where?: string;
  /** The config's layer_types: rope_parameters keyed by them is per layer type. */
  layerTypes?: readonly string[] | null;
  /** The config class's default_theta (10000). */
  defaultTheta?: number;
  /** The config class's max_position_embeddings (after its default). */
  maxPositionEmbeddings: number;
  /**
   * The config has an original_max_position_embeddings attribute (Phi-3: config.json's, else 4096),
   * which then wins over the one inside rope_parameters for llama3 / yarn / longrope.
   */
  originalMaxPositionEmbeddings?: number;
  /** partial_rotary_factor when config.json has none (Phi-3 sets 1.0; others leave it out). */
  defaultPartialRotaryFactor?: number;
  /** rope_type renames after standardization (Phi-3: su and yarn are longrope). */
  typeAliases?: Record<string, string>;
  /**
   * Gemma 3's legacy layout: per layer type the top-level key of its theta and the default theta;
   * legacy `rope_scaling` updates the type marked `scaling`. Without rope_parameters both types start
   * as default RoPE.
   */
  legacyPerLayer?: Record<string, { thetaKey: string; defaultTheta: number; scaling?: boolean }>;
}

type Raw = Record<string, unknown>;

const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = (v: Raw): Raw => JSON.parse(JSON.stringify(v)) as Raw;

function fail(where: string, what: string): never {
  throw new DpoError(`${where}: ${what}`);
}

/** The standardized RoPE plan of a config.json object (see RopeConfigOptions for per-model quirks). */
export function ropeParameters(raw: Raw, opts: RopeConfigOptions): RopePlan {
  const where = opts.where ?? 'config.json';
  const key = raw.rope_scaling !== undefined && raw.rope_scaling !== null ? 'rope_scaling' : 'rope_parameters';
  const given = raw[key] ?? null;
  if (given !== null && !isObj(given)) fail(where, `"${key}" must be an object, got ${JSON.stringify(given)}`);
  const topTheta = raw.rope_theta ?? opts.defaultTheta ?? 10000;
  const prf = raw.partial_rotary_factor ?? opts.defaultPartialRotaryFactor;
  let params: Raw;
  if (opts.legacyPerLayer) {
    // Gemma3TextConfig.convert_rope_params_to_dict
    params = raw.rope_parameters && isObj(raw.rope_parameters) ? clone(raw.rope_parameters) : Object.fromEntries(Object.keys(opts.legacyPerLayer).map((t) => [t, { rope_type: 'default' }]));
    for (const [t, spec] of Object.entries(opts.legacyPerLayer)) {
      if (spec.scaling && isObj(raw.rope_scaling)) params[t] = { ...(isObj(params[t]) ? params[t] : {}), ...clone(raw.rope_scaling) };
      if (!isObj(params[t])) params[t] = { rope_type: 'default' };
      const p = params[t] as Raw;
      if (p.rope_theta === undefined) p.rope_theta = raw[spec.thetaKey] ?? spec.defaultTheta;
    }
  } else {
    params = given ? clone(given) : {};
    if (params.rope_theta === undefined) params.rope_theta = topTheta;
    if (prf !== undefined && prf !== null && params.partial_rotary_factor === undefined) params.partial_rotary_factor = prf;
  }
  const layerTypes = opts.layerTypes ?? null;
  const keys = Object.keys(params).filter((k) => opts.legacyPerLayer || (k in (isObj(given) ? given : {})));
  const maxPos = opts.maxPositionEmbeddings;
  const scaled = (t: unknown) => t === 'llama3' || t === 'yarn' || t === 'longrope';
  const typeOf = (p: Raw): string => {
    const t = String(p.rope_type ?? p.type ?? 'default');
    return opts.typeAliases?.[t] ?? t;
  };
  if (!layerTypes || keys.length === 0 || keys.every((k) => !layerTypes.includes(k))) {
    if (opts.legacyPerLayer) fail(where, `layer_types must be given with per-layer-type RoPE parameters`);
    const p = params;
    p.rope_type = typeOf(p); // Phi-3's su / yarn are longrope before its original_max_position_embeddings is copied in
    if (scaled(p.rope_type)) {
      if (opts.originalMaxPositionEmbeddings !== undefined) p.original_max_position_embeddings = opts.originalMaxPositionEmbeddings;
      else if (p.original_max_position_embeddings === undefined) p.original_max_position_embeddings = maxPos;
    }
    return { perLayer: false, params: check(p, where, key) };
  }
  const out: Record<string, RopeParameters | null> = {};
  for (const t of new Set(layerTypes)) {
    const p = params[t];
    if (p === undefined) fail(where, `${key} has no entry for layer type "${t}" (it has ${keys.join(', ')}); give one per layer type in layer_types`);
    if (p === null) {
      out[t] = null;
      continue;
    }
    if (!isObj(p)) fail(where, `${key}.${t} must be an object or null, got ${JSON.stringify(p)}`);
    p.rope_type = typeOf(p);
    if (p.rope_theta === undefined) p.rope_theta = topTheta;
    if (prf !== undefined && prf !== null && p.partial_rotary_factor === undefined) p.partial_rotary_factor = prf;
    if (scaled(p.rope_type) && p.original_max_position_embeddings === undefined) p.original_max_position_embeddings = maxPos;
    out[t] = check(p, where, `${key}.${t}`);
  }
  return { perLayer: true, params: out };
}

/** The keys each rope type needs (transformers' _validate_<type>_rope_parameters raise on these). */
const REQUIRED: Record<RopeType, string[]> = {
  default: [],
  linear: ['factor'],
  dynamic: ['factor'],
  yarn: ['factor', 'original_max_position_embeddings'],
  longrope: ['short_factor', 'long_factor', 'original_max_position_embeddings'],
  llama3: ['factor', 'original_max_position_embeddings', 'low_freq_factor', 'high_freq_factor'],
};

const NUMERIC = ['rope_theta', 'partial_rotary_factor', 'factor', 'original_max_position_embeddings', 'attention_factor', 'beta_fast', 'beta_slow', 'mscale', 'mscale_all_dim', 'low_freq_factor', 'high_freq_factor'] as const;

function check(p: Raw, where: string, key: string): RopeParameters {
  const type = String(p.rope_type);
  if (!(ROPE_TYPES as readonly string[]).includes(type)) fail(where, `${key} rope type "${type}" is not supported; supported: ${ROPE_TYPES.join(', ')}`);
  for (const k of REQUIRED[type as RopeType]) if (p[k] === undefined || p[k] === null) fail(where, `${key} of rope type "${type}" needs "${k}"; add it (transformers requires it too)`);
  for (const k of NUMERIC) {
    const v = p[k];
    if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isFinite(v))) fail(where, `${key}.${k} must be a number, got ${JSON.stringify(v)}`);
  }
  if (!((p.rope_theta as number) > 0)) fail(where, `${key}.rope_theta must be a positive number, got ${JSON.stringify(p.rope_theta)}`);
  const prf = p.partial_rotary_factor as number | undefined;
  if (prf !== undefined && prf !== null && !(prf > 0 && prf <= 1)) fail(where, `${key}.partial_rotary_factor must be in (0, 1], got ${prf}`);
  for (const k of ['short_factor', 'long_factor']) {
    const v = p[k];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)))) fail(where, `${key}.${k} must be a list of numbers, got ${JSON.stringify(v)}`);
  }
  if (p.truncate !== undefined && p.truncate !== null && typeof p.truncate !== 'boolean') fail(where, `${key}.truncate must be true or false, got ${JSON.stringify(p.truncate)}`);
  // null optional entries mean "not given", as transformers' .get() or `or` defaults read them
  const out: Raw = {};
  for (const [k, v] of Object.entries(p)) if (v !== null && k !== 'type') out[k] = v;
  return out as unknown as RopeParameters;
}

/** The model dimensions the init functions read. */
export interface RopeDims {
  /** config.head_dim, or hidden_size / num_attention_heads. */
  headDim: number;
  maxPositionEmbeddings: number;
  /**
   * Whether the model's default RoPE honours partial_rotary_factor (Phi-3's
   * compute_default_rope_parameters does; llama's, Gemma's and most others' use the whole head).
   * The scaled types always do.
   */
  defaultUsesPartialRotary?: boolean;
}

export interface RopeInit {
  /** (rotaryDim / 2) inverse frequencies, float32 values. */
  invFreq: Float64Array;
  /** Multiplies cos and sin (yarn's mscale, longrope's attention factor; 1 elsewhere). */
  attentionScaling: number;
  /** How many leading dims of each head are rotated (the rest pass through). */
  rotaryDim: number;
}

export function planParams(plan: RopePlan, layerType: string | null): RopeParameters | null {
  if (!plan.perLayer) return plan.params;
  if (layerType === null || !(layerType in plan.params)) throw new DpoError(`rope: layer type ${JSON.stringify(layerType)} is not in the RoPE plan (${Object.keys(plan.params).join(', ')})`);
  return plan.params[layerType];
}

/** 1 / base^(2i / dim) for i < dim / 2, each step in float32; `ext` multiplies base^… first (longrope). */
function baseInvFreq(base: number, dim: number, ext?: readonly number[]): Float64Array {
  if (!ext) return invFreq(dim, base);
  const n = Math.floor((dim + 1) / 2);
  const inv = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const pw = f32(f32(base) ** f32((2 * i) / dim));
    inv[i] = f32(1 / f32(f32(ext[i]) * pw));
  }
  return inv;
}

/**
 * inv_freq and attention scaling of one layer type (null for a single plan) at seqLen (undefined:
 * at construction, as transformers' __init__ calls the init function).
 */
export function ropeInit(plan: RopePlan, layerType: string | null, dims: RopeDims, seqLen?: number): RopeInit {
  const p = planParams(plan, layerType);
  if (!p) throw new DpoError(`rope: layer type "${layerType}" has no RoPE (rope_parameters.${layerType} is null)`);
  const prf = p.partial_rotary_factor ?? 1;
  const partialDim = Math.trunc(dims.headDim * prf);
  const base = p.rope_theta;
  const fac = p.factor ?? 1;
  const out = (invFreq: Float64Array, attentionScaling = 1): RopeInit => ({ invFreq, attentionScaling, rotaryDim: 2 * invFreq.length });
  switch (p.rope_type) {
    case 'default':
      return out(baseInvFreq(base, dims.defaultUsesPartialRotary ? partialDim : dims.headDim));
    case 'linear':
      return out(baseInvFreq(base, partialDim).map((v) => f32(v / f32(fac))));
    case 'dynamic':
      return out(dynamicInvFreq(base, partialDim, fac, dims.maxPositionEmbeddings, seqLen));
    case 'yarn':
      return yarn(p, plan, partialDim, dims);
    case 'longrope': {
      const orig = p.original_max_position_embeddings!;
      const att = longropeAttentionFactor(p, dims.maxPositionEmbeddings);
      const ext = seqLen !== undefined && seqLen > orig ? p.long_factor! : p.short_factor!;
      if (ext.length < Math.floor((partialDim + 1) / 2)) throw new DpoError(`rope: longrope ${seqLen !== undefined && seqLen > orig ? 'long' : 'short'}_factor has ${ext.length} entries; expected rotary dim / 2 = ${Math.floor((partialDim + 1) / 2)}`);
      return out(baseInvFreq(base, partialDim, ext), att);
    }
    case 'llama3': // _compute_llama3_parameters: ops/rope.ts's invFreq mirrors it
      return out(invFreq(partialDim, base, { type: 'llama3', factor: p.factor!, low_freq_factor: p.low_freq_factor!, high_freq_factor: p.high_freq_factor!, original_max_position_embeddings: p.original_max_position_embeddings! }));
  }
}

/** longrope's attention factor: attention_factor, else √(1 + ln(factor) / ln(original)) with factor = max_position_embeddings / original by default. */
export function longropeAttentionFactor(p: RopeParameters, maxPositionEmbeddings: number): number {
  const orig = p.original_max_position_embeddings!;
  const factor = p.factor ?? maxPositionEmbeddings / orig;
  return p.attention_factor ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(orig)));
}

/** _compute_dynamic_ntk_parameters: at construction base is unchanged; at a longer seq_len (a tensor there) every step is float32. */
function dynamicInvFreq(base: number, dim: number, factor: number, maxPos: number, seqLen: number | undefined): Float64Array {
  if (seqLen === undefined) return baseInvFreq(base * (((factor * maxPos) / maxPos - (factor - 1)) ** (dim / (dim - 2))), dim);
  const s = Math.max(seqLen, maxPos);
  const ratio = f32(f32(f32(f32(factor) * s) / f32(maxPos)) - f32(factor - 1));
  const b = f32(f32(base) * f32(ratio ** (dim / (dim - 2)))); // tensor ** Python float: the exponent stays double
  const n = Math.floor((dim + 1) / 2);
  const inv = new Float64Array(n);
  for (let i = 0; i < n; i++) inv[i] = f32(1 / f32(b ** f32((2 * i) / dim)));
  return inv;
}

/** yarn's attention factor: attention_factor, else get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim) when both are set, else 0.1·ln(factor) + 1. */
export function yarnAttentionFactor(p: RopeParameters, maxPositionEmbeddings: number): number {
  const factor = p.factor ?? maxPositionEmbeddings / p.original_max_position_embeddings!;
  const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  return p.attention_factor ?? (p.mscale && p.mscale_all_dim ? mscale(factor, p.mscale) / mscale(factor, p.mscale_all_dim) : mscale(factor));
}

/** _compute_yarn_parameters */
function yarn(p: RopeParameters, plan: RopePlan, dim: number, dims: RopeDims): RopeInit {
  const base = p.rope_theta;
  const orig = p.original_max_position_embeddings!;
  const factor = p.factor ?? dims.maxPositionEmbeddings / orig;
  const att = yarnAttentionFactor(p, dims.maxPositionEmbeddings);
  const betaFast = p.beta_fast || 32, betaSlow = p.beta_slow || 1;
  const corr = (rot: number) => (dim * Math.log(orig / (rot * 2 * Math.PI))) / (2 * Math.log(base));
  // transformers reads truncate from config.rope_parameters itself: a per-layer plan always truncates
  const truncate = plan.perLayer ? true : (p.truncate ?? true);
  let lo = corr(betaFast), hi = corr(betaSlow);
  if (truncate) {
    lo = Math.floor(lo);
    hi = Math.ceil(hi);
  }
  lo = Math.max(lo, 0);
  hi = Math.min(hi, dim - 1);
  if (lo === hi) hi += 0.001;
  const half = Math.floor(dim / 2);
  const n = Math.floor((dim + 1) / 2);
  const inv = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const pos = f32(f32(base) ** f32((2 * i) / dim));
    const extra = f32(1 / pos);
    const inter = f32(1 / f32(f32(factor) * pos));
    // ramp = clamp((i − low) / (high − low), 0, 1); extrapolation factor = 1 − ramp
    const ramp = i < half ? Math.min(1, Math.max(0, f32(f32(i - f32(lo)) / f32(hi - lo)))) : 0;
    const ef = f32(1 - ramp);
    inv[i] = f32(f32(inter * f32(1 - ef)) + f32(extra * ef));
  }
  return { invFreq: inv, attentionScaling: att, rotaryDim: 2 * n };
}

/** What a transformers <Model>RotaryEmbedding keeps per layer type between forwards. */
interface LayerState {
  type: RopeType;
  original: RopeInit;
  current: RopeInit;
  maxSeqLenCached: number;
  long?: RopeInit;
}

/**
 * The RoPE a model's forward uses, with transformers' state across calls (dynamic_rope_update):
 * `update(seqLen)` before each forward (seqLen = max(position_ids) + 1 over the batch), then
 * `get(layerType)`. `version` changes whenever some inv_freq changes, so cos/sin caches can key on it.
 */
export class RotaryState {
  private readonly layers = new Map<string | null, LayerState>();
  version = 0;
  constructor(readonly plan: RopePlan, readonly dims: RopeDims) {
    const types = plan.perLayer ? Object.keys(plan.params) : [null];
    for (const t of types) {
      if (planParams(plan, t) === null) continue;
      const init = ropeInit(plan, t, dims);
      this.layers.set(t, { type: planParams(plan, t)!.rope_type, original: init, current: init, maxSeqLenCached: dims.maxPositionEmbeddings });
    }
  }

  update(seqLen: number): void {
    const maxPos = this.dims.maxPositionEmbeddings;
    for (const [t, s] of this.layers) {
      const before = s.current;
      if (s.type === 'dynamic') {
        const cached = s.maxSeqLenCached;
        if (seqLen > cached) {
          s.current = ropeInit(this.plan, t, this.dims, seqLen);
          s.maxSeqLenCached = seqLen;
        }
        if (seqLen < maxPos && cached > maxPos) {
          s.current = s.original;
          s.maxSeqLenCached = maxPos;
        }
      } else if (s.type === 'longrope') {
        const orig = planParams(this.plan, t)!.original_max_position_embeddings!;
        if (seqLen > orig) s.current = s.long ??= ropeInit(this.plan, t, this.dims, orig + 1);
        else s.current = s.original;
      }
      if (s.current !== before) this.version++;
    }
  }

  /** The RoPE of a layer type (null for a single plan); null when that type has no RoPE. */
  get(layerType: string | null = null): RopeInit | null {
    planParams(this.plan, layerType);
    return this.layers.get(layerType)?.current ?? null;
  }

  private readonly tableCache = new Map<string | null, { init: RopeInit; len: number; cos: Tensor; sin: Tensor }>();

  /**
   * cos/sin tables (≥ maxPos, rotaryDim) of a layer type's current RoPE, attention scaling applied,
   * kept across calls and rebuilt when the frequencies change (dynamic, longrope) or maxPos outgrows
   * them (doubling, at least 256 rows); null for a type without RoPE. Call update() first.
   */
  tables(layerType: string | null, maxPos: number): { cos: Tensor; sin: Tensor } | null {
    const init = this.get(layerType);
    if (!init) return null;
    const c = this.tableCache.get(layerType);
    if (c && c.init === init && c.len >= maxPos) return c;
    const len = Math.max(maxPos, 256, c && c.init === init ? 2 * c.len : 0);
    const { cos, sin } = ropeTablesFrom(init.invFreq, len, init.attentionScaling);
    // old tables are left to the garbage collector: a recorded backward may still read them
    const fresh = { init, len, cos: cos.keep(), sin: sin.keep() };
    this.tableCache.set(layerType, fresh);
    return fresh;
  }
}
