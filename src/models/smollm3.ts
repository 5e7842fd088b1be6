/**
 * SmolLM3 (transformers' modular_smollm3.py), as it differs from Llama: `no_rope_layers` (default:
 * every `no_rope_layer_interval`-th layer, 4, has no RoPE), and with use_sliding_window the layers
 * without RoPE slide (unless `layer_types` says otherwise).
 */
import type { ArchConfig, LayerType } from './arch.js';
import { layerTypes, parseDecoder, readRopes, setLayerTypes, setRopes } from './arch.js';
import type { ConfigReader } from './config-reader.js';
import { DecoderForCausalLM, LLAMA_NORMS, decoderWeightShapes, type DecoderPlan } from './decoder.js';
import { plainNames, type ModelRegistration } from './registration.js';

const SMOLLM3: DecoderPlan = { norm: 'rms', qkNorm: null, norms: LLAMA_NORMS };
const THETA = 2e6;

function parseSmolLM3(r: ConfigReader): ArchConfig {
  const a = parseDecoder(r, {
    numKvHeads: 4, normEps: 1e-6, maxPositions: 32768, tie: true, theta: THETA,
    actKey: 'hidden_act', act: 'silu', acts: ['silu'],
    qkvBias: 'attention_bias', oBias: 'attention_bias', mlpBias: 'mlp_bias',
  });
  const interval = r.size('no_rope_layer_interval', 4);
  const given = r.list<number>('no_rope_layers', a.numLayers, (x) => x === 0 || x === 1, '0 / 1');
  const useRope = (i: number) => (given ? given[i] === 1 : (i + 1) % interval !== 0);
  const window = r.bool('use_sliding_window', false) ? r.sizeOrNull('sliding_window', null) : null;
  setLayerTypes(a, r, window, (i): LayerType => (window !== null && !useRope(i) ? 'sliding_attention' : 'full_attention'));
  setRopes(a, readRopes(r, { defaultTheta: THETA, layerTypes: layerTypes(a) }, a.maxPositions));
  const prev = a.layer;
  a.layer = (i) => ({ ...prev(i), rope: useRope(i) ? prev(i).rope : null });
  return a;
}

export const smollm3Registration: ModelRegistration = {
  modelTypes: ['smollm3'],
  parse: parseSmolLM3,
  build: (a) => new DecoderForCausalLM(a, SMOLLM3),
  weightShapes: (a) => decoderWeightShapes(a, SMOLLM3),
  ...plainNames,
  loraTargets: {},
};
