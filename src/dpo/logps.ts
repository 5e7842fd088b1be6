/**
 * Per-sequence completion log-probs of a [chosen; rejected] batch, as TRL's _compute_loss computes
 * them: logits at t score token t+1 (shift), only completion tokens count, summed per row (with
 * LD-DPO's down-weighted tail when ld_alpha is set). Only the positions whose next token is a
 * completion token go through the lm_head, via the fused chunked log-prob op, so the (N, V) logits
 * are never materialised and prompt positions cost no vocabulary work.
 */
import { indexSelect, matmul, reshape, tokenLogprobs } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import type { CausalLM } from '../models/causal-lm.js';
import { packRows, packedPositions, type PackedBatch } from './packing.js';

/** A collated preference batch: rows 0..B−1 chosen, B..2B−1 rejected, each (2B, T) row-major. */
export interface PairBatch {
  inputIds: Int32Array;
  attentionMask: Uint8Array;
  completionMask: Uint8Array;
  /** 2B */
  rows: number;
  T: number;
}

/** Token statistics TRL logs, as sums over completion tokens (so micro-batches can be combined). */
export interface TokenStats {
  entropySum: number;
  tokens: number;
  chosenLogitMeanSum: number;
  chosenTokens: number;
  rejectedLogitMeanSum: number;
  rejectedTokens: number;
  chosenCorrect: number;
}

export interface SequenceLogps {
  /** (2B) Σ over completion tokens of log π(y_t | x, y_<t) (differentiable when the model is) */
  logps: Tensor;
  /** (M) per-token log-probs of the M completion tokens, row by row */
  tokenLogps: Tensor;
  /** (M) the row each completion token belongs to */
  rowOf: Int32Array;
  /** (2B) completion tokens per row after the shift (TRL's shift_completion_mask.sum(1)) */
  shiftedCounts: Int32Array;
  /** (2B) completion_mask.sum(1) before the shift (what ipo / sigmoid_norm divide by) */
  completionCounts: Int32Array;
  stats: TokenStats | null;
  /** (2B) WPO: mean over completion tokens of logp − (lse(2·logits) − 2·lse(logits)); with `wpo` */
  wpoMeanLogps: Float64Array | null;
}

/** Positions t whose next token t+1 is a completion token, their labels and rows. */
export function completionPositions(b: PairBatch): { sel: Int32Array; labels: Int32Array; rowOf: Int32Array; shiftedCounts: Int32Array; completionCounts: Int32Array } {
  const { rows: R, T, completionMask: cm, inputIds: ids } = b;
  let M = 0;
  const completionCounts = new Int32Array(R);
  const shiftedCounts = new Int32Array(R);
  for (let r = 0; r < R; r++) {
    for (let t = 0; t < T; t++) completionCounts[r] += cm[r * T + t];
    for (let t = 1; t < T; t++) shiftedCounts[r] += cm[r * T + t];
    M += shiftedCounts[r];
  }
  const sel = new Int32Array(M);
  const labels = new Int32Array(M);
  const rowOf = new Int32Array(M);
  let m = 0;
  for (let r = 0; r < R; r++) {
    for (let t = 0; t + 1 < T; t++) {
      if (!cm[r * T + t + 1]) continue;
      sel[m] = r * T + t;
      labels[m] = ids[r * T + t + 1];
      rowOf[m] = r;
      m++;
    }
  }
  return { sel, labels, rowOf, shiftedCounts, completionCounts };
}

/**
 * Token weights of the per-row sum: 1, or for LD-DPO (ld_alpha) 1 on the first min(len_chosen,
 * len_rejected) completion tokens of a pair and ld_alpha on the longer one's tail.
 */
function rowWeights(rowOf: Int32Array, shiftedCounts: Int32Array, rows: number, ldAlpha: number | null): Float32Array {
  const M = rowOf.length;
  const S = new Float32Array(rows * M); // (2B, M)
  const B = rows / 2;
  let pos = 0;
  for (let m = 0; m < M; m++) {
    const r = rowOf[m];
    pos = m > 0 && rowOf[m - 1] === r ? pos + 1 : 1;
    let w = 1;
    if (ldAlpha !== null) {
      const pair = r % B;
      const shared = Math.min(shiftedCounts[pair], shiftedCounts[pair + B]);
      if (pos > shared) w = ldAlpha;
    }
    S[r * M + m] = w;
  }
  return S;
}

export interface SequenceLogpsOptions {
  ldAlpha?: number | null;
  /** TRL's logged token statistics (entropy, mean logits, token accuracy). */
  stats?: boolean;
  /** WPO's per-row mean weights (use_weighting). */
  wpo?: boolean;
  /** Vocabulary chunk of the fused log-prob op. */
  chunk?: number;
  /** Pack the rows back to back (padding_free). */
  paddingFree?: boolean;
  /** With paddingFree: pack each pair's common prefix once (packing.ts). */
  sharePrompt?: boolean;
}

/** Packs a batch; sharing stays off when a sliding window could reach across the packed gap. */
function pack(model: CausalLM, b: PairBatch, sharePrompt: boolean): PackedBatch {
  const packed = packRows(b, sharePrompt);
  const window = model.arch.slidingWindow;
  return packed.inputs.segParents && window > 0 && window < packed.inputs.T ? packRows(b, false) : packed;
}

export function sequenceLogps(model: CausalLM, b: PairBatch, opts: SequenceLogpsOptions = {}): SequenceLogps {
  const { sel, labels, rowOf, shiftedCounts, completionCounts } = completionPositions(b);
  const M = sel.length;
  let hs: Tensor;
  if (opts.paddingFree) {
    const packed = pack(model, b, !!opts.sharePrompt);
    const h = model.hidden(packed.inputs); // (Σ lengths, C)
    hs = indexSelect(h, 0, packedPositions(sel, rowOf, b.T, packed)); // (M, C)
  } else {
    const h = model.hidden({ ids: b.inputIds, B: b.rows, T: b.T, attentionMask: b.attentionMask }); // (2B·T, C)
    hs = indexSelect(h, 0, sel); // (M, C)
  }
  const out = tokenLogprobs(hs, model.lmHeadWeight(), labels, { stats: !!opts.stats, wpo: !!opts.wpo, chunk: opts.chunk, softcap: model.finalLogitSoftcap });
  const S = Tensor.from(rowWeights(rowOf, shiftedCounts, b.rows, opts.ldAlpha ?? null), [b.rows, M]);
  const logps = reshape(matmul(S, reshape(out.logp, [M, 1])), [b.rows]);
  let stats: TokenStats | null = null;
  if (opts.stats && out.entropy && out.logitSum && out.argmax) {
    const V = model.arch.vocabSize;
    const B = b.rows / 2;
    stats = { entropySum: 0, tokens: M, chosenLogitMeanSum: 0, chosenTokens: 0, rejectedLogitMeanSum: 0, rejectedTokens: 0, chosenCorrect: 0 };
    for (let m = 0; m < M; m++) {
      stats.entropySum += out.entropy[m];
      if (rowOf[m] < B) {
        stats.chosenLogitMeanSum += out.logitSum[m] / V;
        stats.chosenTokens++;
        if (out.argmax[m] === labels[m]) stats.chosenCorrect++;
      } else {
        stats.rejectedLogitMeanSum += out.logitSum[m] / V;
        stats.rejectedTokens++;
      }
    }
  }
  let wpoMeanLogps: Float64Array | null = null;
  if (opts.wpo && out.lse && out.lse2) {
    wpoMeanLogps = new Float64Array(b.rows);
    for (let m = 0; m < M; m++) wpoMeanLogps[rowOf[m]] += out.logp.data[m] - (out.lse2[m] - 2 * out.lse[m]);
    for (let r = 0; r < b.rows; r++) wpoMeanLogps[r] /= Math.max(shiftedCounts[r], 1);
  }
  return { logps, tokenLogps: out.logp, rowOf, shiftedCounts, completionCounts, stats, wpoMeanLogps };
}
