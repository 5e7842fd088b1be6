/**
 * From a batch's policy log-probs and reference log-probs to the scalar loss, as TRL's
 * _compute_loss assembles it (f-divergence scores, loss table, loss_weights, WPO weights, SFT term).
 */
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { exp, mul, slice, sub, sum } from '../ops/index.js';
import { DpoError } from '../errors.js';
import type { DPOConfig } from './config.js';
import type { PairBatch, SequenceLogps } from './logps.js';
import { combinedLoss, fDivergenceScores, type LossInputs } from './losses.js';

function lengths(counts: Int32Array, from: number, to: number): Tensor {
  return Tensor.from(Array.from(counts.subarray(from, to)), [to - from]);
}

export function computeLoss(pol: SequenceLogps, ref: Float64Array, b: PairBatch, a: DPOConfig): Tensor {
  const B = b.rows / 2;
  const chosenLogps = slice(pol.logps, 0, 0, B);
  const rejectedLogps = slice(pol.logps, 0, B, 2 * B);
  const refChosenLogps = Tensor.from(ref.subarray(0, B), [B], pol.logps.dtype);
  const refRejectedLogps = Tensor.from(ref.subarray(B), [B], pol.logps.dtype);
  const chosenScores = fDivergenceScores(sub(chosenLogps, refChosenLogps), a.fDivergenceType, a.fAlphaDivergenceCoef);
  const rejectedScores = fDivergenceScores(sub(rejectedLogps, refRejectedLogps), a.fDivergenceType, a.fAlphaDivergenceCoef);
  let sftLoss: Tensor | null = null;
  if (a.lossType.includes('sft')) {
    // F.cross_entropy over the chosen completion tokens = −mean of their log-probs.
    const M = pol.rowOf.length;
    let n = 0;
    for (let m = 0; m < M; m++) if (pol.rowOf[m] < B) n++;
    const w = new Float32Array(M);
    for (let m = 0; m < M; m++) if (pol.rowOf[m] < B) w[m] = -1 / Math.max(n, 1);
    sftLoss = sum(mul(pol.tokenLogps, Tensor.from(w, [M], pol.tokenLogps.dtype)));
  }
  const x: LossInputs = {
    chosenLogps, rejectedLogps, refChosenLogps, refRejectedLogps, chosenScores, rejectedScores,
    chosenLengths: lengths(pol.completionCounts, 0, B), rejectedLengths: lengths(pol.completionCounts, B, 2 * B), sftLoss,
  };
  let pairWeights: Tensor | null = null;
  if (a.useWeighting) {
    if (!pol.wpoMeanLogps) throw new DpoError('use_weighting needs the WPO statistics from the forward pass');
    // WPO: w = exp(mean aligned logp) per sequence, chosen·rejected per pair (no gradient).
    const w = noGrad(() => exp(Tensor.from(pol.wpoMeanLogps!, [2 * B])));
    pairWeights = Tensor.from(Array.from({ length: B }, (_, i) => w.data[i] * w.data[i + B]), [B], pol.logps.dtype);
  }
  return combinedLoss(x, { beta: a.beta, labelSmoothing: a.labelSmoothing, discopopTau: a.discopopTau }, a.lossType, a.lossWeights, pairWeights);
}
