/**
 * From a batch's policy log-probs and reference log-probs to the scalar loss: the per-sequence
 * quantities TRL's _compute_loss derives from the batch (lengths, SFT term, WPO statistic), handed
 * to dpoLoss (losses.ts), which assembles the loss table exactly as TRL does.
 */
import { Tensor } from '../tensor/tensor.js';
import { slice } from '../ops/index.js';
import type { DPOConfig } from './config.js';
import type { PairBatch, SequenceLogps } from './logps.js';
import { chosenTokenNll, dpoLoss } from './losses.js';

export function computeLoss(pol: SequenceLogps, ref: Float64Array, b: PairBatch, a: DPOConfig): Tensor {
  const B = b.rows / 2;
  const sftLoss = a.lossType.includes('sft') ? chosenTokenNll(pol.tokenLogps, Array.from(pol.rowOf, (r) => (r < B ? 1 : 0))) : null;
  return dpoLoss(
    {
      chosenLogps: slice(pol.logps, 0, 0, B),
      rejectedLogps: slice(pol.logps, 0, B, 2 * B),
      refChosenLogps: ref.subarray(0, B),
      refRejectedLogps: ref.subarray(B),
      chosenLengths: pol.completionCounts.subarray(0, B),
      rejectedLengths: pol.completionCounts.subarray(B),
      sftLoss,
      wpoMeanLogps: pol.wpoMeanLogps,
    },
    a,
  ).loss;
}
