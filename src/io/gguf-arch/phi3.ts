/**
 * Phi-3 / 3.5 / 4-mini (conversion/phi.py: Phi3MiniModel): fused qkv_proj → attn_qkv and
 * gate_up_proj → ffn_up (llama.cpp's SWIGLU takes the gate as the first half, as HF's chunk does);
 * NEOX RoPE over rope.dimension_count = head_dim · partial_rotary_factor dims; longrope as
 * rope_factors_long / _short with rope.scaling.attn_factor and the original context. llama.cpp
 * disables Phi's sliding window (a caveat).
 */
import { DpoError } from '../../errors.js';
import { f32, u32, type GgufValue } from '../gguf.js';
import { LLAMA_MODULES, noPermute, ropeCaveats, ropeHparams, ropeTensors, slidingCaveat, type GgufArchTable } from './common.js';

export const phi3: GgufArchTable = {
  arch: 'phi3',
  modules: [
    [/^model\.layers\.(\d+)\.self_attn\.qkv_proj$/, 'blk.$1.attn_qkv'],
    [/^model\.layers\.(\d+)\.mlp\.gate_up_proj$/, 'blk.$1.ffn_up'],
    ...LLAMA_MODULES,
  ],
  permuteHeads: noPermute,
  hparams: (a) => {
    if (a.headDim * a.numHeads !== a.hiddenSize) throw new DpoError(`GGUF export: head_dim ${a.headDim} × num_attention_heads ${a.numHeads} ≠ hidden_size ${a.hiddenSize} on model_type phi3; llama.cpp's phi3 graph derives head_dim from hidden_size`);
    const prf = a.rope!.plan.perLayer ? 1 : (a.rope!.plan.params.partial_rotary_factor ?? 1);
    const orig = a.raw.original_max_position_embeddings;
    const rope = ropeHparams('phi3', a, { longrope: true, partialRotary: true });
    return [
      ['phi3.context_length', u32(a.maxPositions)],
      ...(typeof orig === 'number' && !rope.length ? ([['phi3.rope.scaling.original_context_length', u32(orig)]] as [string, GgufValue][]) : []),
      ['phi3.embedding_length', u32(a.hiddenSize)],
      ['phi3.feed_forward_length', u32(a.intermediateSize)],
      ['phi3.block_count', u32(a.numLayers)],
      ['phi3.attention.head_count', u32(a.numHeads)],
      ['phi3.attention.head_count_kv', u32(a.numKvHeads)],
      ['phi3.attention.layer_norm_rms_epsilon', f32(a.normEps)],
      ['phi3.rope.dimension_count', u32(Math.trunc(a.headDim * prf))],
      ['phi3.rope.freq_base', f32(a.ropeTheta)],
      ['phi3.attention.sliding_window', u32(a.slidingWindow)],
      ...rope,
    ];
  },
  // llama.cpp's vocabulary loader sets attributes of </s>, <unk>, <s> and <|endoftext|> by text
  // (token_to_id.at) when general.name contains phi3 / phi-3, and fails on a tokenizer without them.
  checkName: (name, tokenToId) => {
    if (!/phi-?3/i.test(name)) return;
    const missing = ['</s>', '<unk>', '<s>', '<|endoftext|>'].filter((t) => tokenToId(t) === null);
    if (missing.length) throw new DpoError(`GGUF export: llama.cpp fails to load a model named "${name}" (it contains phi3 / phi-3) whose tokenizer lacks ${missing.join(' ')}; give it another name (dpo export uses the model directory's name)`);
  },
  // Phi3MiniModel.set_vocab: added_tokens.json, tokenizer_config.json's added_tokens_decoder and
  // tokenizer.json's added_tokens, each CONTROL when special (no look-special rule, ▁ kept).
  sentencePiece: { added: ['added_tokens.json', 'added_tokens_decoder', 'tokenizer.json'], looksSpecial: false },
  extraTensors: ropeTensors,
  caveats: (a) => [...slidingCaveat(a), ...ropeCaveats(a)],
};
