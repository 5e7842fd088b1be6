/**
 * Gemma 2 (transformers' modular_gemma2.py), as it differs from Llama: Gemma 3's layer without
 * q/k norms (offset RMSNorm, four norms, √hidden embedding scale, gelu_pytorch_tanh, scores ×
 * query_pre_attn_scalar^−½, every other layer sliding), one RoPE table, and soft-capping of the
 * attention scores (attn_logit_softcapping, default 50) and of the final logits
 * (final_logit_softcapping, default 30: it changes every log-prob DPO uses).
 */
import type { ArchConfig, LayerType } from './arch.js';
import { layerTypes, parseDecoder, readRopes, setLayerTypes, setRopes } from './arch.js';
import type { ConfigReader } from './config-reader.js';
import { DecoderForCausalLM, decoderWeightShapes, type DecoderPlan } from './decoder.js';
import { GEMMA3 } from './gemma3.js';
import { plainNames, type ModelRegistration } from './registration.js';

const GEMMA2: DecoderPlan = { ...GEMMA3, qkNorm: null };

function parseGemma2(r: ConfigReader): ArchConfig {
  const a = parseDecoder(r, {
    numKvHeads: 4, headDim: 256, normEps: 1e-6, maxPositions: 8192, tie: true, theta: 10000,
    actKey: 'hidden_activation', act: 'gelu_pytorch_tanh', acts: ['gelu_pytorch_tanh'],
    qkvBias: 'attention_bias', oBias: 'attention_bias', mlpBias: false,
  });
  r.only('use_bidirectional_attention', [false, null], 'bidirectional attention');
  a.attnScale = 1 / Math.sqrt(r.positive('query_pre_attn_scalar', 256));
  a.embedScale = Math.fround(Math.sqrt(a.hiddenSize));
  a.attnSoftcap = r.softcap('attn_logit_softcapping', 50);
  a.finalSoftcap = r.softcap('final_logit_softcapping', 30);
  setLayerTypes(a, r, r.sizeOrNull('sliding_window', 4096), (i): LayerType => ((i + 1) % 2 ? 'sliding_attention' : 'full_attention'));
  setRopes(a, readRopes(r, { defaultTheta: 10000, layerTypes: layerTypes(a) }, a.maxPositions));
  return a;
}

export const gemma2Registration: ModelRegistration = {
  modelTypes: ['gemma2'],
  parse: parseGemma2,
  build: (a) => new DecoderForCausalLM(a, GEMMA2),
  weightShapes: (a) => decoderWeightShapes(a, GEMMA2),
  ...plainNames,
  loraTargets: { gemma2: ['q_proj', 'v_proj'] },
};
