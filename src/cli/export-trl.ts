/**
 * `dpo export-trl --config run.yaml --output_dir job/`: the run `dpo train --config run.yaml` would
 * make, as a TRL 1.13 job to take to a multi-GPU machine: job/dpo.yaml (for `trl dpo --config`),
 * job/data/{train,test}.jsonl (the resolved data: a file, a Hub-cache data set or a mixture),
 * job/accelerate_config.yaml (--distributed fsdp2 | zero3, --num_processes N), job/launch.sh and a
 * README. The train options (the YAML, or flags after it) are checked as dpo train checks them.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { DpoError } from '../errors.js';
import { DPOConfig } from '../dpo/config.js';
import { TRAINING_OPTIONS } from '../dpo/options.js';
import { TRL_ARGS, resolveTrlArgs } from '../dpo/trl-args.js';
import { attnImplementationNote, attnSoftcapOf, trlAttnImplementation } from '../dpo/attn-implementation.js';
import { DISTRIBUTED, launchScript, trlRecipe, type Distributed, type RecipeOptions } from '../dpo/trl-recipe.js';
import { scriptDatasets, type ScriptDataArgs } from '../data/script-data.js';
import { Dataset } from '../data/dataset.js';
import type { Row } from '../data/load.js';
import { helpText, parseArgs, resolveOptions, spec } from './args.js';
import { TRAIN_SPECS } from './train.js';

const EXPORT_SPECS = [
  spec('output_dir', 'string?', null, 'the job folder to write (dpo.yaml, data/, accelerate_config.yaml, launch.sh, README.md)'),
  spec('distributed', 'string', 'fsdp2', 'how accelerate shards the model over the GPUs', DISTRIBUTED),
  spec('num_processes', 'int', 8, 'GPU processes the job runs on (the global batch is kept)'),
];

export async function exportTrlCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('export-trl', 'write a TRL recipe (trl dpo YAML, data, accelerate config, launch.sh) that reproduces a dpo train run', [...EXPORT_SPECS, ...TRAIN_SPECS.filter((s) => s.snake !== 'output_dir')]));
    return;
  }
  // The export's own flags first; the rest are dpo train's (from --config and flags).
  const own: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '').split('=')[0];
    const target = EXPORT_SPECS.some((s) => s.snake === name) ? own : rest;
    target.push(argv[i]);
    if (!argv[i].includes('=') && i + 1 < argv.length && !argv[i + 1].startsWith('--')) target.push(argv[++i]);
  }
  const e = { ...Object.fromEntries(EXPORT_SPECS.map((s) => [s.snake, s.default])), ...parseArgs(own, EXPORT_SPECS, 'export-trl') };
  if (!e.output_dir) throw new DpoError('dpo export-trl: --output_dir is required (the job folder to write)');
  if (!((e.num_processes as number) >= 1)) throw new DpoError(`dpo export-trl: --num_processes must be ≥ 1, got ${e.num_processes}`);
  const notes: string[] = [];
  const o = resolveOptions(rest, TRAIN_SPECS, 'export-trl', { tolerateUnknown: (m) => notes.push(m) });
  if (!o.model_name_or_path) throw new DpoError('dpo export-trl: model_name_or_path is required (in --config or as a flag)');
  if (o.adapter_name_or_path) throw new DpoError('dpo export-trl: adapter_name_or_path (continuing an adapter) has no trl dpo argument; merge it first (dpo merge) and export the merged model');
  // The same checks as dpo train: refused TRL arguments and bad values stop here, not on the cluster.
  const cfg: Record<string, unknown> = {};
  for (const s of TRAINING_OPTIONS) if (s.group !== 'lora' && s.group !== 'model') cfg[s.snake] = o[s.snake];
  const trlOther: Record<string, unknown> = {};
  for (const t of TRL_ARGS) (t.cls === 'config' ? cfg : trlOther)[t.snake] = o[t.snake];
  resolveTrlArgs(trlOther, 'dpo export-trl');
  const args = new DPOConfig(cfg, 'dpo export-trl');
  const data = await scriptDatasets(o as unknown as ScriptDataArgs, args.evalStrategy !== 'no', args.seed, process.env, 'dpo export-trl');
  if (data.eval && !(data.eval instanceof Dataset)) throw new DpoError(`dpo export-trl: several eval splits (${Object.keys(data.eval).join(', ')}); trl dpo evaluates one, so pass one --dataset_test_split`);
  const evalDs = data.eval;
  const job = resolve(e.output_dir as string);
  mkdirSync(join(job, 'data'), { recursive: true });
  writeJsonl(join(job, 'data', 'train.jsonl'), data.train.rows);
  if (evalDs) writeJsonl(join(job, 'data', 'test.jsonl'), evalDs.rows);
  const model = o.model_name_or_path as string;
  const local = existsSync(model) || model.startsWith('.') || isAbsolute(model);
  const r: RecipeOptions = {
    numProcesses: e.num_processes as number, distributed: e.distributed as Distributed, datasetName: 'data',
    modelNameOrPath: local ? resolve(model) : model, hasTest: !!evalDs,
  };
  const defaults = Object.fromEntries(TRAIN_SPECS.map((s) => [s.snake, s.default]));
  // Attention soft-cap (Gemma 2): transformers' default sdpa would drop it, so the recipe pins eager (dpo/attn-implementation.ts).
  const cap = attnSoftcapOf(model), given = (o.attn_implementation as string | null) ?? null;
  const attn = trlAttnImplementation(cap, given);
  if (attn !== given) notes.push(`attn_implementation ${attn} written: this model soft-caps its attention logits (${cap}), which transformers' default sdpa kernel drops`);
  const capNote = attnImplementationNote(cap, attn);
  if (capNote) notes.push(capNote);
  const recipe = trlRecipe({ ...o, attn_implementation: attn }, defaults, r);
  writeFileSync(join(job, 'dpo.yaml'), `# trl dpo --config dpo.yaml (TRL 1.13), exported by dpo export-trl from ${o.config ?? 'flags'}\n${recipe.yaml}`);
  writeFileSync(join(job, 'accelerate_config.yaml'), recipe.accelerateYaml);
  writeFileSync(join(job, 'launch.sh'), launchScript(String(o.config ?? 'flags'), r, (o.logging_dir as string | null) ?? null));
  chmodSync(join(job, 'launch.sh'), 0o755);
  writeFileSync(join(job, 'README.md'), readme(r, data.train.length, evalDs?.length ?? null, data.label));
  for (const n of [...notes, ...data.notes, ...recipe.notes]) console.log(`warning: ${n}`);
  console.log(`wrote ${job}: dpo.yaml, data/train.jsonl (${data.train.length} pairs)${evalDs ? `, data/test.jsonl (${evalDs.length})` : ''}, accelerate_config.yaml (${r.distributed}, ${r.numProcesses} processes), launch.sh, README.md`);
  console.log(`run it: ${join(job, 'launch.sh')}   (one process: cd ${job} && python -m trl.scripts.dpo --config dpo.yaml)`);
}

function writeJsonl(path: string, rows: readonly Row[]): void {
  const lines: string[] = [];
  for (const r of rows) lines.push(JSON.stringify(r));
  writeFileSync(path, lines.length ? `${lines.join('\n')}\n` : '');
}

function readme(r: RecipeOptions, nTrain: number, nTest: number | null, source: string): string {
  return `# TRL job exported by \`dpo export-trl\`

The same DPO run as \`dpo train\`, for TRL 1.13 + PEFT 0.21 on ${r.numProcesses} GPU processes
(${r.distributed === 'fsdp2' ? 'FSDP2' : 'DeepSpeed ZeRO-3'}).

- \`dpo.yaml\`: the arguments, for \`trl dpo --config dpo.yaml\`
- \`data/train.jsonl\` (${nTrain} pairs)${nTest !== null ? `, \`data/test.jsonl\` (${nTest})` : ''}: the data (${source})
- \`accelerate_config.yaml\`: the multi-GPU setup
- \`launch.sh\`: \`trl dpo --config dpo.yaml --accelerate_config accelerate_config.yaml\`

\`\`\`sh
pip install "trl==1.13.0" "peft==0.21.0" accelerate${r.distributed === 'zero3' ? ' deepspeed' : ''}
./launch.sh                                  # ${r.numProcesses} processes
python -m trl.scripts.dpo --config dpo.yaml  # one process, no accelerate
\`\`\`

The output goes to \`trl_output/\`. The model is \`${r.modelNameOrPath}\`; change \`model_name_or_path\`
in dpo.yaml if it lives elsewhere on the GPU machine.
`;
}
