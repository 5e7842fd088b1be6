/**
 * Every TRL 1.13 DPO loss as a small pure function over per-sequence quantities (a table, not an
 * if/elif chain). Inputs are (B) tensors of the policy's and reference's completion log-probs;
 * the f-divergence "scores" replace the log-ratios where TRL uses them.
 *
 *   logratio = logπθ(y|x) − logπref(y|x);  score = f′ of the chosen divergence applied to it;
 *   δ = score_chosen − score_rejected;  each loss maps these to a (B) per-pair loss.
 */
import { Tensor } from '../tensor/tensor.js';
import { add, addScalar, clamp, div, exp, indexSelect, logsigmoid, mul, neg, relu, scale, sigmoid, square, sub, mean } from '../ops/index.js';
import { DpoError } from '../errors.js';

export interface LossInputs {
  chosenLogps: Tensor;
  rejectedLogps: Tensor;
  refChosenLogps: Tensor;
  refRejectedLogps: Tensor;
  /** f-divergence scores of the chosen / rejected log-ratios (= the log-ratios for reverse_kl). */
  chosenScores: Tensor;
  rejectedScores: Tensor;
  /** completion_mask.sum(1) of chosen / rejected rows (unshifted), as TRL's ipo / sigmoid_norm use. */
  chosenLengths: Tensor;
  rejectedLengths: Tensor;
  /** The SFT loss (mean NLL of the chosen completion tokens), a scalar; only when "sft" is used. */
  sftLoss: Tensor | null;
}

export interface LossSettings {
  beta: number;
  labelSmoothing: number;
  discopopTau: number;
}

type LossFn = (x: LossInputs, s: LossSettings) => Tensor;

const logratios = (x: LossInputs) => ({ c: sub(x.chosenLogps, x.refChosenLogps), r: sub(x.rejectedLogps, x.refRejectedLogps) });
const delta = (x: LossInputs) => sub(x.chosenScores, x.rejectedScores);

/** −(1−ε)·logσ(βd) − ε·logσ(−βd) */
function smoothedSigmoid(d: Tensor, beta: number, eps: number): Tensor {
  const a = scale(logsigmoid(scale(d, beta)), -(1 - eps));
  return eps === 0 ? a : sub(a, scale(logsigmoid(scale(d, -beta)), eps));
}

/** Ascending sort along the batch (values only; gradients follow the permutation like torch.sort). */
function sortAsc(t: Tensor): Tensor {
  const idx = Int32Array.from(Array.from(t.data, (v, i) => [v, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i));
  return indexSelect(t, 0, idx);
}

export const LOSSES: Record<string, LossFn> = {
  /** −logσ(βδ) */
  sigmoid: (x, s) => neg(logsigmoid(scale(delta(x), s.beta))),
  /** relu(1 − βδ) */
  hinge: (x, s) => relu(addScalar(neg(scale(delta(x), s.beta)), 1)),
  /** (δ_avg − 1/(2β))², scores averaged over completion tokens */
  ipo: (x, s) => square(addScalar(sub(div(x.chosenScores, clamp(x.chosenLengths, 1, Infinity)), div(x.rejectedScores, clamp(x.rejectedLengths, 1, Infinity))), -1 / (2 * s.beta))),
  /** KL(softmax(βδ) ‖ [1−ε, ε]) over {chosen, rejected} (EXO-pref) */
  exo_pair: (x, s) => {
    const z = scale(delta(x), s.beta);
    const eps = s.labelSmoothing;
    const pos = mul(sigmoid(z), addScalar(logsigmoid(z), -Math.log1p(-eps)));
    const negZ = neg(z);
    return add(pos, mul(sigmoid(negZ), addScalar(logsigmoid(negZ), -Math.log(eps))));
  },
  /** −logσ(r_c) − ½logσ(−r_c) − ½logσ(−r_r), r = β·logratio */
  nca_pair: (x, s) => {
    const { c, r } = logratios(x);
    const rc = scale(c, s.beta), rr = scale(r, s.beta);
    return sub(sub(neg(logsigmoid(rc)), scale(logsigmoid(neg(rc)), 0.5)), scale(logsigmoid(neg(rr)), 0.5));
  },
  /** (−(1−ε)logσ(βδ) + ε·logσ(−βδ)) / (1 − 2ε) */
  robust: (x, s) => {
    const z = scale(delta(x), s.beta);
    const eps = s.labelSmoothing;
    return scale(sub(scale(logsigmoid(z), -(1 - eps)), scale(logsigmoid(neg(z)), -eps)), 1 / (1 - 2 * eps));
  },
  /** −logσ(β·lr_c) − logσ(−β·lr_r) */
  bco_pair: (x, s) => {
    const { c, r } = logratios(x);
    return sub(neg(logsigmoid(scale(c, s.beta))), logsigmoid(scale(r, -s.beta)));
  },
  /** (lr_c − 1/(2β))² + (lr_r + 1/(2β))² */
  sppo_hard: (x, s) => {
    const { c, r } = logratios(x);
    return add(square(addScalar(c, -0.5 / s.beta)), square(addScalar(r, 0.5 / s.beta)));
  },
  /** smoothed sigmoid of sort(πc−πr) − sort(refc−refr) */
  aot: (x, s) => {
    const d = sub(sortAsc(sub(x.chosenLogps, x.rejectedLogps)), sortAsc(sub(x.refChosenLogps, x.refRejectedLogps)));
    return smoothedSigmoid(d, s.beta, s.labelSmoothing);
  },
  /** smoothed sigmoid of sort(lr_c) − sort(lr_r) */
  aot_unpaired: (x, s) => {
    const { c, r } = logratios(x);
    return smoothedSigmoid(sub(sortAsc(c), sortAsc(r)), s.beta, s.labelSmoothing);
  },
  /** (1 − σ(β·lr_c)) + σ(β·lr_r) */
  apo_zero: (x, s) => {
    const { c, r } = logratios(x);
    return add(addScalar(neg(sigmoid(scale(c, s.beta))), 1), sigmoid(scale(r, s.beta)));
  },
  /** σ(β·lr_c) + (1 − σ(β·(lr_c − lr_r))) */
  apo_down: (x, s) => {
    const { c, r } = logratios(x);
    return add(sigmoid(scale(c, s.beta)), addScalar(neg(sigmoid(scale(sub(c, r), s.beta))), 1));
  },
  /** −logσ(z)·(1 − σ(z/τ)) + e^(−z)·σ(z/τ), z = βδ */
  discopop: (x, s) => {
    const z = scale(delta(x), s.beta);
    const m = sigmoid(scale(z, 1 / s.discopopTau));
    return add(mul(neg(logsigmoid(z)), addScalar(neg(m), 1)), mul(exp(neg(z)), m));
  },
  /** NLL of the chosen completion tokens, the same scalar for every pair */
  sft: (x) => {
    if (!x.sftLoss) throw new DpoError('loss "sft" needs the SFT term');
    return mul(x.sftLoss, Tensor.full([x.chosenLogps.size], 1, x.chosenLogps.dtype));
  },
  /** −logσ(β·(score_c/len_c − score_r/len_r)) */
  sigmoid_norm: (x, s) => neg(logsigmoid(scale(sub(div(x.chosenScores, clamp(x.chosenLengths, 1, Infinity)), div(x.rejectedScores, clamp(x.rejectedLengths, 1, Infinity))), s.beta))),
};

/** f′ of the divergence applied to a log-ratio (TRL's chosen_scores / rejected_scores). */
export function fDivergenceScores(logratio: Tensor, type: string, alphaCoef: number): Tensor {
  switch (type) {
    case 'reverse_kl':
      return logratio;
    case 'forward_kl': // 1 − e^(−lr)
      return addScalar(neg(exp(neg(logratio))), 1);
    case 'js_divergence': // log 2 + logσ(lr)
      return addScalar(logsigmoid(logratio), Math.log(2));
    case 'alpha_divergence': {
      if (Math.abs(alphaCoef - 1) < 1e-6) return logratio;
      // (e^((α−1)·lr) − 1)/(α−1), the exponent clamped at 80 as TRL does for float32
      const t = clamp(scale(logratio, alphaCoef - 1), -Infinity, 80);
      return scale(addScalar(exp(t), -1), 1 / (alphaCoef - 1));
    }
  }
  throw new DpoError(`unknown f_divergence_type "${type}"`);
}

/** Σ_k w_k · mean(loss_k) over the configured loss types (optionally WPO-weighted per pair). */
export function combinedLoss(x: LossInputs, s: LossSettings, types: readonly string[], weights: readonly number[] | null, pairWeights: Tensor | null = null): Tensor {
  let total: Tensor | null = null;
  types.forEach((t, i) => {
    const fn = LOSSES[t];
    if (!fn) throw new DpoError(`unknown loss_type "${t}"; choose from ${Object.keys(LOSSES).join(', ')}`);
    let per = fn(x, s);
    if (pairWeights) per = mul(per, pairWeights);
    const term = scale(mean(per), weights ? weights[i] : 1);
    total = total ? add(total, term) : term;
  });
  return total!;
}

