/**
 * Padding-free batches (`padding_free`): the real tokens of every row of a right-padded
 * [chosen; rejected] batch, packed back to back into one sequence. Position ids restart at 0 for
 * each row and attention stays inside each row (segment ids), so every token sees exactly what it
 * saw in the padded batch and no compute is spent on padding.
 */
import type { LmInputs } from '../models/causal-lm.js';
import type { PairBatch } from './logps.js';

export interface PackedBatch {
  inputs: LmInputs;
  /** Where row r starts in the packed sequence. */
  offsets: Int32Array;
}

export function packRows(b: PairBatch): PackedBatch {
  const { rows: R, T, inputIds, attentionMask } = b;
  const lengths = new Int32Array(R);
  const offsets = new Int32Array(R);
  let P = 0;
  for (let r = 0; r < R; r++) {
    offsets[r] = P;
    for (let t = 0; t < T; t++) lengths[r] += attentionMask[r * T + t];
    P += lengths[r];
  }
  const ids = new Int32Array(P), positionIds = new Int32Array(P), segIds = new Int32Array(P);
  for (let r = 0; r < R; r++) {
    for (let t = 0; t < lengths[r]; t++) {
      // The collator pads on the right: a row's real tokens are its first `lengths[r]`.
      if (!attentionMask[r * T + t]) throw new Error(`padding_free: row ${r} is not right-padded (padding at position ${t})`);
      const i = offsets[r] + t;
      ids[i] = inputIds[r * T + t];
      positionIds[i] = t;
      segIds[i] = r;
    }
  }
  return { inputs: { ids, B: 1, T: P, attentionMask: null, positionIds, segIds }, offsets };
}

/** Maps padded flat positions r·T + t (rows of `rowOf`) to their packed positions. */
export function packedPositions(sel: Int32Array, rowOf: Int32Array, T: number, offsets: Int32Array): Int32Array {
  const out = new Int32Array(sel.length);
  for (let m = 0; m < sel.length; m++) out[m] = offsets[rowOf[m]] + (sel[m] - rowOf[m] * T);
  return out;
}
