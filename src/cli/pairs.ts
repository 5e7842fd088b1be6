/** `dpo pairs`: sample completions per prompt from a policy, score them with a judge module, write TRL preference pairs. */
import { extname } from 'node:path';
import { DpoError } from '../errors.js';
import { loadRows } from '../data/load.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadJudge } from '../generate/judge.js';
import { generatePairs, summarisePairs } from '../generate/pairs.js';
import { Progress } from '../report/progress.js';
import { loadPolicy } from './load-policy.js';
import { helpText, resolveOptions, spec, type Spec } from './args.js';

export const PAIRS_SPECS: Spec[] = [
  spec('model_name_or_path', 'string?', null, 'the policy: model directory, HF model id, or adapter directory'),
  spec('adapter_name_or_path', 'string?', null, 'a PEFT adapter to apply to the model'),
  spec('dataset_name', 'string?', null, 'prompts: .jsonl/.json/.parquet file or dataset directory with a `prompt` column'),
  spec('dataset_train_split', 'string', 'train', 'split of a dataset directory'),
  spec('judge', 'string?', null, 'judge module (.mjs/.js): export default (prompt, completion) => score, or { compare(prompt, a, b) }'),
  spec('judge_timeout', 'float', 30, 'seconds one judge call may take (0 = no limit)'),
  spec('output_path', 'string', 'pairs.jsonl', 'where to write the pairs (.jsonl or .json)'),
  spec('num_generations', 'int', 4, 'completions sampled per prompt'),
  spec('max_new_tokens', 'int', 64, 'tokens to generate at most per completion'),
  spec('temperature', 'float', 1, 'sampling temperature (> 0)'),
  spec('top_k', 'int', 50, 'sample among the k most likely tokens (0 = all)'),
  spec('top_p', 'float', 1, 'nucleus sampling threshold'),
  spec('seed', 'int', 42, 'sampling seed (same seed, same output)'),
  spec('config', 'string?', null, 'YAML file with any of these options'),
  spec('debug', 'bool', false, 'print stack traces on errors'),
];

export async function pairsCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('pairs', 'sample completions, score them with a judge, write preference pairs', PAIRS_SPECS));
    return;
  }
  const o = resolveOptions(argv, PAIRS_SPECS, 'pairs');
  for (const k of ['model_name_or_path', 'dataset_name', 'judge'] as const) if (!o[k]) throw new DpoError(`dpo pairs: --${k} is required (see dpo pairs --help)`);
  if (!((o.temperature as number) > 0)) throw new DpoError(`dpo pairs: --temperature must be > 0 (at 0 every completion is the same greedy one, so no pair exists)`);
  const out = o.output_path as string;
  const ext = extname(out).toLowerCase();
  if (ext !== '.jsonl' && ext !== '.json') throw new DpoError(`dpo pairs: --output_path ${out}: write .jsonl or .json`);
  const judge = await loadJudge(o.judge as string);
  const prompts = await loadRows(o.dataset_name as string, o.dataset_train_split as string);
  const { model, tokenizer } = loadPolicy(o.model_name_or_path as string, (o.adapter_name_or_path as string | null) ?? null);
  const bar = new Progress({ label: 'pairs', total: prompts.length, plainEvery: Math.max(1, Math.ceil(prompts.length / 20)) });
  const { rows, stats } = await generatePairs({
    model, tokenizer, prompts, judge,
    numGenerations: o.num_generations as number, maxNewTokens: o.max_new_tokens as number,
    temperature: o.temperature as number, topK: o.top_k as number, topP: o.top_p as number, seed: o.seed as number,
    judgeTimeout: o.judge_timeout as number,
    onProgress: (done, _total, s) => bar.update(done, { extra: `pairs ${s.written} ties ${s.ties}` }),
  });
  bar.done();
  writeFileAtomic(out, ext === '.json' ? `${JSON.stringify(rows, null, 1)}\n` : rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  console.log(`${summarisePairs(stats)}; wrote ${out}`);
  for (const m of stats.messages) console.log(`  ${m}`);
  if (!rows.length) throw new DpoError(`dpo pairs: no pairs written (${stats.ties} ties, ${stats.prompts - stats.ties} failed or empty); check the judge and the sampling settings`);
}
