/** gpt2 (conversion/gpt2.py): fused c_attn, learned positions, LayerNorm. */
import { f32, u32 } from '../gguf.js';
import type { GgufArchTable } from './common.js';

export const gpt2: GgufArchTable = {
  arch: 'gpt2',
  modules: [
    [/^transformer\.wte$/, 'token_embd'],
    [/^transformer\.wpe$/, 'position_embd'],
    [/^transformer\.ln_f$/, 'output_norm'],
    [/^lm_head$/, 'output'],
    [/^transformer\.h\.(\d+)\.ln_1$/, 'blk.$1.attn_norm'],
    [/^transformer\.h\.(\d+)\.attn\.c_attn$/, 'blk.$1.attn_qkv'],
    [/^transformer\.h\.(\d+)\.attn\.c_proj$/, 'blk.$1.attn_output'],
    [/^transformer\.h\.(\d+)\.ln_2$/, 'blk.$1.ffn_norm'],
    [/^transformer\.h\.(\d+)\.mlp\.c_fc$/, 'blk.$1.ffn_up'],
    [/^transformer\.h\.(\d+)\.mlp\.c_proj$/, 'blk.$1.ffn_down'],
  ],
  permuteHeads: () => 0,
  hparams: (a) => [
    ['gpt2.block_count', u32(a.numLayers)],
    ['gpt2.context_length', u32(a.maxPositions)],
    ['gpt2.embedding_length', u32(a.hiddenSize)],
    ['gpt2.feed_forward_length', u32(a.intermediateSize)],
    ['gpt2.attention.head_count', u32(a.numHeads)],
    ['gpt2.attention.layer_norm_epsilon', f32(a.normEps)],
  ],
  extraTensors: () => [],
  caveats: () => [],
};
