/**
 * TRL's DataCollatorForPreference: [prompt+chosen; prompt+rejected] rows, per-sequence truncation
 * (keep_start / keep_end), right padding with the pad id (optionally to a multiple), an attention
 * mask and a completion mask.
 */
import type { TokenizedPair } from './prepare.js';

export interface CollateOptions {
  padTokenId: number;
  maxLength: number | null;
  truncationMode: string;
  padToMultipleOf: number | null;
}

export interface CollatedBatch {
  /** (2B, T) rows 0..B−1 chosen, B..2B−1 rejected */
  inputIds: Int32Array;
  attentionMask: Uint8Array;
  completionMask: Uint8Array;
  rows: number;
  T: number;
  /** Data-set indices of the B pairs. */
  indices: number[];
}

export function collate(pairs: readonly TokenizedPair[], o: CollateOptions): CollatedBatch {
  const B = pairs.length, R = 2 * B;
  // Row r is prompt + completion truncated to `keep` tokens starting at `from` (keep_end drops the head).
  const keep = new Int32Array(R), from = new Int32Array(R);
  let T = 0;
  for (let r = 0; r < R; r++) {
    const p = pairs[r % B];
    const full = p.promptIds.length + (r < B ? p.chosenIds : p.rejectedIds).length;
    keep[r] = o.maxLength !== null && full > o.maxLength ? o.maxLength : full;
    from[r] = o.truncationMode === 'keep_end' ? full - keep[r] : 0;
    if (keep[r] > T) T = keep[r];
  }
  if (o.padToMultipleOf) T = Math.ceil(T / o.padToMultipleOf) * o.padToMultipleOf;
  const inputIds = new Int32Array(R * T).fill(o.padTokenId);
  const attentionMask = new Uint8Array(R * T);
  const completionMask = new Uint8Array(R * T);
  for (let r = 0; r < R; r++) {
    const p = pairs[r % B];
    const prompt = p.promptIds, completion = r < B ? p.chosenIds : p.rejectedIds;
    const P = prompt.length;
    for (let t = 0; t < keep[r]; t++) {
      const i = from[r] + t;
      inputIds[r * T + t] = i < P ? prompt[i] : completion[i - P];
      completionMask[r * T + t] = i < P ? 0 : 1;
    }
    attentionMask.fill(1, r * T, r * T + keep[r]);
  }
  return { inputIds, attentionMask, completionMask, rows: R, T, indices: pairs.map((p) => p.index) };
}
