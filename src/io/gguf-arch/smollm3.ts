/**
 * SmolLM3 (conversion/smollm3.py: SmolLM3Model, a LlamaModel): llama's names and q/k permutation.
 * llama.cpp's smollm3 graph skips RoPE on every 4th layer ((i + 1) % 4 == 0, not a key), so another
 * no_rope_layers pattern is refused; it has no sliding window (a caveat).
 */
import { DpoError } from '../../errors.js';
import type { ArchConfig } from '../../models/arch.js';
import { LLAMA_MODULES, permuteQk, ropeCaveats, slidingCaveat, type GgufArchTable } from './common.js';
import { llamaHparams } from './llama.js';

/** llama.cpp's n_no_rope_layer_step for smollm3. */
const NO_ROPE_STEP = 4;

function checkNoRope(a: ArchConfig): void {
  for (let i = 0; i < Math.min(a.numLayers, 4096); i++) {
    if ((a.layer(i).rope !== null) !== ((i + 1) % NO_ROPE_STEP !== 0)) {
      throw new DpoError(`GGUF export: layer ${i} ${a.layer(i).rope === null ? 'has no' : 'has'} RoPE on model_type smollm3, but llama.cpp's smollm3 graph skips RoPE exactly on every ${NO_ROPE_STEP}th layer (no_rope_layer_interval ${NO_ROPE_STEP}); export safetensors instead`);
    }
  }
}

export const smollm3: GgufArchTable = {
  arch: 'smollm3',
  modules: LLAMA_MODULES,
  permuteHeads: permuteQk,
  hparams: (a) => {
    checkNoRope(a);
    return llamaHparams('smollm3', a, {});
  },
  extraTensors: () => [],
  caveats: (a) => [...slidingCaveat(a), ...ropeCaveats(a)],
};
