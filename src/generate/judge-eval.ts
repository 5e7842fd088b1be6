/**
 * Held-out evaluation with a judge: sample completions y ~ π from the policy and from its base
 * (reference), score them, and estimate the sequence-level KL(π‖π_ref) on the policy's samples as
 * mean over samples of log π(y|x) − log π_ref(y|x) (the EOS a sample ended with included). The
 * estimate is unbiased only when y is drawn from π itself: temperature 1, no top-k / top-p (the
 * defaults here).
 */
import { DpoError } from '../errors.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { HfTokenizer } from '../tokenizer/tokenizer.js';
import type { Row } from '../data/load.js';
import { generateBatch } from './generate.js';
import { guardedCall, normaliseJudge, type Judge, type JudgePrompt, type NormalJudge } from './judge.js';
import { checkPrompts, promptIds, sampleSeed } from './pairs.js';
import { completionLogps } from './completion-logps.js';

export interface JudgeEvalOptions {
  model: CausalLM;
  /** The base / reference model π_ref (the KL is measured against it; its samples are the win-rate's opponent). */
  refModel: CausalLM;
  tokenizer: HfTokenizer;
  /** Held-out rows with a `prompt` column (strings or message lists). */
  prompts: readonly Row[];
  judge: Judge | NormalJudge;
  /** Samples per prompt (default 4). */
  numSamples?: number;
  maxNewTokens?: number;
  /** Default 1 (y ~ π exactly); other values or top-k / top-p make the KL an estimate of another distribution's. */
  temperature?: number;
  /** Default 0 (no top-k filter). */
  topK?: number;
  topP?: number;
  seed?: number;
  judgeTimeout?: number;
  /** The reference's samples and scores from an earlier call with the same prompts and settings (reused, not resampled). */
  refSamples?: SampledSet | null;
}

/** Completions of every prompt (sample k of prompt i at i·n + k) with their judge scores. */
export interface SampledSet {
  promptIds: number[][];
  /** Generated token ids, EOS included when the sample ended with it. */
  tokens: number[][];
  texts: string[];
  /** Reward judges: the score of each sample, NaN where the judge failed; pairwise judges: all NaN. */
  scores: number[];
}

export interface JudgeEvalResult {
  prompts: number;
  samples: number;
  /** Mean judge score of the policy's samples (NaN for a pairwise judge). */
  score: number;
  /** Mean judge score of the reference's samples. */
  refScore: number;
  /** Fraction of (prompt, sample k) where the policy's sample beats the reference's (ties ½). */
  winRate: number;
  /** mean log π(y|x) − log π_ref(y|x) over the policy's samples. */
  kl: number;
  /** Its standard error (std of the per-sample differences / √n). */
  klStderr: number;
  /** Judge calls that failed (skipped in the means). */
  failures: number;
  policySamples: SampledSet;
  refSamples: SampledSet;
}

async function sampleAndScore(model: CausalLM, o: JudgeEvalOptions, judge: NormalJudge): Promise<SampledSet> {
  const tok = o.tokenizer;
  const n = o.numSamples ?? 4;
  const eos = tok.eosTokenId;
  const cfg = { maxNewTokens: o.maxNewTokens ?? 64, temperature: o.temperature ?? 1, topK: o.topK ?? 0, topP: o.topP ?? 1, eosTokenIds: eos === null ? [] : [eos] };
  const set: SampledSet = { promptIds: [], tokens: [], texts: [], scores: [] };
  for (let i = 0; i < o.prompts.length; i++) {
    const ids = promptIds(tok, o.prompts[i]);
    const outs = generateBatch(model, ids, Array.from({ length: n }, (_, k) => sampleSeed(o.seed ?? 0, i, k)), cfg);
    for (const y of outs) {
      set.promptIds.push(ids);
      set.tokens.push(y);
      set.texts.push(tok.decode(eos !== null && y[y.length - 1] === eos ? y.slice(0, -1) : y, { skipSpecialTokens: true }));
    }
  }
  const timeout = o.judgeTimeout ?? 30;
  set.scores = judge.kind === 'reward'
    ? await Promise.all(set.texts.map(async (t, j) => {
      const r = await guardedCall(() => judge.score(o.prompts[Math.floor(j / n)].prompt as JudgePrompt, t), timeout);
      return r.ok ? r.value : NaN;
    }))
    : set.texts.map(() => NaN);
  return set;
}

const meanOf = (v: readonly number[]) => {
  const f = v.filter(Number.isFinite);
  return f.length ? f.reduce((a, b) => a + b, 0) / f.length : NaN;
};

/**
 * Mean judge score, win-rate against the reference and KL(π‖π_ref) on held-out prompts.
 *
 * @example
 * const r = await judgeEval({ model: trained, refModel: base, tokenizer, prompts: heldOut, judge: (p, c) => (c.trim() === '4' ? 1 : 0) });
 * console.log(r.score, r.refScore, r.winRate, r.kl);
 */
export async function judgeEval(o: JudgeEvalOptions): Promise<JudgeEvalResult> {
  const judge: NormalJudge = typeof o.judge === 'object' && o.judge !== null && 'kind' in o.judge ? (o.judge as NormalJudge) : normaliseJudge(o.judge);
  const n = o.numSamples ?? 4;
  if (!Number.isInteger(n) || n < 1) throw new DpoError(`num_samples must be a positive integer, got ${n}`);
  checkPrompts(o.prompts);
  const pad = o.tokenizer.padTokenId ?? o.tokenizer.eosTokenId ?? 0;
  const pol = await sampleAndScore(o.model, o, judge);
  const ref = o.refSamples ?? await sampleAndScore(o.refModel, o, judge);
  if (ref.texts.length !== pol.texts.length) throw new DpoError(`judgeEval: refSamples hold ${ref.texts.length} samples, expected ${pol.texts.length} (other prompts or num_samples)`);
  // KL on the policy's own samples.
  const lp = completionLogps(o.model, pol.promptIds, pol.tokens, pad);
  const lr = completionLogps(o.refModel, pol.promptIds, pol.tokens, pad);
  const d = Array.from(lp, (v, j) => v - lr[j]);
  const kl = d.reduce((a, b) => a + b, 0) / d.length;
  const varD = d.reduce((a, b) => a + (b - kl) ** 2, 0) / Math.max(1, d.length - 1);
  // Win-rate: sample k of the policy against sample k of the reference, prompt by prompt.
  let wins = 0, games = 0, failures = pol.scores.filter((s) => judge.kind === 'reward' && !Number.isFinite(s)).length;
  for (let j = 0; j < pol.texts.length; j++) {
    let w: number;
    if (judge.kind === 'reward') {
      if (!Number.isFinite(pol.scores[j]) || !Number.isFinite(ref.scores[j])) continue;
      w = pol.scores[j] > ref.scores[j] ? 1 : pol.scores[j] < ref.scores[j] ? 0 : 0.5;
    } else {
      const r = await guardedCall(() => judge.compare(o.prompts[Math.floor(j / n)].prompt as JudgePrompt, pol.texts[j], ref.texts[j]), o.judgeTimeout ?? 30);
      if (!r.ok || ![0, 1, -1, 0.5].includes(r.value)) { failures++; continue; }
      w = r.value === 0 ? 1 : r.value === 1 ? 0 : 0.5;
    }
    wins += w;
    games++;
  }
  return {
    prompts: o.prompts.length, samples: pol.texts.length, score: meanOf(pol.scores), refScore: meanOf(ref.scores),
    winRate: games ? wins / games : NaN, kl, klStderr: Math.sqrt(varD / d.length), failures, policySamples: pol, refSamples: ref,
  };
}
