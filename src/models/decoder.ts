/**
 * The decoder skeleton every rotary decoder shares (transformers' modeling_llama.py and the files
 * that modify it): embed → layers → norm → head. What an architecture changes is data, a
 * DecoderPlan (norm form and placement, q/k norms, activation), plus the per-layer LayerSpec the
 * config gives (sliding window, RoPE table or none) and the scalars in ArchConfig (attention scale,
 * embedding / residual / logit multipliers). Property names equal the HF weight keys.
 */
import { add, attention, geluTanh, mul, reshape, rope, scale, swiglu } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { Module } from '../nn/module.js';
import { Linear, type LinearForwardOpts, type LinearLike, headWeight } from '../nn/linear.js';
import { Embedding } from '../nn/embedding.js';
import { OffsetRMSNorm, RMSNorm, type NormLike } from '../nn/norm.js';
import type { ArchConfig, LayerSpec } from './arch.js';
import { RotaryState } from './rope-init.js';
import { appendAndAttend, type KVCache } from '../generate/kv-cache.js';
import { defaultPositions, lmLogits, type CausalLM, type LmInputs } from './causal-lm.js';
import { runLayer } from './run-layer.js';
import type { WeightStorage } from '../quant/storage.js';
import { dim, linearWeights, type Dim, type ExpectedWeight, type WeightTable } from './weight-shapes.js';

/** Where a layer's norms sit, by their HF names: before / after each branch. */
export interface NormPlacement {
  preAttn?: string;
  postAttn?: string;
  preMlp?: string;
  postMlp?: string;
}

export interface DecoderPlan {
  /** RMSNorm as x·w, or Gemma's x·(1 + w). */
  norm: 'rms' | 'offset-rms';
  /** q/k RMSNorm: per head (Qwen3, Gemma 3), over the whole projection before the head split (OLMo 2), or none. */
  qkNorm: 'head' | 'proj' | null;
  norms: NormPlacement;
  /** The attention and MLP classes when an architecture's projections differ (Phi-3's fused ones); DecoderAttention / GatedMLP otherwise. */
  attention?: new (a: ArchConfig, spec: LayerSpec, plan: DecoderPlan) => DecoderAttention;
  mlp?: new (a: ArchConfig) => Module & { forward(x: Tensor): Tensor };
}

/** Llama's layer: norms before each branch (the MLP's is named post_attention_layernorm). */
export const LLAMA_NORMS: NormPlacement = { preAttn: 'input_layernorm', preMlp: 'post_attention_layernorm' };

/** Per-forward facts shared by all layers. */
export interface AttnContext {
  B: number;
  T: number;
  pos: Int32Array;
  keyMask: Uint8Array | null;
  segIds: Int32Array | null;
  segParents: Int32Array | null;
  /** The RoPE tables of this forward, by LayerSpec.rope (attention scaling applied). */
  ropes: Record<string, { cos: Tensor; sin: Tensor }>;
  /** Generation: the KV cache (B = 1) this forward appends to, and the layer index. */
  cache?: KVCache | null;
  layer?: number;
}

function makeNorm(plan: DecoderPlan, dimSize: number, eps: number): NormLike {
  return plan.norm === 'offset-rms' ? new OffsetRMSNorm(dimSize, eps) : new RMSNorm(dimSize, eps);
}

export class DecoderAttention extends Module {
  declare q_proj: LinearLike;
  declare k_proj: LinearLike;
  declare v_proj: LinearLike;
  // declared, not defined: the properties appear in assignment order (q, k, v, o, norms), as the HF weights do
  declare o_proj: LinearLike;
  declare q_norm: NormLike | null;
  declare k_norm: NormLike | null;
  private readonly _qkNorm: DecoderPlan['qkNorm'];
  constructor(protected readonly _a: ArchConfig, private readonly _spec: LayerSpec, plan: DecoderPlan) {
    super();
    const { hiddenSize: C, numHeads: H, numKvHeads: KV, headDim: D } = _a;
    this._qkNorm = plan.qkNorm;
    this.initProjections();
    this.o_proj = new Linear(H * D, C, _a.oBias);
    this.q_norm = plan.qkNorm ? makeNorm(plan, plan.qkNorm === 'head' ? D : H * D, _a.normEps) : null;
    this.k_norm = plan.qkNorm ? makeNorm(plan, plan.qkNorm === 'head' ? D : KV * D, _a.normEps) : null;
  }

  /** Creates the q/k/v projection weights (called by the constructor; Phi-3 makes one fused qkv_proj). */
  protected initProjections(): void {
    const { hiddenSize: C, numHeads: H, numKvHeads: KV, headDim: D, qkvBias } = this._a;
    this.q_proj = new Linear(C, H * D, qkvBias);
    this.k_proj = new Linear(C, KV * D, qkvBias);
    this.v_proj = new Linear(C, KV * D, qkvBias);
  }

  /** q, k, v projections (B, T, H·D), (B, T, KV·D), (B, T, KV·D). */
  protected project(x: Tensor): [Tensor, Tensor, Tensor] {
    return [this.q_proj.forward(x), this.k_proj.forward(x), this.v_proj.forward(x)];
  }

  forward(x: Tensor, ctx: AttnContext): Tensor {
    const { numHeads: H, numKvHeads: KV, headDim: D } = this._a;
    const { B, T } = ctx;
    let [qp, kp, vp] = this.project(x);
    if (this._qkNorm === 'proj') {
      qp = this.q_norm!.forward(qp);
      kp = this.k_norm!.forward(kp);
    }
    let q = reshape(qp, [B, T, H, D]);
    let k = reshape(kp, [B, T, KV, D]);
    const v = reshape(vp, [B, T, KV, D]);
    if (this._qkNorm === 'head') {
      q = this.q_norm!.forward(q);
      k = this.k_norm!.forward(k);
    }
    const table = this._spec.rope === null ? null : ctx.ropes[this._spec.rope];
    if (table) {
      // RoPE's backward reads no input, and nothing else reads the un-rotated q, k: free them now
      // (~8% of a layer's activations) instead of at the end of the step.
      const [q0, k0] = [q, k];
      q = rope(q0, table.cos, table.sin, ctx.pos);
      k = rope(k0, table.cos, table.sin, ctx.pos);
      q0.releaseEarly();
      k0.releaseEarly();
    }
    const { window } = this._spec;
    const score = { scale: this._a.attnScale, softcap: this._a.attnSoftcap };
    if (ctx.cache) return this.o_proj.forward(reshape(appendAndAttend(ctx.cache, ctx.layer!, q, k, v, window, score), [B, T, H * D]));
    const a = attention(q, k, v, { causal: true, keyMask: ctx.keyMask, segIds: ctx.segIds, segParents: ctx.segParents, window, ...score });
    return this.o_proj.forward(reshape(a, [B, T, H * D]));
  }
}

export class GatedMLP extends Module {
  gate_proj: LinearLike;
  up_proj: LinearLike;
  down_proj: LinearLike;
  constructor(private readonly _a: ArchConfig) {
    super();
    this.gate_proj = new Linear(_a.hiddenSize, _a.intermediateSize, _a.mlpBias);
    this.up_proj = new Linear(_a.hiddenSize, _a.intermediateSize, _a.mlpBias);
    this.down_proj = new Linear(_a.intermediateSize, _a.hiddenSize, _a.mlpBias);
  }
  /** down(act(gate(x)) · up(x)); `opts` is down's (valuesUnread: the output's values go unread). */
  forward(x: Tensor, opts?: LinearForwardOpts): Tensor {
    return this.down_proj.forward(gatedAct(this._a, this.gate_proj.forward(x), this.up_proj.forward(x)), opts);
  }
}

/** act(gate) · up; silu fused (swiglu keeps no silu(gate) for backward). */
export function gatedAct(a: ArchConfig, g: Tensor, u: Tensor): Tensor {
  return a.hiddenAct === 'silu' ? swiglu(g, u) : mul(geluTanh(g), u);
}

export class DecoderLayer extends Module {
  self_attn: DecoderAttention;
  mlp: Module & { forward(x: Tensor, opts?: LinearForwardOpts): Tensor };
  private readonly _norms: { [K in keyof NormPlacement]?: NormLike };
  constructor(private readonly _a: ArchConfig, spec: LayerSpec, plan: DecoderPlan) {
    super();
    this.self_attn = new (plan.attention ?? DecoderAttention)(_a, spec, plan);
    this.mlp = new (plan.mlp ?? GatedMLP)(_a);
    this._norms = {};
    const self = this as unknown as Record<string, NormLike>;
    for (const [role, name] of Object.entries(plan.norms) as [keyof NormPlacement, string][]) {
      self[name] = makeNorm(plan, _a.hiddenSize, _a.normEps);
      this._norms[role] = self[name];
    }
  }
  /**
   * h + post(branch(pre(h))) twice; the residual adds' backward reads neither input, so branch outputs
   * are freed once added. `recompute` (a checkpointed layer's backward, whose output goes unread): with
   * nothing between the MLP and the add (no post-norm, no multiplier), the MLP's last GEMM is skipped.
   */
  forward(h: Tensor, ctx: AttnContext, recompute = false): Tensor {
    const n = this._norms;
    const m = this._a.residualMultiplier;
    const branch = (x: Tensor, f: (y: Tensor) => Tensor, pre?: NormLike, post?: NormLike): Tensor => {
      let b = f(pre ? pre.forward(x) : x);
      if (post) b = post.forward(b);
      if (m !== 1) return add(x, scale(b, m)); // scale's backward kernel reads its input and output: both stay
      const out = add(x, b);
      b.releaseEarly();
      return out;
    };
    // h after attention is the MLP's input (read), so the attention branch is always computed.
    h = branch(h, (y) => this.self_attn.forward(y, ctx), n.preAttn, n.postAttn);
    const unread = recompute && !n.postMlp && m === 1;
    return branch(h, (y) => this.mlp.forward(y, { valuesUnread: unread }), n.preMlp, n.postMlp);
  }
}

export class DecoderModel extends Module {
  embed_tokens: Embedding;
  layers: DecoderLayer[];
  norm: NormLike;
  constructor(a: ArchConfig, plan: DecoderPlan) {
    super();
    this.embed_tokens = new Embedding(a.vocabSize, a.hiddenSize);
    this.layers = Array.from({ length: a.numLayers }, (_, i) => new DecoderLayer(a, a.layer(i), plan));
    this.norm = makeNorm(plan, a.hiddenSize, a.normEps);
  }
}

export class DecoderForCausalLM extends Module implements CausalLM {
  model: DecoderModel;
  lm_head: Linear | null;
  gradientCheckpointing = false;
  /** transformers' RotaryEmbedding state (dynamic NTK / longrope switch with the sequence length), one per model. */
  private readonly _rotary: RotaryState | null;
  constructor(readonly arch: ArchConfig, plan: DecoderPlan) {
    super();
    this.model = new DecoderModel(arch, plan);
    this.lm_head = arch.tieEmbeddings ? null : new Linear(arch.hiddenSize, arch.vocabSize);
    this._rotary = arch.rope ? new RotaryState(arch.rope.plan, arch.rope.dims) : null;
  }

  hidden(inp: LmInputs): Tensor {
    const { B, T } = inp;
    const a = this.arch;
    const pos = inp.positionIds ?? defaultPositions(B, T);
    let maxPos = 0;
    for (let i = 0; i < pos.length; i++) if (pos[i] > maxPos) maxPos = pos[i];
    // dynamic_rope_update: seq_len = max(position_ids) + 1, before every forward (each generation step too)
    const ropes: AttnContext['ropes'] = {};
    const rot = this._rotary;
    if (rot) {
      rot.update(maxPos + 1);
      for (const k of rot.plan.perLayer ? Object.keys(rot.plan.params) : ['default']) {
        const t = rot.tables(k === 'default' && !rot.plan.perLayer ? null : k, maxPos + 1);
        if (t) ropes[k] = t;
      }
    }
    const ctx: AttnContext = { B, T, pos, keyMask: inp.attentionMask ?? null, segIds: inp.segIds ?? null, segParents: inp.segParents ?? null, ropes, cache: inp.cache ?? null };
    let h = this.model.embed_tokens.forward(inp.ids, [B, T]); // (B, T, C)
    if (a.embedScale !== 1) h = scale(h, a.embedScale);
    const mode = { checkpoint: this.gradientCheckpointing, cache: !!ctx.cache };
    this.model.layers.forEach((layer, i) => {
      const lctx = { ...ctx, layer: i };
      h = runLayer((x, recompute) => layer.forward(x, lctx, recompute), h, layer.parameters(), mode);
    });
    h = this.model.norm.forward(h);
    // logits / s = (h / s)·Wᵀ: the fused log-prob op sees the scaled logits.
    if (a.logitsScaling !== 1) h = scale(h, 1 / a.logitsScaling);
    return reshape(h, [B * T, a.hiddenSize]);
  }

  lmHeadWeight(): Tensor | WeightStorage {
    return this.lm_head ? headWeight(this.lm_head) : this.model.embed_tokens.matrix();
  }

  get finalLogitSoftcap(): number {
    return this.arch.finalSoftcap;
  }

  get recomputeCacheAt(): number | undefined {
    return this.arch.recomputeCacheAt;
  }

  logits(inp: LmInputs): Tensor {
    return reshape(lmLogits(this, this.hidden(inp)), [inp.B, inp.T, this.arch.vocabSize]);
  }
}

/** The weights DecoderForCausalLM(a, plan) has, by config.json key (held equal to its parameters by a test). */
export function decoderWeightShapes(a: ArchConfig, plan: DecoderPlan): WeightTable {
  const C = dim(['hidden_size', a.hiddenSize]);
  const V = dim(['vocab_size', a.vocabSize]);
  const I = dim(['intermediate_size', a.intermediateSize]);
  const explicitD = a.raw.head_dim !== undefined && a.raw.head_dim !== null;
  const derivedD = a.headDim * a.numHeads === a.hiddenSize && !explicitD;
  const D: [string, number] = [explicitD ? 'head_dim' : derivedD ? 'hidden_size / num_attention_heads' : 'head_dim (default)', a.headDim];
  const HD: Dim = derivedD ? C : dim(['num_attention_heads', a.numHeads], D);
  const KVD = dim(['num_key_value_heads', a.numKvHeads], D);
  const vec = (name: string, d: Dim): ExpectedWeight => ({ name: `${name}.weight`, shape: [d] });
  const layer = (i: number) => {
    const p = `model.layers.${i}.`;
    const qk = plan.qkNorm === 'head' ? [dim(D), dim(D)] : plan.qkNorm === 'proj' ? [HD, KVD] : null;
    return [
      ...linearWeights(`${p}self_attn.q_proj`, C, HD, a.qkvBias),
      ...linearWeights(`${p}self_attn.k_proj`, C, KVD, a.qkvBias),
      ...linearWeights(`${p}self_attn.v_proj`, C, KVD, a.qkvBias),
      ...linearWeights(`${p}self_attn.o_proj`, HD, C, a.oBias),
      ...(qk ? [vec(`${p}self_attn.q_norm`, qk[0]), vec(`${p}self_attn.k_norm`, qk[1])] : []),
      ...linearWeights(`${p}mlp.gate_proj`, C, I, a.mlpBias),
      ...linearWeights(`${p}mlp.up_proj`, C, I, a.mlpBias),
      ...linearWeights(`${p}mlp.down_proj`, I, C, a.mlpBias),
      ...Object.values(plan.norms).map((n) => vec(`${p}${n}`, C)),
    ];
  };
  return {
    global: [
      { name: 'model.embed_tokens.weight', shape: [V, C] },
      vec('model.norm', C),
      ...(a.tieEmbeddings ? [] : linearWeights('lm_head', C, V, false)),
    ],
    layer, layerPrefix: 'model.layers.', layersKey: 'num_hidden_layers', numLayers: a.numLayers,
  };
}
