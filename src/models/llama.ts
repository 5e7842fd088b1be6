/**
 * Llama-family decoder (llama, mistral, qwen2, qwen3 by flags in ArchConfig), mirroring
 * transformers' modeling_llama.py; property names equal the HF weight keys.
 */
import { add, attention, reshape, rope, ropeTables, swiglu, linear } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { Module } from '../nn/module.js';
import { Linear, type LinearLike, headWeight } from '../nn/linear.js';
import { Embedding } from '../nn/embedding.js';
import { RMSNorm } from '../nn/norm.js';
import type { ArchConfig } from './arch.js';
import { appendAndAttend, type KVCache } from '../generate/kv-cache.js';
import { defaultPositions, type CausalLM, type LmInputs } from './causal-lm.js';
import { runLayer } from './run-layer.js';
import { dim, linearWeights, type Dim, type WeightTable } from './weight-shapes.js';

/** cos/sin tables grown on demand to the longest position seen. */
export class RopeCache {
  private cos: Tensor | null = null;
  private sin: Tensor | null = null;
  private len = 0;
  constructor(private readonly arch: ArchConfig) {}
  get(maxPos: number): { cos: Tensor; sin: Tensor } {
    if (maxPos > this.len || !this.cos || !this.sin) {
      const len = Math.max(maxPos, 256, this.len * 2);
      const t = ropeTables(this.arch.headDim, len, this.arch.ropeTheta, this.arch.ropeScaling);
      this.cos = t.cos.keep();
      this.sin = t.sin.keep();
      this.len = len;
    }
    return { cos: this.cos!, sin: this.sin! };
  }
}

/** Per-forward facts shared by all layers. */
export interface AttnContext {
  B: number;
  T: number;
  pos: Int32Array;
  keyMask: Uint8Array | null;
  segIds: Int32Array | null;
  segParents: Int32Array | null;
  cos: Tensor;
  sin: Tensor;
  /** Generation: the KV cache (B = 1) this forward appends to, and the layer index. */
  cache?: KVCache | null;
  layer?: number;
}

export class LlamaAttention extends Module {
  q_proj: LinearLike;
  k_proj: LinearLike;
  v_proj: LinearLike;
  o_proj: LinearLike;
  q_norm: RMSNorm | null;
  k_norm: RMSNorm | null;
  constructor(private readonly _a: ArchConfig) {
    super();
    const { hiddenSize: C, numHeads: H, numKvHeads: KV, headDim: D } = _a;
    this.q_proj = new Linear(C, H * D, _a.qkvBias);
    this.k_proj = new Linear(C, KV * D, _a.qkvBias);
    this.v_proj = new Linear(C, KV * D, _a.qkvBias);
    this.o_proj = new Linear(H * D, C, _a.oBias);
    this.q_norm = _a.qkNorm ? new RMSNorm(D, _a.normEps) : null;
    this.k_norm = _a.qkNorm ? new RMSNorm(D, _a.normEps) : null;
  }

  forward(x: Tensor, ctx: AttnContext): Tensor {
    const { numHeads: H, numKvHeads: KV, headDim: D } = this._a;
    const { B, T } = ctx;
    let q = reshape(this.q_proj.forward(x), [B, T, H, D]);
    let k = reshape(this.k_proj.forward(x), [B, T, KV, D]);
    const v = reshape(this.v_proj.forward(x), [B, T, KV, D]);
    if (this.q_norm && this.k_norm) {
      q = this.q_norm.forward(q);
      k = this.k_norm.forward(k);
    }
    // RoPE's backward reads no input, and nothing else reads the un-rotated q, k: free them now
    // (~8% of a layer's activations) instead of at the end of the step.
    const [q0, k0] = [q, k];
    q = rope(q0, ctx.cos, ctx.sin, ctx.pos);
    k = rope(k0, ctx.cos, ctx.sin, ctx.pos);
    q0.releaseEarly();
    k0.releaseEarly();
    if (ctx.cache) return this.o_proj.forward(reshape(appendAndAttend(ctx.cache, ctx.layer!, q, k, v, this._a.slidingWindow), [B, T, H * D]));
    const a = attention(q, k, v, { causal: true, keyMask: ctx.keyMask, segIds: ctx.segIds, segParents: ctx.segParents, window: this._a.slidingWindow });
    return this.o_proj.forward(reshape(a, [B, T, H * D]));
  }
}

export class LlamaMLP extends Module {
  gate_proj: LinearLike;
  up_proj: LinearLike;
  down_proj: LinearLike;
  constructor(a: ArchConfig) {
    super();
    this.gate_proj = new Linear(a.hiddenSize, a.intermediateSize, a.mlpBias);
    this.up_proj = new Linear(a.hiddenSize, a.intermediateSize, a.mlpBias);
    this.down_proj = new Linear(a.intermediateSize, a.hiddenSize, a.mlpBias);
  }
  /** down(silu(gate(x)) · up(x)), the gate fused (swiglu keeps no silu(gate) for backward) */
  forward(x: Tensor): Tensor {
    return this.down_proj.forward(swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)));
  }
}

export class LlamaDecoderLayer extends Module {
  self_attn: LlamaAttention;
  mlp: LlamaMLP;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;
  constructor(a: ArchConfig) {
    super();
    this.self_attn = new LlamaAttention(a);
    this.mlp = new LlamaMLP(a);
    this.input_layernorm = new RMSNorm(a.hiddenSize, a.normEps);
    this.post_attention_layernorm = new RMSNorm(a.hiddenSize, a.normEps);
  }
  /** The residual adds' backward reads neither input: the branch outputs are freed once added. */
  forward(h: Tensor, ctx: AttnContext): Tensor {
    const a = this.self_attn.forward(this.input_layernorm.forward(h), ctx);
    h = add(h, a);
    a.releaseEarly();
    const m = this.mlp.forward(this.post_attention_layernorm.forward(h));
    const out = add(h, m);
    m.releaseEarly();
    return out;
  }
}

export class LlamaModel extends Module {
  embed_tokens: Embedding;
  layers: LlamaDecoderLayer[];
  norm: RMSNorm;
  constructor(a: ArchConfig) {
    super();
    this.embed_tokens = new Embedding(a.vocabSize, a.hiddenSize);
    this.layers = Array.from({ length: a.numLayers }, () => new LlamaDecoderLayer(a));
    this.norm = new RMSNorm(a.hiddenSize, a.normEps);
  }
}

export class LlamaForCausalLM extends Module implements CausalLM {
  model: LlamaModel;
  lm_head: Linear | null;
  gradientCheckpointing = false;
  private readonly _rope: RopeCache;
  constructor(readonly arch: ArchConfig) {
    super();
    this.model = new LlamaModel(arch);
    this.lm_head = arch.tieEmbeddings ? null : new Linear(arch.hiddenSize, arch.vocabSize);
    this._rope = new RopeCache(arch);
  }

  hidden(inp: LmInputs): Tensor {
    const { B, T } = inp;
    const pos = inp.positionIds ?? defaultPositions(B, T);
    let maxPos = 0;
    for (let i = 0; i < pos.length; i++) if (pos[i] > maxPos) maxPos = pos[i];
    const { cos, sin } = this._rope.get(maxPos + 1);
    const ctx: AttnContext = { B, T, pos, keyMask: inp.attentionMask ?? null, segIds: inp.segIds ?? null, segParents: inp.segParents ?? null, cos, sin, cache: inp.cache ?? null };
    let h = this.model.embed_tokens.forward(inp.ids, [B, T]); // (B, T, C)
    const mode = { checkpoint: this.gradientCheckpointing, cache: !!ctx.cache };
    this.model.layers.forEach((layer, i) => {
      const lctx = { ...ctx, layer: i };
      h = runLayer((x) => layer.forward(x, lctx), h, layer.parameters(), mode);
    });
    h = this.model.norm.forward(h);
    return reshape(h, [B * T, this.arch.hiddenSize]);
  }

  lmHeadWeight(): Tensor {
    return this.lm_head ? headWeight(this.lm_head) : this.model.embed_tokens.weight;
  }

  logits(inp: LmInputs): Tensor {
    return reshape(linear(this.hidden(inp), this.lmHeadWeight()), [inp.B, inp.T, this.arch.vocabSize]);
  }
}

/** The weights LlamaForCausalLM(a) has, by config.json key (held equal to its parameters by a test). */
export function llamaWeightShapes(a: ArchConfig): WeightTable {
  const C = dim(['hidden_size', a.hiddenSize]);
  const V = dim(['vocab_size', a.vocabSize]);
  const I = dim(['intermediate_size', a.intermediateSize]);
  const explicitD = a.raw.head_dim !== undefined && a.raw.head_dim !== null;
  const D: [string, number] = [explicitD ? 'head_dim' : 'hidden_size / num_attention_heads', a.headDim];
  const HD: Dim = explicitD ? dim(['num_attention_heads', a.numHeads], D) : C;
  const KVD = dim(['num_key_value_heads', a.numKvHeads], D);
  const layer = (i: number) => {
    const p = `model.layers.${i}.`;
    return [
      ...linearWeights(`${p}self_attn.q_proj`, C, HD, a.qkvBias),
      ...linearWeights(`${p}self_attn.k_proj`, C, KVD, a.qkvBias),
      ...linearWeights(`${p}self_attn.v_proj`, C, KVD, a.qkvBias),
      ...linearWeights(`${p}self_attn.o_proj`, HD, C, a.oBias),
      ...(a.qkNorm ? [{ name: `${p}self_attn.q_norm.weight`, shape: [dim(D)] }, { name: `${p}self_attn.k_norm.weight`, shape: [dim(D)] }] : []),
      ...linearWeights(`${p}mlp.gate_proj`, C, I, a.mlpBias),
      ...linearWeights(`${p}mlp.up_proj`, C, I, a.mlpBias),
      ...linearWeights(`${p}mlp.down_proj`, I, C, a.mlpBias),
      { name: `${p}input_layernorm.weight`, shape: [C] },
      { name: `${p}post_attention_layernorm.weight`, shape: [C] },
    ];
  };
  return {
    global: [
      { name: 'model.embed_tokens.weight', shape: [V, C] },
      { name: 'model.norm.weight', shape: [C] },
      ...(a.tieEmbeddings ? [] : linearWeights('lm_head', C, V, false)),
    ],
    layer, layerPrefix: 'model.layers.', layersKey: 'num_hidden_layers', numLayers: a.numLayers,
  };
}
