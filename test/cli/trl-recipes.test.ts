/**
 * TRL recipes: TRL 1.13's documented `trl dpo` commands and YAML recipes, copied verbatim (Hub ids
 * included), run through `dpo train` with only `trl dpo` / `python trl/scripts/dpo.py` changed to
 * `dpo train`. They find their models and data sets in a fixture Hugging Face cache
 * (test/fixtures/recipe-cache/hub, HF_HUB_CACHE; made by tools/fixtures/make_recipe_cache.py: the tiny
 * qwen2 checkpoint as Qwen/Qwen2-0.5B-Instruct and Qwen/Qwen2.5-0.5B, a few dozen generated rows as
 * trl-lib/ultrafeedback_binarized and anthropic/hh-rlhf in the real repos' file layout and columns).
 * Each run's working directory is a fresh temp dir, so a recipe's relative --output_dir lands there.
 * The only edit to a recipe is the one that keeps the test short: `--max_steps 1000` → `--max_steps 2`
 * (`shortened`, applied to the verbatim text when the test runs it); recipes without --max_steps run as written.
 *
 * Sources:
 * - DPO_FULL, DPO_LORA: the docstring of trl/scripts/dpo.py in TRL 1.13.0 (the installed package,
 *   .venv-ref/lib/python3.11/site-packages/trl/scripts/dpo.py; identical at huggingface/trl f2cd577).
 * - PEFT_LORA: docs/source/peft_integration.md, "Direct Preference Optimization (DPO) / With LoRA".
 * - CLI_BASIC, YAML_BASIC, CLI_PROCESSES, YAML_PROCESSES, CLI_ACCELERATE, YAML_ACCELERATE:
 *   docs/source/clis.md ("Basic Usage", "Using Configuration Files", "Scaling Up with Accelerate",
 *   "Using `--accelerate_config`"), DPO tabs.
 *   The docs are huggingface/trl at f2cd57710ae345ea6428ae95363267fcf38a3dc8 (the mirror has no v1.13
 *   tag; that commit's trl/scripts/dpo.py equals 1.13.0's).
 * Not covered: clis.md's dataset-mixture recipe (BAAI/Infinity-Preference + argilla/Capybara-Preferences),
 * whose columns cannot be checked offline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const CLI = resolve('dist/src/cli/main.js');
const HUB = resolve('test/fixtures/recipe-cache/hub');
/** What the `datasets` library reads from each fixture snapshot (load_dataset offline). */
const expected = JSON.parse(readFileSync('test/fixtures/recipe-cache/expected.json', 'utf8')) as {
  versions: Record<string, string>;
  loads: Record<string, Record<string, { rows: number; columns: string[] }>>;
};

interface Run { code: number; out: string; err: string; cwd: string }
/** `dpo <args>` in a fresh temp dir with HF_HUB_CACHE at the fixture cache (HF_HOME elsewhere, so nothing else is found). */
function dpo(args: string[], files: Record<string, string> = {}): Run {
  const cwd = mkdtempSync(join(tmpdir(), 'dpo-recipe-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(cwd, name), text);
  const env = { ...process.env, HF_HUB_CACHE: HUB, HF_HOME: join(cwd, 'hf-home'), DPO_NUM_THREADS: process.env.DPO_NUM_THREADS ?? '1' };
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 240_000, env });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr, cwd };
}
/** A command from the docs as its words (backslash-newlines joined), `trl dpo` / `python trl/scripts/dpo.py` → `dpo train`. */
function words(doc: string): string[] {
  const w = doc.replace(/\\\n/g, ' ').trim().split(/\s+/);
  const start = w[0] === 'trl' ? 2 : w[0] === 'python' ? 2 : 0;
  return ['train', ...w.slice(start)];
}
/** SHORTENED: the one edit made to a recipe, `--max_steps 1000` → `--max_steps 2`. */
function shortened(w: string[]): string[] {
  const i = w.indexOf('--max_steps');
  assert.equal(w[i + 1], '1000');
  return [...w.slice(0, i + 1), '2', ...w.slice(i + 2)];
}
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
interface State { global_step: number; max_steps: number; log_history: Record<string, number>[] }

// trl/scripts/dpo.py (TRL 1.13.0), "# Full training", verbatim; run SHORTENED (--max_steps 1000 → 2).
const DPO_FULL = `python trl/scripts/dpo.py \\
    --dataset_name trl-lib/ultrafeedback_binarized \\
    --model_name_or_path Qwen/Qwen2-0.5B-Instruct \\
    --learning_rate 5.0e-7 \\
    --num_train_epochs 1 \\
    --per_device_train_batch_size 2 \\
    --max_steps 1000 \\
    --gradient_accumulation_steps 8 \\
    --eval_strategy steps \\
    --eval_steps 50 \\
    --output_dir Qwen2-0.5B-DPO \\
    --no_remove_unused_columns`;

// trl/scripts/dpo.py (TRL 1.13.0), "# LoRA:", verbatim; run SHORTENED (--max_steps 1000 → 2).
const DPO_LORA = `python trl/scripts/dpo.py \\
    --dataset_name trl-lib/ultrafeedback_binarized \\
    --model_name_or_path Qwen/Qwen2-0.5B-Instruct \\
    --learning_rate 5.0e-6 \\
    --num_train_epochs 1 \\
    --per_device_train_batch_size 2 \\
    --max_steps 1000 \\
    --gradient_accumulation_steps 8 \\
    --eval_strategy steps \\
    --eval_steps 50 \\
    --output_dir Qwen2-0.5B-DPO \\
    --no_remove_unused_columns \\
    --use_peft \\
    --lora_r 32 \\
    --lora_alpha 16`;

/** The values a dpo.py recipe sets, as training_args.json must hold them (max_steps as shortened). */
function assertDpoPyArgs(r: Run, learningRate: number): void {
  const args = json(join(r.cwd, 'Qwen2-0.5B-DPO', 'training_args.json'));
  assert.equal(args.learning_rate, learningRate);
  assert.equal(args.num_train_epochs, 1);
  assert.equal(args.per_device_train_batch_size, 2);
  assert.equal(args.max_steps, 2);
  assert.equal(args.gradient_accumulation_steps, 8);
  assert.equal(args.eval_strategy, 'steps');
  assert.equal(args.eval_steps, 50);
  assert.equal(args.output_dir, 'Qwen2-0.5B-DPO'); // as given, as TRL's TrainingArguments keep it
  // TRL's defaults for what the recipe leaves out (TRL 1.13's _BaseConfig / DPOConfig).
  assert.equal(args.logging_steps, 10);
  assert.equal(args.bf16, true);
  assert.equal(args.gradient_checkpointing, true);
  assert.equal(args.beta, 0.1);
}

/** The Hub-cache data, trained for the stated 2 steps, and the final evaluation at step 2 (eval_steps 50 is never reached; transformers evaluates at the last step then). */
function assertDpoPyRun(r: Run): State {
  assert.equal(r.code, 0, r.err);
  const uf = expected.loads['trl-lib/ultrafeedback_binarized'];
  assert.match(r.out, /^model Qwen\/Qwen2-0\.5B-Instruct \(qwen2/m);
  assert.match(r.out, new RegExp(`data trl-lib/ultrafeedback_binarized \\(default\\) from the HF cache \\(snapshot \\w+\\): ${uf.train.rows} training pairs, ${uf.test.rows} eval pairs`));
  assert.match(r.out, /warning: remove_unused_columns false has no effect/);
  assert.match(r.out, /done: 2 steps/);
  const out = join(r.cwd, 'Qwen2-0.5B-DPO');
  const state = json(join(out, 'trainer_state.json')) as State;
  assert.equal(state.global_step, 2);
  assert.equal(state.max_steps, 2);
  const evals = state.log_history.filter((e) => 'eval_loss' in e);
  assert.deepEqual(evals.map((e) => e.step), [2]);
  assert.ok(Number.isFinite(evals[0].eval_loss) && Math.abs(evals[0].eval_loss - Math.LN2) < 0.05, `eval_loss ${evals[0].eval_loss}`);
  // 40 rows, 2 × 8 per step: 2 of 2.5 steps per epoch.
  assert.equal(state.log_history.at(-1)!.epoch, 0.8);
  // What TRL writes: the final checkpoint (save_strategy steps, at the last step), tokenizer files, trainer_state.json.
  for (const f of ['trainer_state.json', 'tokenizer.json', 'tokenizer_config.json', 'checkpoint-2/trainer_state.json', 'checkpoint-2/optimizer.safetensors']) assert.ok(existsSync(join(out, f)), f);
  return state;
}

test('the fixture cache is what the datasets library reads (TRL 1.13\'s stack)', () => {
  assert.equal(expected.versions.trl, '1.13.0');
  assert.deepEqual(expected.loads['trl-lib/ultrafeedback_binarized'].train.columns, ['chosen', 'rejected', 'score_chosen', 'score_rejected']);
  assert.deepEqual(expected.loads['anthropic/hh-rlhf'].train.columns, ['chosen', 'rejected']);
});

test('trl/scripts/dpo.py full training recipe runs unchanged (Hub ids from the HF cache)', () => {
  const r = dpo(shortened(words(DPO_FULL)));
  assertDpoPyRun(r);
  assertDpoPyArgs(r, 5e-7);
  const out = join(r.cwd, 'Qwen2-0.5B-DPO');
  assert.ok(existsSync(join(out, 'model.safetensors')) && existsSync(join(out, 'config.json')));
  assert.ok(!existsSync(join(out, 'adapter_config.json')));
});

test('trl/scripts/dpo.py LoRA recipe runs unchanged: a PEFT adapter with r 32, lora_alpha 16', () => {
  const r = dpo(shortened(words(DPO_LORA)));
  assertDpoPyRun(r);
  assertDpoPyArgs(r, 5e-6);
  const out = join(r.cwd, 'Qwen2-0.5B-DPO');
  const adapter = json(join(out, 'adapter_config.json'));
  assert.equal(adapter.r, 32);
  assert.equal(adapter.lora_alpha, 16);
  assert.equal(adapter.peft_type, 'LORA');
  assert.equal(adapter.base_model_name_or_path, 'Qwen/Qwen2-0.5B-Instruct');
  assert.ok(existsSync(join(out, 'adapter_model.safetensors')));
  assert.ok(existsSync(join(out, 'checkpoint-2', 'adapter_model.safetensors')));
});

// docs/source/peft_integration.md, DPO "With LoRA": run as written (no --max_steps: TRL's 3 epochs).
const PEFT_LORA = `python trl/scripts/dpo.py \\
    --model_name_or_path Qwen/Qwen2-0.5B-Instruct \\
    --dataset_name trl-lib/ultrafeedback_binarized \\
    --learning_rate 5.0e-6 \\
    --per_device_train_batch_size 2 \\
    --gradient_accumulation_steps 8 \\
    --use_peft \\
    --lora_r 32 \\
    --lora_alpha 16 \\
    --output_dir Qwen2-0.5B-DPO-LoRA`;

test('peft_integration.md DPO LoRA command runs unchanged: TRL\'s 3 epochs, no evaluation (eval_strategy no)', () => {
  const r = dpo(words(PEFT_LORA));
  assert.equal(r.code, 0, r.err);
  // transformers: 40 rows / 2 = 20 batches; ceil(20 / 8) = 3 updates per epoch; num_train_epochs 3 → 9 steps.
  assert.match(r.out, /done: 9 steps/);
  assert.match(r.out, new RegExp(`: ${expected.loads['trl-lib/ultrafeedback_binarized'].train.rows} training pairs\\n`));
  const out = join(r.cwd, 'Qwen2-0.5B-DPO-LoRA');
  const state = json(join(out, 'trainer_state.json')) as State;
  assert.equal(state.global_step, 9);
  assert.equal(state.log_history.filter((e) => 'eval_loss' in e).length, 0);
  assert.equal(state.log_history.at(-1)!.epoch, 3);
  const args = json(join(out, 'training_args.json'));
  assert.equal(args.learning_rate, 5e-6);
  assert.equal(args.num_train_epochs, 3);
  assert.equal(args.eval_strategy, 'no');
  assert.equal(json(join(out, 'adapter_config.json')).r, 32);
  assert.ok(existsSync(join(out, 'checkpoint-9', 'adapter_model.safetensors')));
});

// docs/source/clis.md, "Basic Usage", DPO tab: as written (TRL's defaults: 3 epochs of batch 8, no evaluation).
const CLI_BASIC = `trl dpo \\
  --model_name_or_path Qwen/Qwen2.5-0.5B \\
  --dataset_name anthropic/hh-rlhf`;
// docs/source/clis.md, "Using Configuration Files", DPO tab (dpo_config.yaml; launched with `trl dpo --config dpo_config.yaml`).
const YAML_BASIC = `# dpo_config.yaml
model_name_or_path: Qwen/Qwen2.5-0.5B
dataset_name: anthropic/hh-rlhf
`;

/** anthropic/hh-rlhf (harmless-base + helpful-base train.jsonl.gz: implicit prompts) with TRL's defaults: 16 rows / 8 = 2 steps per epoch, 3 epochs. */
function assertBasicRun(r: Run): number {
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^model Qwen\/Qwen2\.5-0\.5B \(qwen2/m);
  assert.match(r.out, new RegExp(`data anthropic/hh-rlhf from the HF cache \\(snapshot \\w+\\): ${expected.loads['anthropic/hh-rlhf'].train.rows} training pairs\\n`));
  assert.match(r.out, /done: 6 steps/);
  // TRL's output_dir default is "trainer_output"; ours is dpo_output (DEFAULT_DIFFERENCES in src/dpo/trl-args.ts).
  const state = json(join(r.cwd, 'dpo_output', 'trainer_state.json')) as State;
  assert.equal(state.global_step, 6);
  assert.equal(state.log_history.filter((e) => 'eval_loss' in e).length, 0);
  assert.ok(existsSync(join(r.cwd, 'dpo_output', 'checkpoint-6')));
  const args = json(join(r.cwd, 'dpo_output', 'training_args.json'));
  assert.equal(args.num_train_epochs, 3);
  assert.equal(args.per_device_train_batch_size, 8);
  return state.log_history.at(-1)!.train_loss;
}

test('clis.md basic DPO command and its YAML config run unchanged (gzipped JSON Lines from the HF cache) and train the same', () => {
  const cli = assertBasicRun(dpo(words(CLI_BASIC)));
  const yaml = assertBasicRun(dpo(words('trl dpo --config dpo_config.yaml'), { 'dpo_config.yaml': YAML_BASIC }));
  assert.equal(yaml, cli);
});

// docs/source/clis.md, "Scaling Up with Accelerate" and "Using `--accelerate_config`", DPO tabs: accelerate
// launch arguments (trl dpo hands them to `accelerate launch`). Several processes change the global batch,
// so dpo train refuses them with one line (and points at dpo export-trl, which writes that TRL job).
const CLI_PROCESSES = `trl dpo \\
  --model_name_or_path Qwen/Qwen2.5-0.5B \\
  --dataset_name anthropic/hh-rlhf \\
  --num_processes 4`;
const YAML_PROCESSES = `# dpo_config.yaml
model_name_or_path: Qwen/Qwen2.5-0.5B
dataset_name: anthropic/hh-rlhf
num_processes: 4
`;
const CLI_ACCELERATE = `trl dpo \\
  --model_name_or_path Qwen/Qwen2.5-0.5B \\
  --dataset_name anthropic/hh-rlhf \\
  --accelerate_config zero2`; // the doc's trailing "# or path/to/my/accelerate/config.yaml" is a shell comment
const YAML_ACCELERATE = `# dpo_config.yaml
model_name_or_path: Qwen/Qwen2.5-0.5B
dataset_name: anthropic/hh-rlhf
accelerate_config: zero2  # or path/to/my/accelerate/config.yaml
`;

test('clis.md multi-process recipes (--num_processes 4, --accelerate_config zero2; CLI and YAML): one-line errors, exit 2', () => {
  const processes = /^dpo: dpo train: num_processes 4 is not supported \(several data-parallel processes multiply the global batch; .*dpo export-trl --num_processes N\); remove it or set it to 1$/;
  const accelerate = /^dpo: dpo train: accelerate_config zero2 is not supported \(accelerate launch configurations \(multi-GPU, FSDP, DeepSpeed\) are not run here.*dpo export-trl --distributed fsdp2\|zero3/;
  for (const [r, msg] of [
    [dpo(words(CLI_PROCESSES)), processes],
    [dpo(words('trl dpo --config dpo_config.yaml'), { 'dpo_config.yaml': YAML_PROCESSES }), processes],
    [dpo(words(CLI_ACCELERATE)), accelerate],
    [dpo(words('trl dpo --config dpo_config.yaml'), { 'dpo_config.yaml': YAML_ACCELERATE }), accelerate],
  ] as [Run, RegExp][]) {
    assert.equal(r.code, 2, r.err);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.match(r.err.trim(), msg);
    assert.ok(!existsSync(join(r.cwd, 'dpo_output')));
  }
  // One process is what dpo train is: accepted.
  const one = dpo([...words(CLI_BASIC), '--num_processes', '1', '--max_steps', '1']);
  assert.equal(one.code, 0, one.err);
});
