/**
 * Padding-free batches (`padding_free`): the real tokens of every row of a right-padded
 * [chosen; rejected] batch, packed back to back into one sequence. Position ids restart at 0 for
 * each row and attention stays inside each row (segment ids), so every token sees exactly what it
 * saw in the padded batch and no compute is spent on padding.
 *
 * With `sharePrompt`, the tokens a chosen row and its rejected row start with in common (the
 * prompt, usually) are packed once: [shared | chosen rest | rejected rest], both rests attending
 * the shared keys (segParents) with positions continuing after them. Causal attention makes a
 * prefix's hidden states independent of what follows, so every token's hidden state is the one
 * the padded batch gives, for ~20% fewer tokens on typical pairs.
 */
import type { LmInputs } from '../models/causal-lm.js';
import type { PairBatch } from './logps.js';

export interface PackedBatch {
  inputs: LmInputs;
  /** Where row r's own (unshared) tokens start in the packed sequence. */
  offsets: Int32Array;
  /** How many leading tokens row r shares with its pair (0 without sharePrompt). */
  shared: Int32Array;
  /** Where row r's shared tokens start. */
  sharedOffsets: Int32Array;
}

/** Real tokens per row (the collator pads on the right; anything else is a bug upstream). */
function rowLengths(b: PairBatch): Int32Array {
  const { rows: R, T, attentionMask } = b;
  const lengths = new Int32Array(R);
  for (let r = 0; r < R; r++) {
    for (let t = 0; t < T; t++) lengths[r] += attentionMask[r * T + t];
    for (let t = 0; t < lengths[r]; t++) {
      if (!attentionMask[r * T + t]) throw new Error(`padding_free: row ${r} is not right-padded (padding at position ${t})`);
    }
  }
  return lengths;
}

/**
 * Leading tokens pair p's chosen and rejected rows have in common, leaving each at least one token
 * of its own (so both keep a segment).
 */
function sharedPrefix(b: PairBatch, p: number, lengths: Int32Array): number {
  const B = b.rows / 2, T = b.T, ids = b.inputIds;
  const cap = Math.min(lengths[p], lengths[p + B]) - 1;
  let L = 0;
  while (L < cap && ids[p * T + L] === ids[(p + B) * T + L]) L++;
  return L;
}

export function packRows(b: PairBatch, sharePrompt = false): PackedBatch {
  const { rows: R, T, inputIds } = b;
  const B = R / 2;
  const lengths = rowLengths(b);
  const shared = new Int32Array(R), offsets = new Int32Array(R), sharedOffsets = new Int32Array(R);
  let P = 0;
  // Rows in order [chosen 0, chosen 1, …, rejected 0, …]; with sharing, pair by pair as
  // [shared, chosen rest, rejected rest].
  const order = sharePrompt ? Array.from({ length: B }, (_, p) => [p, p + B]).flat() : Array.from({ length: R }, (_, r) => r);
  for (const r of order) {
    if (sharePrompt && r < B) {
      shared[r] = shared[r + B] = sharedPrefix(b, r, lengths);
      sharedOffsets[r] = sharedOffsets[r + B] = P;
      P += shared[r];
    }
    offsets[r] = P;
    P += lengths[r] - shared[r];
  }
  // Row r's own tokens are segment r; pair p's shared prefix is segment R + p, their parent.
  const ids = new Int32Array(P), positionIds = new Int32Array(P), segIds = new Int32Array(P), segParents = new Int32Array(P).fill(-1);
  for (let r = 0; r < R; r++) {
    const L = shared[r];
    for (let t = 0; t < lengths[r]; t++) {
      if (t < L && r >= B) continue; // written from the chosen row
      const i = t < L ? sharedOffsets[r] + t : offsets[r] + t - L;
      ids[i] = inputIds[r * T + t];
      positionIds[i] = t;
      segIds[i] = t < L ? R + (r % B) : r;
      if (t >= L && L > 0) segParents[i] = R + (r % B);
    }
  }
  const anyShared = shared.some((L) => L > 0);
  return { inputs: { ids, B: 1, T: P, attentionMask: null, positionIds, segIds, segParents: anyShared ? segParents : null }, offsets, shared, sharedOffsets };
}

/** Maps padded flat positions r·T + t (rows of `rowOf`) to their packed positions. */
export function packedPositions(sel: Int32Array, rowOf: Int32Array, T: number, packed: PackedBatch): Int32Array {
  const { offsets, shared, sharedOffsets } = packed;
  const out = new Int32Array(sel.length);
  for (let m = 0; m < sel.length; m++) {
    const r = rowOf[m], t = sel[m] - r * T;
    out[m] = t < shared[r] ? sharedOffsets[r] + t : offsets[r] + t - shared[r];
  }
  return out;
}
