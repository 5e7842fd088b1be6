/**
 * Every TRL 1.13 DPO loss (DPOTrainer._compute_loss) as a small pure function over per-pair
 * quantities: a table keyed by loss_type, not an if/elif chain, plus dpoLoss() that assembles them
 * as TRL does. Checked against TRL's own code from per-sequence log-probs (test/dpo/losses.test.ts)
 * and from logits, with every metric (test/dpo/losses-forward.test.ts). What the trainer feeds:
 *
 *   logps_r   = Σ_t w_t · log π(ids[r,t+1] | ids[r,≤t]) over the SHIFTED completion mask
 *               (completion_mask[:, 1:]); w_t = 1, or with ld_alpha 1 on a pair's first
 *               min(n_chosen, n_rejected) scored tokens and ld_alpha after (ldAlphaTokenWeights).
 *               Same weights for the reference.
 *   lr        = logps − ref_logps            (chosen / rejected log-ratios, (B) each)
 *   score     = f′(lr) of f_divergence_type  (reverse_kl: lr; fDivergenceScores)
 *   δ         = score_chosen − score_rejected
 *   loss      = Σ_k loss_weights[k] · mean_B( LOSSES[type_k](…) · wpo_weight )
 *   rewards   = β · lr (detached; metrics only, whatever the f-divergence)
 *
 * Extra inputs by loss type: ipo / sigmoid_norm divide scores by completion_mask.sum(1) of the
 * UNSHIFTED mask (clamped ≥ 1); sft needs the chosen rows' token NLL (chosenTokenNll);
 * use_weighting needs per row mean_t(logp_t − (lse(2·z_t) − 2·lse(z_t))) over the shifted mask,
 * z_t = the policy's logits (wpoMeanLogps), no gradient. loss-inputs.ts has these in TRL's layout.
 *
 * Metrics, appended once per micro-batch and averaged equally at each log (TRL's _metrics):
 * rewards/chosen|rejected = mean β·lr; rewards/accuracies = mean [r_c > r_r] (strict);
 * rewards/margins = mean (r_c − r_r); logps/chosen|rejected = mean policy logps; from the policy
 * logits over scored completion tokens: entropy (all rows), logits/chosen|rejected (mean over the
 * vocabulary, then over tokens), mean_token_accuracy (chosen rows, argmax = label); num_tokens =
 * running Σ attention_mask over train micro-batches (replaced, not appended). See dpo/metrics.ts.
 *
 * TRL 1.13 quirks kept: sigmoid ignores label_smoothing; exo_pair's ε terms are float32; alpha
 * divergence clamps (α−1)·lr at 80. TRL bugs not kept: use_weighting with sft / hinge crashes there
 * (in-place multiply); here it computes the weighted loss.
 *
 * @example
 *   const cfg = lossConfig({ lossType: ['sigmoid', 'sft'], lossWeights: [1, 0.5] });
 *   const { loss, chosenRewards } = dpoLoss({ chosenLogps, rejectedLogps, refChosenLogps, refRejectedLogps, sftLoss }, cfg);
 *   backward(loss);
 */
import { Tensor } from '../tensor/tensor.js';
import { add, addScalar, clamp, div, exp, indexSelect, logsigmoid, mul, neg, relu, scale, sigmoid, square, sub, sum, mean } from '../ops/index.js';
import { DpoError } from '../errors.js';

/** The per-pair inputs every loss function sees, (B) tensors unless noted. */
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

/** The scalars the loss functions read. */
export interface LossSettings {
  beta: number;
  labelSmoothing: number;
  discopopTau: number;
}

export type LossFn = (x: LossInputs, s: LossSettings) => Tensor;

const logratios = (x: LossInputs) => ({ c: sub(x.chosenLogps, x.refChosenLogps), r: sub(x.rejectedLogps, x.refRejectedLogps) });
const delta = (x: LossInputs) => sub(x.chosenScores, x.rejectedScores);
/** score / max(len, 1) */
const perToken = (score: Tensor, len: Tensor) => div(score, clamp(len, 1, Infinity));

/** −(1−ε)·logσ(βd) − ε·logσ(−βd) */
function smoothedSigmoid(d: Tensor, beta: number, eps: number): Tensor {
  const a = scale(logsigmoid(scale(d, beta)), -(1 - eps));
  return eps === 0 ? a : sub(a, scale(logsigmoid(scale(d, -beta)), eps));
}

/** Ascending sort along the batch (values; gradients follow the permutation like torch.sort; NaN last). */
function sortAsc(t: Tensor): Tensor {
  const key = (v: number) => (Number.isNaN(v) ? Infinity : v);
  const order = Array.from(t.data, (v, i) => [key(v), Number.isNaN(v) ? 1 : 0, i] as const);
  order.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  return indexSelect(t, 0, Int32Array.from(order, ([, , i]) => i));
}

/** TRL 1.13's loss types, each (inputs, settings) → per-pair losses (B). */
export const LOSSES = {
  /** −logσ(βδ)  (TRL 1.13's sigmoid ignores label_smoothing) */
  sigmoid: (x, s) => neg(logsigmoid(scale(delta(x), s.beta))),
  /** relu(1 − βδ) */
  hinge: (x, s) => relu(addScalar(neg(scale(delta(x), s.beta)), 1)),
  /** (score_c/len_c − score_r/len_r − 1/(2β))², lengths = unshifted completion_mask sums */
  ipo: (x, s) => square(addScalar(sub(perToken(x.chosenScores, x.chosenLengths), perToken(x.rejectedScores, x.rejectedLengths)), -1 / (2 * s.beta))),
  /** σ(z)(logσ(z) − log(1−ε)) + σ(−z)(logσ(−z) − log ε), z = βδ: KL(softmax over {c, r} ‖ [1−ε, ε]) */
  exo_pair: (x, s) => {
    const z = scale(delta(x), s.beta);
    // TRL builds ε with torch.tensor(), so ε, log(1−ε) and log ε are float32 even for float64 logps
    const eps = Math.fround(s.labelSmoothing);
    const pos = mul(sigmoid(z), addScalar(logsigmoid(z), -Math.fround(Math.log1p(-eps))));
    const negZ = neg(z);
    return add(pos, mul(sigmoid(negZ), addScalar(logsigmoid(negZ), -Math.fround(Math.log(eps)))));
  },
  /** −logσ(r_c) − ½logσ(−r_c) − ½logσ(−r_r), r = β·lr */
  nca_pair: (x, s) => {
    const { c, r } = logratios(x);
    const rc = scale(c, s.beta), rr = scale(r, s.beta);
    return sub(sub(neg(logsigmoid(rc)), scale(logsigmoid(neg(rc)), 0.5)), scale(logsigmoid(neg(rr)), 0.5));
  },
  /** (−(1−ε)·logσ(βδ) + ε·logσ(−βδ)) / (1 − 2ε) */
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
  /** smoothed sigmoid of sort(π_c − π_r) − sort(ref_c − ref_r), sorted over the micro-batch */
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
    if (!x.sftLoss) throw new DpoError('loss_type "sft" needs the SFT term (chosenTokenNll of the chosen completion tokens); pass sftLoss');
    return mul(x.sftLoss, Tensor.full([x.chosenLogps.size], 1, x.chosenLogps.dtype));
  },
  /** −logσ(β·(score_c/len_c − score_r/len_r)) */
  sigmoid_norm: (x, s) => neg(logsigmoid(scale(sub(perToken(x.chosenScores, x.chosenLengths), perToken(x.rejectedScores, x.rejectedLengths)), s.beta))),
} satisfies Record<string, LossFn>;

export type LossTypeName = keyof typeof LOSSES;
export const LOSS_TYPE_NAMES = Object.keys(LOSSES) as LossTypeName[];

export const F_DIVERGENCE_TYPES = ['reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence'] as const;
export type FDivergenceType = (typeof F_DIVERGENCE_TYPES)[number];
/** The loss types built on δ = score_c − score_r: the only ones TRL allows a non-reverse_kl f-divergence with. */
export const F_DIVERGENCE_LOSS_TYPES: readonly string[] = ['sigmoid', 'sigmoid_norm', 'hinge', 'ipo', 'exo_pair', 'robust', 'discopop', 'sft'];

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
  throw new DpoError(`unknown f_divergence_type "${type}"; choose from ${F_DIVERGENCE_TYPES.join(', ')}`);
}

/** Σ_k w_k · mean(loss_k) over the configured loss types (optionally WPO-weighted per pair). */
function weightedTerms(x: LossInputs, s: LossSettings, types: readonly string[], weights: readonly number[] | null, pairWeights: Tensor | null) {
  if (types.length === 0) throw new DpoError('loss_type is empty; give at least one loss type (e.g. sigmoid)');
  if (weights && weights.length !== types.length) throw new DpoError(`loss_weights has ${weights.length} values for ${types.length} loss types; give one weight per loss_type`);
  let loss: Tensor | null = null;
  const terms: LossTerm[] = [];
  types.forEach((t, i) => {
    const fn = Object.hasOwn(LOSSES, t) ? (LOSSES as Record<string, LossFn>)[t] : undefined;
    if (!fn) throw new DpoError(`unknown loss_type "${t}"; choose from ${LOSS_TYPE_NAMES.join(', ')}`);
    let perPair = fn(x, s);
    if (pairWeights) perPair = mul(perPair, pairWeights);
    const weight = weights ? weights[i] : 1;
    const term = scale(mean(perPair), weight);
    loss = loss ? add(loss, term) : term;
    terms.push({ type: t, weight, perPair });
  });
  return { loss: loss!, terms };
}

// ---------------------------------------------------------------------------------------------
// The configuration and the one-call entry point.

/** TRL's DPOConfig loss fields in camelCase; DPOConfig (config.ts) satisfies this structurally. */
export interface LossConfig {
  /** β: strength of the implicit KL penalty (τ for ipo). */
  beta: number;
  /** One or several of LOSS_TYPE_NAMES, combined with lossWeights. */
  lossType: readonly string[];
  /** One weight per loss type; null = 1 each. */
  lossWeights: readonly number[] | null;
  /** ε of robust, exo_pair, aot, aot_unpaired (sigmoid ignores it in TRL 1.13). */
  labelSmoothing: number;
  fDivergenceType: string;
  /** α of alpha_divergence. */
  fAlphaDivergenceCoef: number;
  /** LD-DPO α: weight of the tokens past a pair's shared length; null = off (changes logps, not the loss). */
  ldAlpha: number | null;
  /** WPO: weight each pair by exp(wpoMean_c)·exp(wpoMean_r). */
  useWeighting: boolean;
  /** τ of discopop. */
  discopopTau: number;
}

/** DPOConfig 1.13's defaults (checked against TRL in test/dpo/losses.test.ts). */
export const LOSS_CONFIG_DEFAULTS: Readonly<LossConfig> = Object.freeze({
  beta: 0.1,
  lossType: ['sigmoid'],
  lossWeights: null,
  labelSmoothing: 0,
  fDivergenceType: 'reverse_kl',
  fAlphaDivergenceCoef: 0.5,
  ldAlpha: null,
  useWeighting: false,
  discopopTau: 0.05,
});

/**
 * The defaults overridden by `opts`, validated.
 * @example lossConfig({ lossType: ['robust'], labelSmoothing: 0.1 })
 */
export function lossConfig(opts: Partial<LossConfig> = {}, where = 'loss config'): LossConfig {
  const cfg: LossConfig = { ...LOSS_CONFIG_DEFAULTS, ...opts, lossType: [...(opts.lossType ?? LOSS_CONFIG_DEFAULTS.lossType)] };
  validateLossConfig(cfg, where);
  return cfg;
}

/** The checks DPOConfig.__post_init__ and DPOTrainer.__init__ make on these fields (TRL 1.13). */
export function validateLossConfig(cfg: LossConfig, where = 'loss config'): void {
  const types = cfg.lossType;
  if (types.length === 0) throw new DpoError(`${where}: loss_type is empty; give at least one of ${LOSS_TYPE_NAMES.join(', ')}`);
  for (const t of types) if (!Object.hasOwn(LOSSES, t)) throw new DpoError(`${where}: unknown loss_type "${t}"; choose from ${LOSS_TYPE_NAMES.join(', ')}`);
  if (cfg.lossWeights && cfg.lossWeights.length !== types.length) {
    throw new DpoError(`${where}: loss_weights has ${cfg.lossWeights.length} values for ${types.length} loss types; give one weight per loss_type`);
  }
  if (!(F_DIVERGENCE_TYPES as readonly string[]).includes(cfg.fDivergenceType)) {
    throw new DpoError(`${where}: unknown f_divergence_type "${cfg.fDivergenceType}"; choose from ${F_DIVERGENCE_TYPES.join(', ')}`);
  }
  if (cfg.fDivergenceType !== 'reverse_kl' && !types.every((t) => F_DIVERGENCE_LOSS_TYPES.includes(t))) {
    throw new DpoError(`${where}: f_divergence_type=${cfg.fDivergenceType} only works with loss types ${F_DIVERGENCE_LOSS_TYPES.join(', ')}; use reverse_kl with ${types.join(', ')}`);
  }
  if (cfg.useWeighting && types.some((t) => t === 'aot' || t === 'aot_unpaired')) {
    throw new DpoError(`${where}: use_weighting is not supported with aot / aot_unpaired (they sort pairs, which would misalign the weights)`);
  }
  if (types.includes('exo_pair') && cfg.labelSmoothing === 0) {
    throw new DpoError(`${where}: exo_pair needs label_smoothing > 0 (the EXO paper recommends 1e-3)`);
  }
  if (cfg.ldAlpha !== null && !(cfg.ldAlpha >= 0 && cfg.ldAlpha <= 1)) {
    throw new DpoError(`${where}: ld_alpha must be in [0, 1] (or null to disable LD-DPO), got ${cfg.ldAlpha}`);
  }
}

/** What dpoLoss needs; the optional fields only for the loss types / options that read them. */
export interface PairLogps {
  /** (B) policy log-probs of the chosen / rejected completions (differentiable). */
  chosenLogps: Tensor;
  rejectedLogps: Tensor;
  /** (B) reference log-probs (no gradient). */
  refChosenLogps: Tensor | ArrayLike<number>;
  refRejectedLogps: Tensor | ArrayLike<number>;
  /** (B) completion_mask.sum(1) of the chosen / rejected rows, UNSHIFTED: ipo and sigmoid_norm. */
  chosenLengths?: ArrayLike<number>;
  rejectedLengths?: ArrayLike<number>;
  /** Scalar SFT term (chosenTokenNll): sft. */
  sftLoss?: Tensor | null;
  /** (2B) [chosen rows; rejected rows] WPO statistic (wpoMeanLogps): useWeighting. */
  wpoMeanLogps?: ArrayLike<number> | null;
}

export interface LossTerm {
  type: string;
  weight: number;
  /** (B) this type's per-pair losses after WPO weighting, before the mean and the weight. */
  perPair: Tensor;
}

export interface DpoLossResult {
  /** Scalar Σ_k weight_k · mean(perPair_k). */
  loss: Tensor;
  terms: LossTerm[];
  /** (B) f-divergence scores (= log-ratios for reverse_kl). */
  chosenScores: Tensor;
  rejectedScores: Tensor;
  /** (B) β·(logp − ref_logp), detached: the rewards/* metrics. */
  chosenRewards: Float64Array;
  rejectedRewards: Float64Array;
  /** (B) WPO pair weights, when useWeighting. */
  pairWeights: Float64Array | null;
}

/**
 * The DPO loss of one micro-batch, exactly as TRL 1.13's _compute_loss assembles it.
 * @example const { loss } = dpoLoss({ chosenLogps, rejectedLogps, refChosenLogps, refRejectedLogps }, lossConfig());
 */
export function dpoLoss(x: PairLogps, cfg: LossConfig): DpoLossResult {
  const B = x.chosenLogps.size;
  const dtype = x.chosenLogps.dtype;
  const asTensor = (v: Tensor | ArrayLike<number>, what: string) => {
    const n = v instanceof Tensor ? v.size : v.length;
    if (n !== B) throw new DpoError(`dpoLoss: ${what} has ${n} values for ${B} pairs`);
    return v instanceof Tensor ? v : Tensor.from(v, [B], dtype);
  };
  if (x.rejectedLogps.size !== B) throw new DpoError(`dpoLoss: ${x.rejectedLogps.size} rejected log-probs for ${B} chosen ones; the batch is [chosen; rejected] pairs`);
  const refChosenLogps = asTensor(x.refChosenLogps, 'refChosenLogps');
  const refRejectedLogps = asTensor(x.refRejectedLogps, 'refRejectedLogps');
  const types = cfg.lossType;
  const needsLengths = types.includes('ipo') || types.includes('sigmoid_norm');
  if (needsLengths && (!x.chosenLengths || !x.rejectedLengths)) throw new DpoError('dpoLoss: ipo / sigmoid_norm need chosenLengths and rejectedLengths (completion_mask.sum(1) per row)');
  if (types.includes('sft') && !x.sftLoss) throw new DpoError('dpoLoss: loss_type "sft" needs sftLoss (chosenTokenNll of the chosen completion tokens)');
  const ones = () => Tensor.full([B], 1, dtype);
  const chosenScores = fDivergenceScores(sub(x.chosenLogps, refChosenLogps), cfg.fDivergenceType, cfg.fAlphaDivergenceCoef);
  const rejectedScores = fDivergenceScores(sub(x.rejectedLogps, refRejectedLogps), cfg.fDivergenceType, cfg.fAlphaDivergenceCoef);
  const inputs: LossInputs = {
    chosenLogps: x.chosenLogps, rejectedLogps: x.rejectedLogps, refChosenLogps, refRejectedLogps, chosenScores, rejectedScores,
    chosenLengths: x.chosenLengths ? asTensor(x.chosenLengths, 'chosenLengths') : ones(),
    rejectedLengths: x.rejectedLengths ? asTensor(x.rejectedLengths, 'rejectedLengths') : ones(),
    sftLoss: x.sftLoss ?? null,
  };
  let pairWeights: Float64Array | null = null;
  if (cfg.useWeighting) {
    if (!x.wpoMeanLogps || x.wpoMeanLogps.length !== 2 * B) throw new DpoError(`dpoLoss: use_weighting needs wpoMeanLogps for all ${2 * B} rows ([chosen; rejected])`);
    pairWeights = wpoPairWeights(x.wpoMeanLogps);
  }
  const { loss, terms } = weightedTerms(inputs, cfg, types, cfg.lossWeights, pairWeights ? Tensor.from(pairWeights, [B], dtype) : null);
  const chosenRewards = new Float64Array(B);
  const rejectedRewards = new Float64Array(B);
  const rc = refChosenLogps.data, rr = refRejectedLogps.data;
  for (let i = 0; i < B; i++) {
    chosenRewards[i] = cfg.beta * (x.chosenLogps.data[i] - rc[i]);
    rejectedRewards[i] = cfg.beta * (x.rejectedLogps.data[i] - rr[i]);
  }
  return { loss, terms, chosenScores, rejectedScores, chosenRewards, rejectedRewards, pairWeights };
}

/** WPO pair weights (B): exp(m_c)·exp(m_r) from the (2B) [chosen; rejected] statistic; no gradient. */
export function wpoPairWeights(meanLogps: ArrayLike<number>): Float64Array {
  const B = meanLogps.length / 2;
  const w = new Float64Array(B);
  for (let i = 0; i < B; i++) w[i] = Math.exp(meanLogps[i]) * Math.exp(meanLogps[i + B]);
  return w;
}

/**
 * The SFT term: F.cross_entropy over the chosen rows' scored completion tokens = −Σ mask·logp / Σ mask.
 * tokenLogps (N) any layout (dense (2B, T−1) or compacted), chosenMask (N) 1 on chosen completion tokens.
 */
export function chosenTokenNll(tokenLogps: Tensor, chosenMask: ArrayLike<number>): Tensor {
  const N = tokenLogps.size;
  let n = 0;
  for (let i = 0; i < N; i++) if (chosenMask[i]) n++;
  const w = new Float64Array(N);
  // no chosen token: NaN, as torch's cross_entropy over an empty selection
  for (let i = 0; i < N; i++) if (chosenMask[i]) w[i] = n > 0 ? -1 / n : NaN;
  return sum(mul(tokenLogps, Tensor.from(w, [N], tokenLogps.dtype)));
}
