/** What every causal LM in models/ offers the trainer, generation and tests. */
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';
import type { ArchConfig } from './arch.js';
import type { KVCache } from '../generate/kv-cache.js';
import { linear, linearStored, softcap } from '../ops/index.js';
import { isStorage, type WeightStorage } from '../quant/storage.js';

/** One batch of token sequences, row-major (B, T). */
export interface LmInputs {
  ids: Int32Array;
  B: number;
  T: number;
  /** (B, T) 1 = real token; null = all real. */
  attentionMask?: Uint8Array | null;
  /** (B·T) rotary / learned positions; null = 0..T−1 in every row (what transformers uses). */
  positionIds?: Int32Array | null;
  /** (B, T) sequence ids for padding-free packing; null = one sequence per row. */
  segIds?: Int32Array | null;
  /** (B, T) with segIds: an earlier segment whose keys a token also sees (a shared prompt), −1 none. */
  segParents?: Int32Array | null;
  /** Generation only (B = 1, under noGrad): append this chunk's keys/values and attend over the cache. */
  cache?: KVCache | null;
}

export interface CausalLM extends Module {
  readonly arch: ArchConfig;
  /** Where it was loaded from (path or model id), recorded in saved adapters. */
  _nameOrPath?: string;
  /**
   * Recompute each decoder layer in backward instead of storing its activations (the trainer sets
   * it from gradient_checkpointing); only used while a graph is recorded and without a KV cache.
   */
  gradientCheckpointing?: boolean;
  /** Final hidden states after the last norm, (B·T, C). */
  hidden(inp: LmInputs): Tensor;
  /** The output projection (V, C): lm_head.weight, or the tied input embedding; a frozen one may be a stored matrix (bf16 bits). */
  lmHeadWeight(): Tensor | WeightStorage;
  /**
   * Gemma 2's final_logit_softcapping: logits → cap·tanh(logits / cap) (the fused log-prob op's
   * `softcap`; logits() applies it with ops.softcap). 0 / absent = none.
   */
  readonly finalLogitSoftcap?: number;
  /** Full logits (B, T, V); for tests and generation, the trainer uses tokenLogprobs instead. */
  logits(inp: LmInputs): Tensor;
  /**
   * Phi-3's prepare_inputs_for_generation: once the sequence reaches this many tokens with fewer
   * cached, generation drops the KV cache and recomputes the whole sequence (with longrope's long
   * factors). Absent: never.
   */
  readonly recomputeCacheAt?: number;
}

/** Position ids 0..T−1 for each of B rows. */
export function defaultPositions(B: number, T: number): Int32Array {
  const p = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) p[b * T + t] = t;
  return p;
}

/** Logits (N, V) from final hidden states (N, C): h·lm_headᵀ, soft-capped when the model caps them (Gemma 2). */
export function lmLogits(model: Pick<CausalLM, 'lmHeadWeight' | 'finalLogitSoftcap'>, h: Tensor): Tensor {
  const w = model.lmHeadWeight();
  // A stored (frozen) head multiplies as its float32 values, a tile of rows at a time.
  const l = isStorage(w) ? linearStored(h, w, null, { widen: true }) : linear(h, w);
  return model.finalLogitSoftcap ? softcap(l, model.finalLogitSoftcap) : l;
}

/**
 * Weights of the model, as transformers' num_parameters counts them: its parameters plus every
 * frozen stored weight (a quantized or bf16 base keeps its weights outside the parameter walk).
 */
export function numParameters(model: CausalLM): number {
  let n = model.parameters().reduce((a, p) => a + p.size, 0);
  for (const [, m] of model.namedModules()) {
    const w = (m as { _w?: unknown })._w;
    if (isStorage(w)) n += w.rows * w.cols;
  }
  return n;
}
