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
  const seqs: number[][] = [];
  const masks: number[][] = [];
  for (const side of ['chosenIds', 'rejectedIds'] as const) {
    for (const p of pairs) {
      let ids = [...p.promptIds, ...p[side]];
      let m = [...new Array<number>(p.promptIds.length).fill(0), ...new Array<number>(p[side].length).fill(1)];
      if (o.maxLength !== null && ids.length > o.maxLength) {
        if (o.truncationMode === 'keep_end') {
          ids = ids.slice(-o.maxLength);
          m = m.slice(-o.maxLength);
        } else {
          ids = ids.slice(0, o.maxLength);
          m = m.slice(0, o.maxLength);
        }
      }
      seqs.push(ids);
      masks.push(m);
    }
  }
  let T = Math.max(...seqs.map((s) => s.length));
  if (o.padToMultipleOf) T = Math.ceil(T / o.padToMultipleOf) * o.padToMultipleOf;
  const R = seqs.length;
  const inputIds = new Int32Array(R * T).fill(o.padTokenId);
  const attentionMask = new Uint8Array(R * T);
  const completionMask = new Uint8Array(R * T);
  seqs.forEach((s, r) => {
    inputIds.set(s, r * T);
    attentionMask.fill(1, r * T, r * T + s.length);
    completionMask.set(masks[r], r * T);
  });
  return { inputIds, attentionMask, completionMask, rows: R, T, indices: pairs.map((p) => p.index) };
}
