/**
 * Granite 3.x (transformers' modular_granite.py), as it differs from Llama: four scalars —
 * embeddings × embedding_multiplier, scores × attention_multiplier (instead of head_dim^−½),
 * branch outputs × residual_multiplier before each residual add, logits ÷ logits_scaling.
 */
import type { ArchConfig } from './arch.js';
import { parseDecoder } from './arch.js';
import type { ConfigReader } from './config-reader.js';
import { DecoderForCausalLM, LLAMA_NORMS, decoderWeightShapes, type DecoderPlan } from './decoder.js';
import { plainNames, type ModelRegistration } from './registration.js';

const GRANITE: DecoderPlan = { norm: 'rms', qkNorm: null, norms: LLAMA_NORMS };

function parseGranite(r: ConfigReader): ArchConfig {
  const a = parseDecoder(r, {
    normEps: 1e-6, maxPositions: 2048, tie: false, theta: 10000,
    actKey: 'hidden_act', act: 'silu', acts: ['silu'],
    qkvBias: 'attention_bias', oBias: 'attention_bias', mlpBias: 'mlp_bias',
  });
  a.embedScale = r.num('embedding_multiplier', 1);
  a.attnScale = r.num('attention_multiplier', 1);
  a.residualMultiplier = r.num('residual_multiplier', 1);
  a.logitsScaling = r.positive('logits_scaling', 1);
  return a;
}

export const graniteRegistration: ModelRegistration = {
  modelTypes: ['granite'],
  parse: parseGranite,
  build: (a) => new DecoderForCausalLM(a, GRANITE),
  weightShapes: (a) => decoderWeightShapes(a, GRANITE),
  ...plainNames,
  loraTargets: {},
};
