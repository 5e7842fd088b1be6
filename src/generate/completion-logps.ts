/**
 * log π(y | x) of given completions: rows prompt+completion, right-padded, the completion tokens
 * marked, summed per row by the same fused log-prob op the trainer uses.
 */
import { noGrad } from '../autograd/tape.js';
import { scope } from '../tensor/pool.js';
import type { CausalLM } from '../models/causal-lm.js';
import { sequenceLogps, type PairBatch } from '../dpo/logps.js';

/** (R, T) rows prompt+completion, right-padded with `padId`; the completion mask marks each completion. */
export function completionBatch(prompts: readonly (readonly number[])[], completions: readonly (readonly number[])[], padId: number): PairBatch {
  const R = prompts.length;
  const T = Math.max(...prompts.map((p, r) => p.length + completions[r].length));
  const inputIds = new Int32Array(R * T).fill(padId);
  const attentionMask = new Uint8Array(R * T);
  const completionMask = new Uint8Array(R * T);
  for (let r = 0; r < R; r++) {
    const P = prompts[r].length, n = P + completions[r].length;
    inputIds.set(prompts[r], r * T);
    inputIds.set(completions[r], r * T + P);
    attentionMask.fill(1, r * T, r * T + n);
    completionMask.fill(1, r * T + P, r * T + n);
  }
  return { inputIds, attentionMask, completionMask, rows: R, T };
}

/** Σ_t log π(y_t | x, y_<t) for each (prompt, completion), in batches of `batchSize` rows (no gradient). */
export function completionLogps(model: CausalLM, prompts: readonly (readonly number[])[], completions: readonly (readonly number[])[], padId: number, batchSize = 32): Float64Array {
  const out = new Float64Array(prompts.length);
  const wasTraining = model.training;
  model.eval();
  for (let i = 0; i < prompts.length; i += batchSize) {
    const b = completionBatch(prompts.slice(i, i + batchSize), completions.slice(i, i + batchSize), padId);
    out.set(scope(() => noGrad(() => Float64Array.from(sequenceLogps(model, b).logps.data))), i);
  }
  if (wasTraining) model.train();
  return out;
}
