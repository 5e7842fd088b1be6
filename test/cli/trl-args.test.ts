/**
 * TRL 1.13's `trl dpo` arguments (test/fixtures/trl-args/args.json, from tools/fixtures/make_trl_args.py):
 * every one is known to `dpo train` (implemented, accepted without effect, or refused unless TRL's
 * default), our defaults equal TRL's except the listed deliberate differences, and TRL's documented
 * recipe runs unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRAIN_SPECS } from '../../src/cli/train.js';
import { parseArgs } from '../../src/cli/args.js';
import { OPTIONS_BY_SNAKE } from '../../src/dpo/options.js';
import { DEFAULT_DIFFERENCES, OWN_MEANING, TRL_ARGS_BY_SNAKE, resolveTrlArgs } from '../../src/dpo/trl-args.js';
import { DPOConfig } from '../../src/dpo/config.js';
import { DpoError } from '../../src/errors.js';

interface TrlField { name: string; class: string; type: string; default: unknown; field_default: unknown }
const fixture = JSON.parse(readFileSync('test/fixtures/trl-args/args.json', 'utf8')) as { versions: Record<string, string>; args: TrlField[] };
const SPECS = new Map(TRAIN_SPECS.map((s) => [s.snake, s]));

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const tmp = () => mkdtempSync(join(tmpdir(), 'dpo-trlargs-'));
function dpo(...args: string[]): { code: number; out: string; err: string } {
  return dpoEnv({}, ...args);
}
function dpoEnv(env: Record<string, string>, ...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('the fixture is TRL 1.13 and lists its parser\'s arguments', () => {
  assert.equal(fixture.versions.trl, '1.13.0');
  assert.ok(fixture.args.length > 150, `${fixture.args.length} arguments`);
});

test('every argument of TRL\'s trl dpo is known to dpo train (implemented, no effect, or refused if not default)', () => {
  const unknown = fixture.args.filter((a) => !SPECS.has(a.name) && !OWN_MEANING[a.name]).map((a) => a.name);
  assert.deepEqual(unknown, [], `arguments of TRL unknown to dpo train: ${unknown.join(', ')}`);
  // The DPOConfig ones are DPOConfig's too (library API): ours, or a TRL_ARGS row of class config.
  const notInConfig = fixture.args.filter((a) => a.class === 'DPOConfig' && !OWN_MEANING[a.name] && !OPTIONS_BY_SNAKE.has(a.name) && TRL_ARGS_BY_SNAKE.get(a.name)?.cls !== 'config').map((a) => a.name);
  assert.deepEqual(notInConfig, []);
  // No row of the table is also an option of ours (one place for each argument).
  for (const t of TRL_ARGS_BY_SNAKE.keys()) assert.ok(!OPTIONS_BY_SNAKE.has(t), `${t} is both implemented and in TRL_ARGS`);
});

const norm = (v: unknown): unknown => {
  if (v === undefined) return null;
  if (Array.isArray(v)) return v.map(norm);
  return v;
};

test('our defaults are TRL 1.13\'s, field by field, except the listed deliberate differences', () => {
  const differ: string[] = [];
  for (const a of fixture.args) {
    if (OWN_MEANING[a.name]) continue;
    const t = TRL_ARGS_BY_SNAKE.get(a.name);
    // Our implemented options: TRL's effective default (after __post_init__, e.g. bf16); the table: the field's.
    const trl = norm(t ? a.field_default : a.default);
    let ours = norm(SPECS.get(a.name)!.default);
    // A single string default of a list argument ('none') is the list of it, as TRL's parser reads it.
    if (t && (t.type === 'strings') && typeof trl === 'string') ours = Array.isArray(ours) ? ours : [ours];
    const trlV = t && t.type === 'strings' && typeof trl === 'string' ? [trl] : trl;
    const same = JSON.stringify(ours) === JSON.stringify(trlV);
    if (!same) differ.push(a.name);
    if (same) assert.ok(!DEFAULT_DIFFERENCES[a.name], `${a.name} is listed as a deliberate difference but equals TRL's default ${JSON.stringify(trl)}`);
    else assert.ok(DEFAULT_DIFFERENCES[a.name], `${a.name}: our default ${JSON.stringify(ours)} differs from TRL's ${JSON.stringify(trl)} and is not in DEFAULT_DIFFERENCES`);
  }
  assert.deepEqual(differ.sort(), Object.keys(DEFAULT_DIFFERENCES).sort());
  // TRL's _BaseConfig defaults the issue names, verified against the generated table.
  const f = (n: string) => fixture.args.find((a) => a.name === n)!;
  assert.equal(f('logging_steps').default, 10);
  assert.equal(new DPOConfig().loggingSteps, 10);
  assert.equal(new DPOConfig().gradientCheckpointing, true);
  assert.equal(new DPOConfig().bf16, true);
  assert.equal(f('gradient_checkpointing').default, true);
  assert.equal(f('bf16').default, true);
  assert.equal(f('bf16').field_default, null);
});

test('--no_X and --X false negate a boolean as HfArgumentParser does', () => {
  const o = parseArgs(['--no_remove_unused_columns', '--no_disable_dropout', '--bf16', 'False', '--use_peft', '--share_prompt=false', '--dataloader_pin_memory', 'false'], TRAIN_SPECS, 'train');
  assert.deepEqual(o, { remove_unused_columns: false, disable_dropout: false, bf16: false, use_peft: true, share_prompt: false, dataloader_pin_memory: false });
  assert.throws(() => parseArgs(['--no_learning_rate'], TRAIN_SPECS, 'train'), /unknown option --no_learning_rate/);
  assert.throws(() => parseArgs(['--no_bf16=1'], TRAIN_SPECS, 'train'), /takes no value/);
});

test('resolveTrlArgs: no-effect arguments warn only when set off TRL\'s default; refused ones stop; special ones map', () => {
  assert.deepEqual(resolveTrlArgs({ fsdp: null, optim: 'adamw_torch_fused', dtype: 'float32', remove_unused_columns: true }, 'x'), { set: {}, notes: [] });
  const r = resolveTrlArgs({ push_to_hub: true, fsdp: 'full_shard', torch_compile: true, optim: 'adamw_torch', attn_implementation: 'flash_attention_2' }, 'x');
  assert.equal(r.notes.length, 4);
  assert.match(r.notes.join('\n'), /push_to_hub true has no effect/);
  assert.match(r.notes.join('\n'), /fsdp full_shard has no effect: dpo train is one process/);
  assert.deepEqual(resolveTrlArgs({ dtype: 'bfloat16' }, 'x').set, { bf16: true });
  assert.deepEqual(resolveTrlArgs({ dtype: 'auto' }, 'x', () => 'bfloat16').set, { bf16: true });
  assert.deepEqual(resolveTrlArgs({ dtype: 'auto' }, 'x', () => 'float32').set, {});
  assert.throws(() => resolveTrlArgs({ optim: 'sgd' }, 'x'), (e: Error) => e instanceof DpoError && /optim "sgd" is not supported; supported: adamw_torch, adamw_torch_fused/.test(e.message));
  assert.throws(() => resolveTrlArgs({ fp16: true }, 'x'), /fp16 true is not supported \(fp16 mixed precision is not implemented; use --bf16\)/);
  assert.throws(() => resolveTrlArgs({ neftune_noise_alpha: 5 }, 'x'), /neftune_noise_alpha 5 is not supported/);
  assert.throws(() => resolveTrlArgs({ dtype: 'float16' }, 'x'), /dtype "float16" is not supported/);
  assert.throws(() => resolveTrlArgs({ attn_implementation: 'magic' }, 'x'), /attn_implementation "magic" is not known/);
});

test('DPOConfig takes TRL\'s DPOConfig / TrainingArguments fields: notes for no-effect ones, errors for refused ones', () => {
  const c = new DPOConfig({ push_to_hub: true, optim: 'adamw_torch', dataloader_num_workers: 4, ddp_timeout: 1800 });
  assert.equal(c.notes.length, 2);
  assert.ok(!('push_to_hub' in c.toJSON()));
  assert.throws(() => new DPOConfig({ optim: 'adafactor' }), /DPOConfig: optim "adafactor" is not supported/);
  assert.throws(() => new DPOConfig({ eval_delay: 5 }), /eval_delay 5 is not supported/);
  assert.throws(() => new DPOConfig({ dataloader_num_workers: 'many' }), /dataloader_num_workers must be an integer/);
  assert.equal(new DPOConfig().notes.length, 0);
  assert.deepEqual(new DPOConfig({ reportTo: ['tensorboard'], optim: 'adamw_torch_fused' }).notes, []);
});

// TRL's documented command (trl/scripts/dpo.py), paths pointed at fixtures, --max_steps 2.
const RECIPE = (out: string) => [
  'train', '--dataset_name', 'test/fixtures/data/hfdir', '--model_name_or_path', 'test/fixtures/models/llama',
  '--learning_rate', '5.0e-7', '--num_train_epochs', '1', '--per_device_train_batch_size', '2', '--max_steps', '2',
  '--gradient_accumulation_steps', '8', '--eval_strategy', 'steps', '--eval_steps', '50', '--output_dir', out,
  '--no_remove_unused_columns', '--use_peft', '--lora_r', '32', '--lora_alpha', '16',
];

test('TRL recipe: the documented trl dpo command runs unchanged through dpo train', () => {
  const out = tmp();
  const r = dpo(...RECIPE(out));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /precision: bf16 compute, f32 master weights; gradient_checkpointing on; logging_steps 10/);
  assert.match(r.out, /warning: remove_unused_columns false has no effect/);
  assert.match(r.out, /2 eval pairs/);
  assert.match(r.out, /done: 2 steps/);
  const args = JSON.parse(readFileSync(join(out, 'training_args.json'), 'utf8'));
  assert.equal(args.learning_rate, 5e-7);
  assert.equal(args.gradient_accumulation_steps, 8);
});

test('TRL recipe with the commonly passed flags: report_to, dtype, attn_implementation, optim, dataset_num_proc, model_revision, push_to_hub, torch_dtype', () => {
  const out = tmp();
  const r = dpo(...RECIPE(out), '--report_to', 'none', '--dtype', 'bfloat16', '--attn_implementation', 'sdpa', '--optim', 'adamw_torch_fused', '--dataset_num_proc', '2',
    '--model_revision', 'main', '--push_to_hub', 'false', '--torch_dtype', 'bfloat16', '--no_gradient_checkpointing', '--logging_steps', '1', '--no_dataloader_pin_memory');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /precision: bf16 compute, f32 master weights; gradient_checkpointing off; logging_steps 1/);
  assert.match(r.out, /warning: dtype bfloat16: training with --bf16 compute/);
  assert.match(r.out, /warning: attn_implementation sdpa: accepted/);
  assert.doesNotMatch(r.out, /report_to|push_to_hub/);
  assert.equal(JSON.parse(readFileSync(join(out, 'training_args.json'), 'utf8')).bf16, true);
});

test('--dtype auto reads the checkpoint\'s dtype: bfloat16 → --bf16 compute, float32 → float32', () => {
  const run = (model: string, ...x: string[]) => dpo('train', '--model_name_or_path', model, '--dataset_name', 'examples/dpo_example.json', '--output_dir', tmp(), '--max_steps', '1', '--dtype', 'auto', '--no_gradient_checkpointing', ...x);
  const b = run('test/fixtures/models/llama-bf16');
  assert.equal(b.code, 0, b.err);
  assert.match(b.out, /precision: bf16 compute, f32 master weights; gradient_checkpointing off/);
  assert.match(b.out, /warning: dtype auto \(checkpoint: bfloat16\): training with --bf16 compute/);
  // dtype is the weights' dtype in TRL and bf16 its (default-on) autocast: a float32 checkpoint does not turn bf16 off.
  const f = run('test/fixtures/models/llama');
  assert.equal(f.code, 0, f.err);
  assert.match(f.out, /precision: bf16 compute/);
  assert.match(f.out, /dtype auto: the checkpoint is float32/);
  const x = run('test/fixtures/models/llama', '--no_bf16');
  assert.equal(x.code, 0, x.err);
  assert.match(x.out, /precision: float32;/);
});

test('--model_revision picks the snapshot of an HF id in the cache; a local directory has none', () => {
  const hub = tmp();
  const repo = join(hub, 'models--org--tiny');
  cpSync('test/fixtures/models/llama', join(repo, 'snapshots', 'aaa111'), { recursive: true });
  mkdirSync(join(repo, 'refs'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'v1'), 'aaa111\n');
  const env = { HF_HUB_CACHE: hub };
  const args = (...x: string[]) => ['train', '--dataset_name', 'examples/dpo_example.json', '--output_dir', tmp(), '--max_steps', '1', ...x];
  const ok = dpoEnv(env, ...args('--model_name_or_path', 'org/tiny', '--model_revision', 'v1'));
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /model org\/tiny@v1 /);
  const missing = dpoEnv(env, ...args('--model_name_or_path', 'org/tiny', '--model_revision', 'v2'));
  assert.equal(missing.code, 2);
  assert.match(missing.err, /no snapshot for revision "v2"/);
  const local = dpo(...args('--model_name_or_path', 'test/fixtures/models/llama', '--model_revision', 'v2'));
  assert.equal(local.code, 2);
  assert.match(local.err, /^dpo: dpo train: --model_revision v2: test\/fixtures\/models\/llama is a local directory, which has no revisions/);
});

test('bad TRL arguments: one-line errors, exit 2', () => {
  const base = ['train', '--model_name_or_path', 'test/fixtures/models/llama', '--dataset_name', 'examples/dpo_example.json', '--output_dir', tmp(), '--max_steps', '1'];
  for (const [flags, msg] of [
    [['--optim', 'sgd'], /optim "sgd" is not supported; supported: adamw_torch, adamw_torch_fused/],
    [['--fp16'], /fp16 true is not supported/],
    [['--dtype', 'float16'], /dtype "float16" is not supported; supported: float32, bfloat16, auto/],
    [['--use_peft', '--lora_target_parameters', 'experts'], /lora_target_parameters .*is not supported/],
    [['--dtype', 'bfloat16', '--no_bf16'], /--dtype asks for bf16 compute but --bf16 false turns it off/],
    [['--torch_compile', 'maybe'], /torch_compile must be true or false/],
  ] as [string[], RegExp][]) {
    const r = dpo(...base, ...flags);
    assert.equal(r.code, 2, `${flags.join(' ')}: ${r.err}`);
    assert.match(r.err, msg);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  }
});

test('YAML: TRL keys parse; unknown keys are tolerated with a warning as TRL does, typos stay errors; env sets variables', () => {
  const out = tmp();
  const cfg = join(out, 'run.yaml');
  writeFileSync(cfg, [
    'model_name_or_path: test/fixtures/models/llama', 'dataset_name: examples/dpo_example.json', 'max_steps: 1', 'per_device_train_batch_size: 4',
    'report_to: [tensorboard]', 'remove_unused_columns: false', 'dtype: float32', 'optim: adamw_torch', 'ddp_timeout: 3600', 'my_sweep_tag: 7', '',
  ].join('\n'));
  const r = dpo('train', '--config', cfg, '--output_dir', out);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /warning: --config .*run\.yaml: unknown key "my_sweep_tag" ignored/);
  assert.doesNotMatch(r.out, /report_to/); // a tracker now (test/report/tensorboard.test.ts)
  assert.match(r.out, /warning: ddp_timeout 3600 has no effect/);
  const bad = join(out, 'bad.yaml');
  writeFileSync(bad, 'learnin_rate: 3\n');
  const b = dpo('train', '--config', bad);
  assert.equal(b.code, 2);
  assert.match(b.err, /unknown key "learnin_rate" for dpo train; did you mean learning_rate\?/);
  // env: sets environment variables before the run, as TRL's parser does (here: the memory limit, which then stops it).
  const envCfg = join(out, 'env.yaml');
  writeFileSync(envCfg, 'model_name_or_path: test/fixtures/models/llama\ndataset_name: examples/dpo_example.json\nenv:\n  DPO_MEMORY_LIMIT: 500000\n');
  const e = dpo('train', '--config', envCfg, '--output_dir', out);
  assert.equal(e.code, 2, e.err);
  assert.match(e.err, /but 500\.0 kB is available \(DPO_MEMORY_LIMIT\)/);
  const refused = join(out, 'refused.yaml');
  writeFileSync(refused, 'model_name_or_path: test/fixtures/models/llama\ndataset_name: examples/dpo_example.json\nneftune_noise_alpha: 5\n');
  const o = dpo('train', '--config', refused);
  assert.equal(o.code, 2);
  assert.match(o.err, /neftune_noise_alpha 5 is not supported \(NEFTune embedding noise is not implemented\)/);
});
