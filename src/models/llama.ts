/**
 * Llama and the models that differ from it only by config (transformers' modeling_llama.py,
 * mistral, qwen2, qwen3): the decoder skeleton with norms before each branch. What each type
 * changes is its defaults, its biases, Qwen 3's per-head q/k norm and which layers slide.
 */
import type { ArchConfig, DecoderDefaults, LayerType } from './arch.js';
import { layerTypes, parseDecoder, readRopes, setLayerTypes, setRopes } from './arch.js';
import type { ConfigReader } from './config-reader.js';
import { DecoderForCausalLM, LLAMA_NORMS, decoderWeightShapes, type DecoderPlan } from './decoder.js';
import { plainNames, type ModelRegistration } from './registration.js';

const LLAMA: DecoderPlan = { norm: 'rms', qkNorm: null, norms: LLAMA_NORMS };
const QWEN3: DecoderPlan = { ...LLAMA, qkNorm: 'head' };
const planOf = (a: ArchConfig): DecoderPlan => (a.qkNorm ? QWEN3 : LLAMA);

/** LlamaForCausalLM and friends: the skeleton with Llama's plan (Qwen 3's adds per-head q/k norms). */
export class LlamaForCausalLM extends DecoderForCausalLM {
  constructor(arch: ArchConfig) {
    super(arch, planOf(arch));
  }
}

const base = { normEps: 1e-6, theta: 10000, actKey: 'hidden_act', act: 'silu', acts: ['silu'], mlpBias: false } as const;
const DEFAULTS: Record<string, DecoderDefaults> = {
  llama: { ...base, maxPositions: 2048, tie: false, qkvBias: 'attention_bias', oBias: 'attention_bias', mlpBias: 'mlp_bias' },
  mistral: { ...base, numKvHeads: 8, maxPositions: 4096 * 32, tie: false, qkvBias: false, oBias: false },
  qwen2: { ...base, numKvHeads: 32, maxPositions: 32768, tie: false, qkvBias: true, oBias: false },
  qwen3: { ...base, numKvHeads: 32, headDim: 128, maxPositions: 32768, tie: false, qkvBias: 'attention_bias', oBias: 'attention_bias' },
};

function parseLlama(r: ConfigReader): ArchConfig {
  const mt = r.modelType;
  const a = parseDecoder(r, DEFAULTS[mt]);
  if (mt === 'mistral') {
    // Every layer slides when sliding_window is set (MistralConfig default 4096).
    const w = r.sizeOrNull('sliding_window', 4096);
    setLayerTypes(a, r, w, () => (w === null ? 'full_attention' : 'sliding_attention'));
  } else if (mt === 'qwen2' || mt === 'qwen3') {
    a.qkNorm = mt === 'qwen3';
    // Qwen2Config: sliding_window only with use_sliding_window; layers from max_window_layers on slide.
    const w = r.bool('use_sliding_window', false) ? r.sizeOrNull('sliding_window', 4096) : null;
    const mwl = r.num('max_window_layers', 28);
    setLayerTypes(a, r, w, (i): LayerType => (w !== null && i >= mwl ? 'sliding_attention' : 'full_attention'));
    setRopes(a, readRopes(r, { defaultTheta: DEFAULTS[mt].theta, layerTypes: layerTypes(a) }, a.maxPositions));
  }
  return a;
}

export const llamaRegistration: ModelRegistration = {
  modelTypes: ['llama', 'mistral', 'qwen2', 'qwen3'],
  parse: parseLlama,
  build: (a) => new LlamaForCausalLM(a),
  weightShapes: (a) => decoderWeightShapes(a, planOf(a)),
  ...plainNames,
  loraTargets: { llama: ['q_proj', 'v_proj'], mistral: ['q_proj', 'v_proj'], qwen2: ['q_proj', 'v_proj'], qwen3: ['q_proj', 'v_proj'] },
};
