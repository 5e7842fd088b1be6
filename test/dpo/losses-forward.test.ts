/**
 * From logits to loss, gradients and metrics vs TRL 1.13's _compute_loss on a stub model
 * (tools/fixtures/make_losses.py, forward.json): LD-DPO, WPO, sft, ipo / sigmoid_norm lengths with an
 * empty prompt, aot, an f-divergence. Two paths:
 *  - the contract in float64: dense per-token log-probs (log_softmax + gather) → loss-inputs.ts
 *    helpers → dpoLoss, against TRL's per-token / per-sequence values, loss and d loss / d logits;
 *  - the trainer's own path in float32: logps.ts (fused token log-probs through an identity lm_head)
 *    → loss-step.ts → metrics.ts, against TRL's loss, gradient and every logged metric.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tensor } from '../../src/tensor/tensor.js';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { indexSelect, logSoftmax, mul, reshape, slice, sum } from '../../src/ops/index.js';
import { chosenTokenNll, dpoLoss } from '../../src/dpo/losses.js';
import { cfgOf } from '../helpers/loss-config.js';
import { ldAlphaTokenWeights, rowCounts, shiftMask, wpoMeanLogps } from '../../src/dpo/loss-inputs.js';
import { sequenceLogps, type PairBatch } from '../../src/dpo/logps.js';
import { computeLoss } from '../../src/dpo/loss-step.js';
import { MetricLog, recordBatchMetrics } from '../../src/dpo/metrics.js';
import { DPOConfig } from '../../src/dpo/config.js';
import type { CausalLM } from '../../src/models/causal-lm.js';

interface FwdCase {
  name: string;
  args: Record<string, unknown>;
  loss: number;
  per_token_logps: number[];
  logps: number[];
  ref_logps: number[];
  chosen_scores: number[];
  rejected_scores: number[];
  per_type: Record<string, number[]>;
  grad_logps: number[];
  grad_logits: number[];
  metrics: Record<string, number>;
  wpo_mean_logps?: number[];
}
const fx = JSON.parse(readFileSync('test/fixtures/losses/forward.json', 'utf8')) as {
  B: number; T: number; V: number; input_ids: number[]; attention_mask: number[]; completion_mask: number[];
  policy_logits: number[]; ref_logits: number[]; cases: FwdCase[];
};
const { B, T, V } = fx;
const R = 2 * B;
const ids = Int32Array.from(fx.input_ids);
const cm = Uint8Array.from(fx.completion_mask);
const shifted = shiftMask(cm, R, T); // (2B, T−1)


/** Worst |got − want| / max(floor, |want|) ≤ tol; gradients use floor = max |want| (their scale). */
function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string, floor = 1): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0, at = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]) / Math.max(floor, Math.abs(want[i]));
    if (!(err <= worst)) [worst, at] = [err, i];
  }
  assert.ok(worst <= tol, `${what}[${at}]: ${got[at]} vs TRL ${want[at]} (rel err ${worst.toExponential(2)})`);
}

const maxAbs = (a: readonly number[]) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** (2B·(T−1)) log p(ids[r, t+1]) at every position: log_softmax + gather, as selective_log_softmax. */
function denseTokenLogps(logits: Tensor): Tensor {
  const idx = new Int32Array(R * (T - 1));
  for (let r = 0; r < R; r++) for (let t = 0; t + 1 < T; t++) idx[r * (T - 1) + t] = (r * T + t) * V + ids[r * T + t + 1];
  return indexSelect(reshape(logSoftmax(reshape(logits, [R * T, V])), [R * T * V]), 0, idx);
}

/** Per row Σ_t w_t·logp_t over the shifted completion mask (LD-DPO weights when ldAlpha is set). */
function rowSums(tok: Tensor, ldAlpha: number | null): Tensor {
  const w = Tensor.from(ldAlphaTokenWeights(shifted, R, T - 1, ldAlpha), [R * (T - 1)], tok.dtype);
  return sum(reshape(mul(tok, w), [R, T - 1]), 1);
}

/** logsumexp over the vocabulary of s·logits at every scored position (rows, T−1). */
function lse(logits: ArrayLike<number>, s: number): Float64Array {
  const out = new Float64Array(R * (T - 1));
  for (let r = 0; r < R; r++) {
    for (let t = 0; t + 1 < T; t++) {
      const o = (r * T + t) * V;
      let m = -Infinity, acc = 0;
      for (let v = 0; v < V; v++) m = Math.max(m, s * logits[o + v]);
      for (let v = 0; v < V; v++) acc += Math.exp(s * logits[o + v] - m);
      out[r * (T - 1) + t] = m + Math.log(acc);
    }
  }
  return out;
}

for (const c of fx.cases) {
  test(`contract in float64: ${c.name}`, () => {
    const cfg = cfgOf(c.args);
    const logits = Tensor.from(fx.policy_logits, [R, T, V], 'float64').param();
    const tok = denseTokenLogps(logits);
    const logps = rowSums(tok, cfg.ldAlpha);
    const refLogps = noGrad(() => rowSums(denseTokenLogps(Tensor.from(fx.ref_logits, [R, T, V], 'float64')), cfg.ldAlpha));
    close(tok.data.map((v, i) => (shifted[i] ? v : 0)), c.per_token_logps, 1e-12, 'per-token logps');
    close(logps.data, c.logps, 1e-12, 'logps');
    close(refLogps.data, c.ref_logps, 1e-12, 'ref logps');
    const lengths = rowCounts(cm, R, T); // unshifted, as ipo / sigmoid_norm divide by
    const wpo = cfg.useWeighting ? wpoMeanLogps(tok.data, lse(fx.policy_logits, 1), lse(fx.policy_logits, 2), shifted, R, T - 1) : null;
    if (c.wpo_mean_logps) close(wpo!, c.wpo_mean_logps, 1e-12, 'WPO statistic');
    const out = dpoLoss({
      chosenLogps: slice(logps, 0, 0, B), rejectedLogps: slice(logps, 0, B, R),
      refChosenLogps: refLogps.data.subarray(0, B), refRejectedLogps: refLogps.data.subarray(B),
      chosenLengths: lengths.subarray(0, B), rejectedLengths: lengths.subarray(B),
      sftLoss: cfg.lossType.includes('sft') ? chosenTokenNll(tok, shifted.map((m, i) => (m && i < B * (T - 1) ? 1 : 0))) : null,
      wpoMeanLogps: wpo,
    }, cfg);
    close(out.chosenScores.data, c.chosen_scores, 1e-12, 'chosen scores');
    close(out.rejectedScores.data, c.rejected_scores, 1e-12, 'rejected scores');
    for (const t of out.terms) close(t.perPair.data, c.per_type[t.type], 1e-12, `${t.type} per pair`);
    close([out.loss.item()], [c.loss], 1e-12, 'loss');
    backward(out.loss);
    close(logits.grad!.data, c.grad_logits, 1e-12, 'd loss / d logits', maxAbs(c.grad_logits));
  });

  test(`trainer path in float32 (logps.ts → loss-step.ts → metrics.ts): ${c.name}`, () => {
    const a = new DPOConfig(c.args);
    const eye = Tensor.zeros([V, V]);
    for (let v = 0; v < V; v++) eye.data[v * V + v] = 1;
    const fake = (h: Tensor) => ({ arch: { vocabSize: V }, hidden: () => h, lmHeadWeight: () => eye }) as unknown as CausalLM;
    const leaf = Tensor.from(fx.policy_logits, [R * T, V]).param(); // logits = h·Iᵀ
    const batch: PairBatch = { inputIds: ids, attentionMask: Uint8Array.from(fx.attention_mask), completionMask: cm, rows: R, T };
    const pol = sequenceLogps(fake(leaf), batch, { ldAlpha: a.ldAlpha, stats: true, wpo: a.useWeighting });
    const ref = noGrad(() => sequenceLogps(fake(Tensor.from(fx.ref_logits, [R * T, V])), batch, { ldAlpha: a.ldAlpha }));
    const refLogps = Float64Array.from(ref.logps.data);
    close(pol.logps.data, c.logps, 2e-6, 'logps');
    close(refLogps, c.ref_logps, 2e-6, 'ref logps');
    if (c.wpo_mean_logps) close(pol.wpoMeanLogps!, c.wpo_mean_logps, 2e-6, 'WPO statistic');
    const loss = computeLoss(pol, refLogps, batch, a);
    close([loss.item()], [c.loss], 2e-6, 'loss');
    backward(loss);
    close(leaf.grad!.data, c.grad_logits, 2e-6, 'd loss / d logits', maxAbs(c.grad_logits));
    const log = new MetricLog();
    recordBatchMetrics(log, {
      stats: pol.stats!, numTokens: fx.attention_mask.reduce((s, v) => s + v, 0), beta: a.beta,
      chosenLogps: pol.logps.data.subarray(0, B), rejectedLogps: pol.logps.data.subarray(B),
      refChosenLogps: refLogps.subarray(0, B), refRejectedLogps: refLogps.subarray(B),
    });
    const ours = log.drain();
    assert.deepEqual(Object.keys(ours).sort(), Object.keys(c.metrics).sort());
    for (const [k, v] of Object.entries(c.metrics)) close([ours[k]], [v], 2e-6, `metric ${k}`);
  });
}
