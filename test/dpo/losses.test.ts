/**
 * The loss table vs TRL 1.13's own _compute_loss on hand-made per-sequence log-probs
 * (tools/fixtures/make_losses.py, sequence.json): every loss_type and option combination, value,
 * per-pair losses, scores, rewards and d loss / d logps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tensor } from '../../src/tensor/tensor.js';
import { backward } from '../../src/autograd/tape.js';
import { DpoError } from '../../src/errors.js';
import { LOSSES, LOSS_CONFIG_DEFAULTS, LOSS_TYPE_NAMES, dpoLoss, lossConfig, validateLossConfig, type LossConfig } from '../../src/dpo/losses.js';
import { camel, cfgOf } from '../helpers/loss-config.js';
import { DPOConfig } from '../../src/dpo/config.js';

interface SeqCase {
  args: Record<string, unknown>;
  regime: string;
  dtype: 'float32' | 'float64';
  loss: number;
  grad_chosen: number[];
  grad_rejected: number[];
  per_type: Record<string, number[]>;
  chosen_scores: number[];
  rejected_scores: number[];
  metrics: Record<string, number>;
  wpo_mean_logps?: number[];
  wpo_weights?: number[];
}
interface Regime { chosen: number[]; rejected: number[]; ref_chosen: number[]; ref_rejected: number[] }

const fx = JSON.parse(readFileSync('test/fixtures/losses/sequence.json', 'utf8')) as {
  B: number; chosen_lengths: number[]; rejected_lengths: number[]; sft_loss: number;
  regimes: Record<string, Regime>; cases: SeqCase[]; dpo_config_defaults: Record<string, unknown>;
  trl_failures: { args: Record<string, unknown>; error: string }[];
};

const label = (c: SeqCase) => `${JSON.stringify(c.args)} @ ${c.regime}`;

/**
 * |got − want| ≤ tol·max(floor, |want|); gradients pass floor = max |want| (their scale).
 * A null in the fixture is TRL's NaN (JSON has none).
 */
function close(got: ArrayLike<number>, want: ArrayLike<number | null>, tol: number, what: string, floor = 1): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const w = want[i];
    if (w === null) {
      assert.ok(Number.isNaN(got[i]), `${what}[${i}]: ${got[i]} vs TRL NaN`);
      continue;
    }
    const err = Math.abs(got[i] - w);
    assert.ok(err <= tol * Math.max(floor, Math.abs(w)), `${what}[${i}]: ${got[i]} vs TRL ${w} (err ${err.toExponential(2)})`);
  }
}

function run(c: SeqCase) {
  const r = fx.regimes[c.regime];
  const chosen = Tensor.from(r.chosen, [fx.B], c.dtype).param();
  const rejected = Tensor.from(r.rejected, [fx.B], c.dtype).param();
  const out = dpoLoss({
    chosenLogps: chosen, rejectedLogps: rejected, refChosenLogps: r.ref_chosen, refRejectedLogps: r.ref_rejected,
    chosenLengths: fx.chosen_lengths, rejectedLengths: fx.rejected_lengths,
    sftLoss: Tensor.scalar(fx.sft_loss, c.dtype), wpoMeanLogps: c.wpo_mean_logps ?? null,
  }, cfgOf(c.args));
  if (out.loss.requiresGrad) backward(out.loss);
  return { out, chosen, rejected };
}

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;

test('sigmoid loss is ln 2 when the policy equals the reference, for any β', () => {
  const r = fx.regimes.equal;
  for (const beta of [0.01, 0.1, 1, 10]) {
    const { loss } = dpoLoss({ chosenLogps: Tensor.from(r.chosen, [4], 'float64').param(), rejectedLogps: Tensor.from(r.rejected, [4], 'float64').param(), refChosenLogps: r.ref_chosen, refRejectedLogps: r.ref_rejected }, lossConfig({ beta }));
    assert.equal(loss.item(), Math.LN2);
  }
});

test('the fixture covers every loss type, alone and weighted, in every regime', () => {
  const seen = new Set(fx.cases.flatMap((c) => c.args.loss_type as string[]));
  assert.deepEqual([...seen].sort(), [...LOSS_TYPE_NAMES].sort());
  assert.deepEqual(new Set(fx.cases.map((c) => c.regime)), new Set(['equal', 'typical', 'wide']));
});

test('every case: loss, per-pair losses, scores, rewards and gradients match TRL', () => {
  for (const c of fx.cases) {
    const tol = c.dtype === 'float64' ? 1e-10 : 2e-6;
    const { out, chosen, rejected } = run(c);
    const name = label(c);
    close([out.loss.item()], [c.loss], tol, `${name} loss`);
    assert.deepEqual(out.terms.map((t) => t.type), Object.keys(c.per_type), name);
    for (const t of out.terms) close(t.perPair.data, c.per_type[t.type], tol, `${name} ${t.type} per pair`);
    close(out.chosenScores.data, c.chosen_scores, tol, `${name} chosen scores`);
    close(out.rejectedScores.data, c.rejected_scores, tol, `${name} rejected scores`);
    // TRL's `weights` are per row, exp(mean aligned logp); a pair's weight is chosen·rejected
    if (c.wpo_weights) close(out.pairWeights!, c.wpo_weights.slice(0, fx.B).map((w, i) => w * c.wpo_weights![i + fx.B]), tol, `${name} WPO weights`);
    const zeros = new Array(fx.B).fill(0);
    const gscale = Math.max(1e-300, ...[...c.grad_chosen, ...c.grad_rejected].map((v) => Math.abs(v ?? 0)));
    close(chosen.grad?.data ?? zeros, c.grad_chosen, tol, `${name} d/d chosen logps`, gscale);
    close(rejected.grad?.data ?? zeros, c.grad_rejected, tol, `${name} d/d rejected logps`, gscale);
    const m = c.metrics;
    close([mean(out.chosenRewards), mean(out.rejectedRewards)], [m['rewards/chosen'], m['rewards/rejected']], tol, `${name} rewards`);
    close([mean(out.chosenRewards.map((v, i) => v - out.rejectedRewards[i]))], [m['rewards/margins']], tol, `${name} margins`);
    close([mean(out.chosenRewards.map((v, i) => (v > out.rejectedRewards[i] ? 1 : 0)))], [m['rewards/accuracies']], 0, `${name} accuracies`);
    close([mean(chosen.data), mean(rejected.data)], [m['logps/chosen'], m['logps/rejected']], tol, `${name} logps`);
  }
});

test('the table functions alone give TRL per-pair losses (reverse_kl, no weighting)', () => {
  for (const c of fx.cases) {
    const a = c.args;
    if (a.f_divergence_type || a.use_weighting || (a.loss_type as string[]).length > 1 || c.dtype !== 'float64') continue;
    const r = fx.regimes[c.regime];
    const t = (v: number[]) => Tensor.from(v, [fx.B], 'float64');
    const [chosenLogps, rejectedLogps, refChosenLogps, refRejectedLogps] = [t(r.chosen), t(r.rejected), t(r.ref_chosen), t(r.ref_rejected)];
    const x = {
      chosenLogps, rejectedLogps, refChosenLogps, refRejectedLogps,
      chosenScores: t(r.chosen.map((v, i) => v - r.ref_chosen[i])), rejectedScores: t(r.rejected.map((v, i) => v - r.ref_rejected[i])),
      chosenLengths: t(fx.chosen_lengths), rejectedLengths: t(fx.rejected_lengths), sftLoss: Tensor.scalar(fx.sft_loss, 'float64'),
    };
    const cfg = cfgOf(a);
    const type = cfg.lossType[0] as keyof typeof LOSSES;
    close(LOSSES[type](x, cfg).data, c.per_type[type], 1e-10, `${label(c)} table`);
  }
});

test('defaults are DPOConfig 1.13 defaults', () => {
  const d = fx.dpo_config_defaults;
  assert.deepEqual(
    { ...LOSS_CONFIG_DEFAULTS },
    Object.fromEntries(Object.entries(d).map(([k, v]) => [camel(k), v])),
  );
});

test('DPOConfig is a LossConfig: the trainer can hand its config to dpoLoss as is', () => {
  const a: LossConfig = new DPOConfig({ loss_type: ['sigmoid', 'sft'], loss_weights: [1, 0.5], beta: 0.2 });
  validateLossConfig(a);
  assert.deepEqual([a.lossType, a.lossWeights, a.beta], [['sigmoid', 'sft'], [1, 0.5], 0.2]);
});

test('combinations TRL 1.13 crashes on (use_weighting with sft / hinge) still compute here', () => {
  assert.deepEqual(fx.trl_failures.map((f) => (f.args.loss_type as string[])[0]).sort(), ['hinge', 'sft']);
  const r = fx.regimes.typical;
  for (const type of ['hinge', 'sft']) {
    const chosen = Tensor.from(r.chosen, [4], 'float64').param();
    const { loss } = dpoLoss({
      chosenLogps: chosen, rejectedLogps: Tensor.from(r.rejected, [4], 'float64').param(), refChosenLogps: r.ref_chosen, refRejectedLogps: r.ref_rejected,
      sftLoss: Tensor.scalar(fx.sft_loss, 'float64'), wpoMeanLogps: [-1, -2, -0.5, -1, -1.5, -2, -1, -0.7],
    }, lossConfig({ lossType: [type], useWeighting: true }));
    assert.ok(Number.isFinite(loss.item()), type);
  }
});

test('configuration errors are one-line DpoErrors, as TRL rejects them', () => {
  const bad: [Partial<LossConfig>, RegExp][] = [
    [{ lossType: ['exo_pair'] }, /exo_pair needs label_smoothing > 0/],
    [{ lossType: ['bco_pair'], fDivergenceType: 'forward_kl' }, /only works with loss types/],
    [{ lossType: ['aot'], useWeighting: true }, /use_weighting is not supported with aot/],
    [{ lossType: ['sigmoid', 'ipo'], lossWeights: [1] }, /loss_weights has 1 values for 2 loss types/],
    [{ lossType: ['dpo'] }, /unknown loss_type "dpo"/],
    [{ lossType: ['toString'] }, /unknown loss_type "toString"/],
    [{ lossType: [] }, /loss_type is empty/],
    [{ fDivergenceType: 'kl' }, /unknown f_divergence_type "kl"/],
    [{ ldAlpha: 1.5 }, /ld_alpha must be in \[0, 1\]/],
  ];
  for (const [opts, re] of bad) {
    assert.throws(() => lossConfig(opts), (e: unknown) => e instanceof DpoError && re.test(e.message) && !e.message.includes('\n'), JSON.stringify(opts));
  }
});

test('missing inputs name what to pass', () => {
  const t = (v: number[]) => Tensor.from(v, [2], 'float64');
  const base = { chosenLogps: t([-1, -2]), rejectedLogps: t([-3, -4]), refChosenLogps: [-1, -2], refRejectedLogps: [-3, -4] };
  assert.throws(() => dpoLoss(base, lossConfig({ lossType: ['ipo'] })), /chosenLengths/);
  assert.throws(() => dpoLoss(base, lossConfig({ lossType: ['sft'] })), /sftLoss/);
  assert.throws(() => dpoLoss(base, lossConfig({ useWeighting: true })), /wpoMeanLogps/);
  assert.throws(() => dpoLoss({ ...base, refChosenLogps: [1, 2, 3] }, lossConfig()), /refChosenLogps has 3 values for 2 pairs/);
});
