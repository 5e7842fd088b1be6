/** qwen2 / qwen3 (conversion/qwen.py): llama's names, NEOX-style (rotate-half) RoPE, so HF's layout with no permutation. */
import { LLAMA_MODULES, decoderHparams, noPermute, ropeCaveats, ropeHparams, slidingCaveat, type GgufArchTable } from './common.js';

export const qwen = (arch: 'qwen2' | 'qwen3'): GgufArchTable => ({
  arch,
  modules: LLAMA_MODULES,
  permuteHeads: noPermute,
  hparams: (a) => [...decoderHparams(arch, a), ...ropeHparams(arch, a)],
  extraTensors: () => [],
  caveats: (a) => [...slidingCaveat(a), ...ropeCaveats(a)],
});
