/**
 * `dpo eval --judge J --prompts heldout.jsonl`: the trained model against its base on held-out
 * prompts: mean judge score of each, the trained model's win-rate, and KL(π‖π_base) estimated on
 * the trained model's samples (judge-eval.ts).
 */
import { DpoError } from '../errors.js';
import { loadRows } from '../data/load.js';
import { loadJudge } from '../generate/judge.js';
import { judgeEval } from '../generate/judge-eval.js';
import { loadCausalLM } from '../models/load.js';
import { loadPolicy } from './load-policy.js';
import { helpText, resolveOptions, spec, type Spec } from './args.js';

export const EVAL_JUDGE_SPECS: Spec[] = [
  spec('model_name_or_path', 'string?', null, 'the trained model: model directory, HF model id, or adapter directory'),
  spec('adapter_name_or_path', 'string?', null, 'a PEFT adapter on the model'),
  spec('base', 'string?', null, "the base to compare with and measure KL against (default: an adapter's base model)"),
  spec('judge', 'string?', null, 'judge module (.mjs/.js): export default (prompt, completion) => score, or { compare(prompt, a, b) }'),
  spec('prompts', 'string?', null, 'held-out prompts: .jsonl/.json/.parquet file or dataset directory with a `prompt` column'),
  spec('dataset_test_split', 'string', 'test', 'split of a prompts dataset directory (a plain file is used whole)'),
  spec('num_samples', 'int', 4, 'completions sampled per prompt from each model'),
  spec('max_new_tokens', 'int', 64, 'tokens to generate at most per completion'),
  spec('temperature', 'float', 1, 'sampling temperature (1 with no top-k / top-p: y ~ π, the KL estimate is unbiased)'),
  spec('top_k', 'int', 0, 'sample among the k most likely tokens (0 = all)'),
  spec('top_p', 'float', 1, 'nucleus sampling threshold'),
  spec('seed', 'int', 0, 'sampling seed'),
  spec('judge_timeout', 'float', 30, 'seconds one judge call may take (0 = no limit)'),
  spec('debug', 'bool', false, 'print stack traces on errors'),
];

export const wantsJudgeEval = (argv: readonly string[]): boolean => argv.some((a) => /^--(judge|prompts)(=|$)/.test(a));

export async function judgeEvalCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('eval --judge J --prompts P', 'judge score, win-rate and KL of a trained model against its base on held-out prompts', EVAL_JUDGE_SPECS));
    return;
  }
  const o = resolveOptions(argv, EVAL_JUDGE_SPECS, 'eval');
  for (const k of ['model_name_or_path', 'judge', 'prompts'] as const) if (!o[k]) throw new DpoError(`dpo eval: --${k} is required with --judge / --prompts (see dpo eval --judge x --help)`);
  if (!((o.temperature as number) > 0)) throw new DpoError('dpo eval: --temperature must be > 0 (the KL is estimated on sampled completions)');
  const judge = await loadJudge(o.judge as string);
  const path = o.prompts as string;
  const prompts = await loadRows(path, o.dataset_test_split as string).catch((e: unknown) => loadRows(path, 'train').catch(() => { throw e; }));
  const p = loadPolicy(o.model_name_or_path as string, (o.adapter_name_or_path as string | null) ?? null);
  const basePath = (o.base as string | null) ?? (p.adapter ? p.base : null);
  if (!basePath) throw new DpoError('dpo eval: --base <model> is required for a full model (the base to compare with); an adapter\'s base is found by itself');
  const base = loadCausalLM(basePath).model;
  if (base.arch.vocabSize !== p.model.arch.vocabSize) throw new DpoError(`dpo eval: --base ${basePath} has vocab_size ${base.arch.vocabSize}, the model ${p.model.arch.vocabSize}; compare a model with its own base`);
  const r = await judgeEval({
    model: p.model, refModel: base, tokenizer: p.tokenizer, prompts, judge, numSamples: o.num_samples as number, maxNewTokens: o.max_new_tokens as number,
    temperature: o.temperature as number, topK: o.top_k as number, topP: o.top_p as number, seed: o.seed as number, judgeTimeout: o.judge_timeout as number,
  });
  const filtered = o.temperature !== 1 || (o.top_k as number) > 0 || (o.top_p as number) < 1;
  console.log(`${r.prompts} held-out prompts × ${o.num_samples} samples; model ${p.adapter ? `${p.base} + ${p.adapter}` : o.model_name_or_path}, base ${basePath}`);
  const row = (k: string, v: string) => console.log(`${k.padEnd(24)} ${v}`);
  row('score', Number.isFinite(r.score) ? r.score.toFixed(6) : '- (pairwise judge)');
  row('base_score', Number.isFinite(r.refScore) ? r.refScore.toFixed(6) : '- (pairwise judge)');
  row('win_rate', Number.isFinite(r.winRate) ? r.winRate.toFixed(6) : '-');
  row('kl', `${r.kl.toFixed(6)} ± ${r.klStderr.toFixed(6)} nats per sequence${filtered ? ' (samples not from π itself: temperature ≠ 1 or top-k/top-p)' : ''}`);
  if (r.failures) row('judge_failures', String(r.failures));
}
