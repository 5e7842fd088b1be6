/**
 * Granite 3.x (conversion/granite.py: GraniteModel, a LlamaModel): llama's names and q/k
 * permutation, head_dim dropped (llama.cpp derives it), and the four multipliers as
 * attention.scale, embedding_scale, residual_scale and logit_scale (llama.cpp divides by it).
 */
import { DpoError } from '../../errors.js';
import { f32 } from '../gguf.js';
import { LLAMA_MODULES, permuteQk, ropeCaveats, ropeTensors, type GgufArchTable } from './common.js';
import { llamaHparams } from './llama.js';

export const granite: GgufArchTable = {
  arch: 'granite',
  modules: LLAMA_MODULES,
  permuteHeads: permuteQk,
  hparams: (a) => {
    if (a.headDim * a.numHeads !== a.hiddenSize) throw new DpoError(`GGUF export: head_dim ${a.headDim} × num_attention_heads ${a.numHeads} ≠ hidden_size ${a.hiddenSize} on model_type granite; llama.cpp's granite graph derives head_dim from hidden_size`);
    // llama.cpp reads attention.scale 0 as "head_dim^−½".
    if (a.attnScale === 0) throw new DpoError('GGUF export: attention_multiplier 0 on model_type granite is read by llama.cpp as head_dim^−½; export safetensors instead');
    return [
      ...llamaHparams('granite', a, { llama3: true, longrope: true }, false),
      ['granite.attention.scale', f32(a.attnScale)],
      ['granite.embedding_scale', f32(a.embedScale)],
      ['granite.residual_scale', f32(a.residualMultiplier)],
      ['granite.logit_scale', f32(a.logitsScaling)],
    ];
  },
  extraTensors: ropeTensors,
  caveats: ropeCaveats,
};
