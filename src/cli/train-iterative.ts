/**
 * `dpo train --judge J --prompts P --iterations K`: iterative (online) DPO from the command line.
 * Each round samples pairs from the current policy with the judge, trains on them (every training
 * flag of dpo train applies per round) and evaluates on --eval_prompts. Several --beta values run
 * one iterative training each (output_dir/beta-<β>/) and the report draws one reward–KL curve per β.
 */
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { DPOConfig } from '../dpo/config.js';
import { TRAINING_OPTIONS } from '../dpo/options.js';
import { loadRows } from '../data/load.js';
import { loadJudge } from '../generate/judge.js';
import { summarisePairs } from '../generate/pairs.js';
import { iterativeDPO, iterativeHistory, REF_UPDATES, type RefUpdate, type RoundRecord } from '../dpo/iterative.js';
import { writeRoundsReport } from '../report/rounds-report.js';
import { loadPolicy } from './load-policy.js';
import { runTraining } from './run-training.js';
import { helpText, resolveOptions, spec, type Spec } from './args.js';

export const ITERATIVE_SPECS: Spec[] = [
  spec('model_name_or_path', 'string?', null, 'the starting policy: model directory or HF model id in your cache'),
  spec('prompts', 'string?', null, 'training prompts: .jsonl/.json/.parquet file or dataset directory with a `prompt` column'),
  spec('dataset_train_split', 'string', 'train', 'split of a prompts dataset directory'),
  spec('dataset_name', 'string?', null, 'not with --judge: iterative DPO makes its pairs from --prompts'),
  spec('eval_prompts', 'string?', null, 'held-out prompts, evaluated after every round (score, win-rate, KL to the starting model)'),
  spec('judge', 'string?', null, 'judge module (.mjs/.js): export default (prompt, completion) => score, or { compare(prompt, a, b) }'),
  spec('iterations', 'int', 1, 'rounds of sample → judge → train → evaluate'),
  spec('ref_update', 'string', 'round', 'reference of each round: the previous round\'s model (round) or the starting model (initial)', REF_UPDATES),
  spec('num_generations', 'int', 4, 'completions sampled per training prompt each round'),
  spec('max_new_tokens', 'int', 64, 'tokens to generate at most per completion'),
  spec('temperature', 'float', 1, 'sampling temperature of the training pairs (> 0)'),
  spec('top_k', 'int', 50, 'sample the training pairs among the k most likely tokens (0 = all)'),
  spec('top_p', 'float', 1, 'nucleus sampling threshold of the training pairs'),
  spec('judge_timeout', 'float', 30, 'seconds one judge call may take (0 = no limit)'),
  spec('eval_num_samples', 'int', 4, 'held-out samples per prompt (temperature 1, no filtering: y ~ π)'),
  ...TRAINING_OPTIONS.filter((s) => s.snake !== 'beta'),
  spec('beta', 'floats', [0.1], 'DPO β; several values run one iterative training each (output_dir/beta-<β>/)'),
  spec('config', 'string?', null, 'YAML file with any of these options (flags override it)'),
  spec('quiet', 'bool', false, 'no progress output'),
  spec('debug', 'bool', false, 'print stack traces on errors'),
];

/** Whether `dpo train` was asked for iterative DPO (a judge or prompts file). */
export const wantsIterative = (argv: readonly string[]): boolean => argv.some((a) => /^--(judge|prompts|iterations)(=|$)/.test(a));

export async function iterativeTrainCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('train --judge J --prompts P', 'iterative (online) DPO: each round samples pairs from the policy, judges them and trains on them', ITERATIVE_SPECS));
    return;
  }
  const o = resolveOptions(argv, ITERATIVE_SPECS, 'train');
  for (const k of ['model_name_or_path', 'prompts', 'judge'] as const) if (!o[k]) throw new DpoError(`dpo train: iterative DPO needs --${k} (with --judge, --prompts and --model_name_or_path; see dpo train --judge x --help)`);
  if (o.dataset_name) throw new DpoError('dpo train: --dataset_name is a fixed preference data set; iterative DPO makes its pairs from --prompts each round, pass only one of them');
  if (o.use_peft) throw new DpoError('dpo train: iterative DPO trains the full model (--use_peft is not supported with --judge); drop --use_peft');
  if (!((o.temperature as number) > 0)) throw new DpoError('dpo train: --temperature must be > 0 (at 0 every completion is the same greedy one, so no pair exists)');
  const betas = o.beta as number[];
  if (!betas.length || betas.some((b) => !(b > 0))) throw new DpoError(`dpo train: --beta must be positive, got ${betas.join(' ')}`);
  const cfg: Record<string, unknown> = {};
  for (const s of TRAINING_OPTIONS) if (s.snake !== 'beta' && (s.group === 'training' || s.group === 'dpo' || s.group === 'data') && o[s.snake] !== undefined) cfg[s.snake] = o[s.snake];
  const judge = await loadJudge(o.judge as string);
  const prompts = await loadRows(o.prompts as string, o.dataset_train_split as string);
  const evalPrompts = o.eval_prompts ? await loadRows(o.eval_prompts as string, 'train') : null;
  const quiet = o.quiet as boolean;
  const log = (m: string) => {
    if (!quiet) console.log(m);
  };
  const root = o.output_dir as string;
  const resume = cfg.resume_from_checkpoint !== null && cfg.resume_from_checkpoint !== undefined;
  if (resume && !/^(true|latest)$/.test(String(cfg.resume_from_checkpoint))) throw new DpoError(`dpo train: with --judge, --resume_from_checkpoint takes true (continue the run in --output_dir), got ${cfg.resume_from_checkpoint}`);
  const runs: { beta: number; records: RoundRecord[] }[] = [];
  const iterations = o.iterations as number;
  for (const beta of betas) {
    const outDir = betas.length > 1 ? join(root, `beta-${beta}`) : root;
    const args = new DPOConfig({ ...cfg, beta, output_dir: outDir, resume_from_checkpoint: null }, 'dpo train');
    const policy = loadPolicy(o.model_name_or_path as string);
    log(`iterative DPO: ${iterations} rounds, β ${beta}, reference ${o.ref_update === 'round' ? "the previous round's model" : 'the starting model'}, ${prompts.length} prompts × ${o.num_generations} samples per round → ${outDir}`);
    const { records } = await iterativeDPO({
      model: policy.model, tokenizer: policy.tokenizer, prompts, judge, iterations, args, refUpdate: o.ref_update as RefUpdate, resume,
      generation: { numGenerations: o.num_generations as number, maxNewTokens: o.max_new_tokens as number, temperature: o.temperature as number, topK: o.top_k as number, topP: o.top_p as number, judgeTimeout: o.judge_timeout as number },
      heldOut: evalPrompts ? { prompts: evalPrompts, numSamples: o.eval_num_samples as number, maxNewTokens: o.max_new_tokens as number } : null,
      train: async (init, resumeFrom, k) => (await runTraining(init, {
        title: `DPO round ${k}: ${policy.base}`, settings: { model_name_or_path: policy.base, prompts: o.prompts, round: k }, quiet, resumeFromCheckpoint: resumeFrom,
        resumeHint: () => 'continue with the same command and --resume_from_checkpoint true',
      })).trainer,
      onPairs: (k, s) => log(`round ${k}: ${summarisePairs(s)}`),
      onRound: (r) => log(`round ${r.round}: ${r.steps} steps${r.train_loss !== null ? `, train_loss ${r.train_loss.toFixed(4)}` : ''}${r.heldout_score !== undefined ? `; held-out score ${r.heldout_score.toFixed(4)}, win-rate ${r.heldout_win_rate?.toFixed(3)}, KL ${r.heldout_kl?.toFixed(4)}` : ''}`),
      warn: (m) => log(`warning: ${m}`), modelNameOrPath: policy.base,
    });
    runs.push({ beta, records });
    writeRoundsReport(join(outDir, 'report.html'), { title: `iterative DPO: ${policy.base}, β ${beta}`, runs: [{ beta, records }], history: iterativeHistory(outDir, iterations), settings: { model_name_or_path: policy.base, prompts: o.prompts, iterations, ref_update: o.ref_update, ...args.toJSON() } });
    log(`saved ${outDir}/round-${iterations} (the final model), report ${join(outDir, 'report.html')}`);
  }
  if (betas.length > 1) {
    writeRoundsReport(join(root, 'report.html'), { title: `iterative DPO: β ${betas.join(', ')}`, runs, history: [], settings: { model_name_or_path: o.model_name_or_path, prompts: o.prompts, iterations, ref_update: o.ref_update, beta: betas } });
    log(`report (one reward–KL curve per β): ${join(root, 'report.html')}`);
  }
}
