/**
 * llama / mistral (conversion/llama.py: LlamaModel): q/k rows permuted for llama.cpp's NORM RoPE;
 * llama3 scaling as rope_freqs, longrope as rope_factors_long / _short (llama.cpp's llama graph
 * loads them when rope.scaling.type is longrope).
 */
import type { ArchConfig } from '../../models/arch.js';
import { u32 } from '../gguf.js';
import { LLAMA_MODULES, decoderHparams, permuteQk, ropeCaveats, ropeHparams, ropeTensors, slidingCaveat, type GgufArchTable, type RopeSupport } from './common.js';

/** LlamaModel.set_gguf_parameters: the base keys, then vocab_size and rope.dimension_count. */
export function llamaHparams(p: string, a: ArchConfig, support: RopeSupport, headDimKey = true) {
  return [
    ...decoderHparams(p, a, headDimKey),
    ...ropeHparams(p, a, support),
    [`${p}.vocab_size`, u32(a.vocabSize)],
    [`${p}.rope.dimension_count`, u32(a.headDim)],
  ] as ReturnType<typeof decoderHparams>;
}

export const llama: GgufArchTable = {
  arch: 'llama',
  modules: LLAMA_MODULES,
  permuteHeads: permuteQk,
  hparams: (a) => llamaHparams('llama', a, { llama3: true, longrope: true }),
  extraTensors: ropeTensors,
  caveats: (a) => [...slidingCaveat(a, 'llama'), ...ropeCaveats(a)],
};
