/**
 * The LoRA variants through `dpo train`: TRL's ModelConfig flags (--use_dora, --lora_modules_to_save,
 * a single --lora_target_modules as a regex) and --peft_config for PEFT's other LoraConfig keys;
 * what is saved; resuming a DoRA + modules_to_save run equals the uninterrupted run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile } from '../../src/io/safetensors.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const tmp = () => mkdtempSync(join(tmpdir(), 'dpo-lora-cli-'));
const dpo = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
};
const train = (out: string, ...extra: string[]) => dpo('train', '--model_name_or_path', 'test/fixtures/models/llama', '--dataset_name', 'examples/dpo_example.json', '--output_dir', out,
  '--per_device_train_batch_size', '2', '--learning_rate', '1e-2', '--logging_steps', '1', '--max_length', '64', '--seed', '3', '--use_peft', '--lora_r', '4', '--lora_alpha', '8', '--lora_dropout', '0', ...extra);

function keysOf(file: string): Map<string, number[]> {
  const f = new SafetensorsFile(file);
  const m = new Map([...f.tensors.values()].map((i) => [i.name, i.shape]));
  f.close();
  return m;
}

const VARIANT = ['--use_dora', '--lora_modules_to_save', 'lm_head', '--lora_target_modules', '.*\\.(q|v)_proj', '--peft_config', '{"rank_pattern": {"v_proj": 2}, "alpha_pattern": {"q_proj": 4}, "init_lora_weights": "gaussian"}'];

test('dpo train with DoRA, modules_to_save, a regex target and peft_config saves what PEFT saves', () => {
  const out = tmp();
  const r = train(out, '--max_steps', '2', ...VARIANT);
  assert.equal(r.code, 0, r.err);
  const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.use_dora, true);
  assert.equal(cfg.target_modules, '.*\\.(q|v)_proj');
  assert.deepEqual(cfg.modules_to_save, ['lm_head']);
  assert.deepEqual(cfg.rank_pattern, { v_proj: 2 });
  assert.deepEqual(cfg.alpha_pattern, { q_proj: 4 });
  assert.equal(cfg.init_lora_weights, 'gaussian');
  const k = keysOf(join(out, 'adapter_model.safetensors'));
  assert.deepEqual(k.get('base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector'), [32]);
  assert.deepEqual(k.get('base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight'), [2, 32]);
  assert.deepEqual(k.get('base_model.model.lm_head.weight'), [320, 32]);
  assert.equal(k.size, 2 * 2 * 3 + 1);
});

test('a single --lora_target_modules value is a regex on the full name, as TRL passes it to PEFT', () => {
  const r = train(tmp(), '--max_steps', '1', '--lora_target_modules', 'q_proj');
  assert.equal(r.code, 2, r.out + r.err);
  assert.match(r.err, /^dpo: LoRA target_modules "q_proj" match no linear layer .*a single target is a regex on the full module name/);
  assert.equal(r.err.trim().split('\n').length, 1);
  const bad = train(tmp(), '--max_steps', '1', '--peft_config', '{"init_lora_weights": "loftq"}');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^dpo: LoraConfig: init_lora_weights must be one of/);
});

test('resuming a DoRA + modules_to_save run from its checkpoint gives the uninterrupted run', () => {
  const full = tmp();
  assert.equal(train(full, '--max_steps', '3', ...VARIANT).code, 0);
  const part = tmp();
  assert.equal(train(part, '--max_steps', '3', '--save_steps', '2', ...VARIANT).code, 0);
  const r = train(part, '--max_steps', '3', '--resume_from_checkpoint', join(part, 'checkpoint-2'), ...VARIANT);
  assert.equal(r.code, 0, r.err);
  const logs = (d: string) => readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => 'loss' in l);
  const a = logs(full).at(-1);
  const b = logs(part).at(-1);
  assert.equal(b.step, 3);
  assert.ok(Math.abs(a.loss - b.loss) < 1e-6, `${a.loss} vs ${b.loss}`);
});
