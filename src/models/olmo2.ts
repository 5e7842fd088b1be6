/**
 * OLMo 2 (transformers' modular_olmo2.py), as it differs from Llama: no norm before the branches;
 * post_attention_layernorm and post_feedforward_layernorm on the branch outputs; q/k RMSNorm over
 * the whole projection (all heads) before the head split and RoPE.
 */
import type { ArchConfig } from './arch.js';
import { parseDecoder } from './arch.js';
import type { ConfigReader } from './config-reader.js';
import { DecoderForCausalLM, decoderWeightShapes, type DecoderPlan } from './decoder.js';
import { plainNames, type ModelRegistration } from './registration.js';

export const OLMO2: DecoderPlan = {
  norm: 'rms',
  qkNorm: 'proj',
  norms: { postAttn: 'post_attention_layernorm', postMlp: 'post_feedforward_layernorm' },
};

function parseOlmo2(r: ConfigReader): ArchConfig {
  return parseDecoder(r, {
    normEps: 1e-5, maxPositions: 2048, tie: false, theta: 10000,
    actKey: 'hidden_act', act: 'silu', acts: ['silu'],
    qkvBias: 'attention_bias', oBias: 'attention_bias', mlpBias: false,
  });
}

export const olmo2Registration: ModelRegistration = {
  modelTypes: ['olmo2'],
  parse: parseOlmo2,
  build: (a) => new DecoderForCausalLM(a, OLMO2),
  weightShapes: (a) => decoderWeightShapes(a, OLMO2),
  ...plainNames,
  loraTargets: {},
};
