/**
 * Phi-3 / 3.5 / 4-mini (transformers' modular_phi3.py), as it differs from Llama (Mistral's layer):
 * - one fused qkv_proj (q, then k, then v rows) and one fused gate_up_proj (gate rows, then up),
 *   so LoRA targets are named qkv_proj / gate_up_proj as in PEFT; no biases;
 * - PhiRotaryEmbedding: `partial_rotary_factor` also in default RoPE; `longrope` (legacy `su` /
 *   `yarn` are longrope) with the config's `original_max_position_embeddings` (default 4096);
 * - every layer slides when `sliding_window` is set (Mistral's mask), none otherwise;
 * - resid_pdrop / embd_pdrop dropouts: only 0 (what the released checkpoints set);
 * - generation recomputes the whole sequence once it passes original_max_position_embeddings
 *   (Phi3ForCausalLM.prepare_inputs_for_generation drops the KV cache there).
 */
import type { ArchConfig } from './arch.js';
import { parseDecoder, setLayerTypes } from './arch.js';
import { DpoError } from '../errors.js';
import type { ConfigReader } from './config-reader.js';
import { DecoderAttention, DecoderForCausalLM, LLAMA_NORMS, decoderWeightShapes, gatedAct, type DecoderPlan } from './decoder.js';
import { plainNames, type ModelRegistration } from './registration.js';
import { Linear, type LinearForwardOpts, type LinearLike } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { slice } from '../ops/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { dim, linearWeights, type ExpectedWeight } from './weight-shapes.js';
import type { RopeParameters } from './rope-init.js';

/** Phi3Attention: q, k, v as slices of one projection. */
class Phi3Attention extends DecoderAttention {
  declare qkv_proj: LinearLike;
  protected override initProjections(): void {
    const { hiddenSize: C, numHeads: H, numKvHeads: KV, headDim: D } = this._a;
    this.qkv_proj = new Linear(C, (H + 2 * KV) * D, false);
  }
  protected override project(x: Tensor): [Tensor, Tensor, Tensor] {
    const { numHeads: H, numKvHeads: KV, headDim: D } = this._a;
    const qkv = this.qkv_proj.forward(x);
    const ax = qkv.ndim - 1, q = H * D, kv = KV * D;
    return [slice(qkv, ax, 0, q), slice(qkv, ax, q, q + kv), slice(qkv, ax, q + kv, q + 2 * kv)];
  }
}

/** Phi3MLP: gate, up = gate_up_proj(x).chunk(2); down(up · act(gate)). */
class Phi3MLP extends Module {
  gate_up_proj: LinearLike;
  down_proj: LinearLike;
  constructor(private readonly _a: ArchConfig) {
    super();
    this.gate_up_proj = new Linear(_a.hiddenSize, 2 * _a.intermediateSize, false);
    this.down_proj = new Linear(_a.intermediateSize, _a.hiddenSize, false);
  }
  forward(x: Tensor, opts?: LinearForwardOpts): Tensor {
    const gu = this.gate_up_proj.forward(x);
    const ax = gu.ndim - 1, I = this._a.intermediateSize;
    return this.down_proj.forward(gatedAct(this._a, slice(gu, ax, 0, I), slice(gu, ax, I, 2 * I)), opts);
  }
}

export const PHI3: DecoderPlan = { norm: 'rms', qkNorm: null, norms: LLAMA_NORMS, attention: Phi3Attention, mlp: Phi3MLP };

function parsePhi3(r: ConfigReader): ArchConfig {
  const a = parseDecoder(r, {
    normEps: 1e-5, maxPositions: 4096, tie: false, theta: 10000,
    actKey: 'hidden_act', act: 'silu', acts: ['silu'],
    qkvBias: false, oBias: false, mlpBias: false,
    rope: { defaultPartialRotaryFactor: 1, typeAliases: { su: 'longrope', yarn: 'longrope' }, originalMaxPositionEmbeddings: r.size('original_max_position_embeddings', 4096) },
    defaultUsesPartialRotary: true,
  });
  // Phi3Config.validate_rope
  const rp = a.rope!.plan.params as RopeParameters;
  if (rp.rope_type !== 'default' && rp.rope_type !== 'longrope') throw new DpoError(`${r.where}: phi3 rope type "${rp.rope_type}" is not supported by transformers' Phi-3; use default or longrope (su / yarn are read as longrope)`);
  const half = Math.trunc((Math.trunc(a.hiddenSize / a.numHeads) * (rp.partial_rotary_factor ?? 1)) / 2);
  for (const k of ['short_factor', 'long_factor'] as const) {
    const f = rp[k];
    if (f && f.length !== half) throw new DpoError(`${r.where}: rope ${k} has ${f.length} entries; Phi-3 needs rotary dims / 2 = ${half}`);
  }
  for (const k of ['resid_pdrop', 'embd_pdrop']) r.only(k, [0, 0.0, null], 'residual / embedding dropout');
  const w = r.sizeOrNull('sliding_window', null);
  setLayerTypes(a, r, w, () => (w === null ? 'full_attention' : 'sliding_attention'));
  a.recomputeCacheAt = r.size('original_max_position_embeddings', 4096) + 1;
  return a;
}

/** Llama's table with q/k/v and gate/up each as one fused weight. */
function phi3WeightShapes(a: ArchConfig) {
  const t = decoderWeightShapes(a, PHI3);
  const C = dim(['hidden_size', a.hiddenSize]);
  const D: [string, number] = [a.raw.head_dim !== undefined && a.raw.head_dim !== null ? 'head_dim' : 'hidden_size / num_attention_heads', a.headDim];
  const fused = /\.(self_attn\.[qkv]_proj|mlp\.(gate|up)_proj)\.weight$/;
  const layer = (i: number): ExpectedWeight[] => {
    const p = `model.layers.${i}.`;
    const rest = t.layer(i).filter((w) => !fused.test(w.name));
    return [
      ...linearWeights(`${p}self_attn.qkv_proj`, C, dim(['num_attention_heads + 2 · num_key_value_heads', a.numHeads + 2 * a.numKvHeads], D), false),
      ...linearWeights(`${p}mlp.gate_up_proj`, C, dim(['2', 2], ['intermediate_size', a.intermediateSize]), false),
      ...rest,
    ];
  };
  return { ...t, layer };
}

export const phi3Registration: ModelRegistration = {
  modelTypes: ['phi3'],
  parse: parsePhi3,
  build: (a) => new DecoderForCausalLM(a, PHI3),
  weightShapes: phi3WeightShapes,
  ...plainNames,
  // PEFT 0.21 has no phi3 entry in its default target mapping: pass --lora_target_modules (e.g. qkv_proj).
  loraTargets: {},
};
