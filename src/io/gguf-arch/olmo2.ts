/**
 * OLMo 2 (conversion/olmo.py: Olmo2Model, the base TextModel): no input norm; post_attention_norm
 * and post_ffw_norm on the branch outputs; attn_q_norm / attn_k_norm over the whole projection
 * (llama.cpp's olmo2 graph norms before the head split, as HF does); NEOX RoPE (no permutation).
 */
import { LLAMA_MODULES, POST_NORM_MODULES, decoderHparams, noPermute, ropeCaveats, ropeHparams, type GgufArchTable } from './common.js';

export const olmo2: GgufArchTable = {
  arch: 'olmo2',
  modules: [...POST_NORM_MODULES, ...LLAMA_MODULES],
  permuteHeads: noPermute,
  hparams: (a) => [...decoderHparams('olmo2', a), ...ropeHparams('olmo2', a)],
  extraTensors: () => [],
  caveats: ropeCaveats,
};
