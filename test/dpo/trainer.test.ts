/** Trainer behaviour: ln 2 at step 1, gradient accumulation = the larger batch, precomputed-reference cache, checkpoint limits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCausalLM } from '../../src/models/load.js';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { Dataset } from '../../src/data/dataset.js';
import { DPOConfig } from '../../src/dpo/config.js';
import { DPOTrainer } from '../../src/dpo/trainer.js';
import { LoraConfig } from '../../src/lora/config.js';

const MODEL = 'test/fixtures/models/llama';
const seed = JSON.parse(readFileSync('examples/dpo_example.json', 'utf8')) as Record<string, string[]>;
const eight = Dataset.fromDict({ prompt: [...seed.prompt, 'hello'], chosen: [...seed.chosen, 'hi'], rejected: [...seed.rejected, 'go away'] });
const out = () => mkdtempSync(join(tmpdir(), 'dpo-tr-'));

async function run(opts: Record<string, unknown>, peft: LoraConfig | null = null) {
  const { model } = loadCausalLM(MODEL);
  const args = new DPOConfig({ output_dir: out(), logging_steps: 1, learning_rate: 1e-3, max_length: 64, save_strategy: 'no', ...opts });
  const t = new DPOTrainer({ model, args, trainDataset: eight, processingClass: HfTokenizer.fromDir(MODEL), peftConfig: peft, warn: () => {} });
  await t.train();
  return t;
}

test('step-1 loss is ln 2 when the policy equals the reference (sigmoid, full and LoRA)', async () => {
  for (const peft of [null, new LoraConfig({ r: 4, lora_alpha: 8 })]) {
    const t = await run({ per_device_train_batch_size: 8, max_steps: 1 }, peft);
    const first = t.state.log_history[0];
    assert.ok(Math.abs(first.loss - Math.LN2) < 1e-6, `loss ${first.loss}`);
    assert.equal(first['rewards/margins'], 0);
  }
});

test('batches are packed whether padding_free is set or not, with the prompt shared (same log history); with LoRA dropout kept on, prompts are not shared and step 1 still gives exact zeros', async () => {
  const a = await run({ per_device_train_batch_size: 4, max_steps: 2 });
  const b = await run({ per_device_train_batch_size: 4, max_steps: 2, padding_free: true });
  const strip = (h: Record<string, number>[]) => h.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !/_(runtime|per_second)$/.test(k))));
  assert.deepEqual(strip(b.state.log_history), strip(a.state.log_history));
  // Prompt sharing changes the packed batch, not the numbers (within rounding: bf16 compute, TRL's default, rounds the GEMM operands).
  const c = await run({ per_device_train_batch_size: 4, max_steps: 2, share_prompt: false });
  for (let i = 0; i < 2; i++) for (const k of ['loss', 'logps/chosen', 'logps/rejected']) {
    const x = a.state.log_history[i][k], y = c.state.log_history[i][k];
    assert.ok(Math.abs(x - y) <= 1e-3 * Math.max(1, Math.abs(x)), `step ${i + 1} ${k}: ${x} vs ${y}`);
  }
  const d = await run({ per_device_train_batch_size: 4, max_steps: 1, disable_dropout: false }, new LoraConfig({ r: 4, lora_alpha: 8, lora_dropout: 0.1 }));
  assert.equal(d.state.log_history[0]['rewards/margins'], 0);
  assert.ok(Math.abs(d.state.log_history[0].loss - Math.LN2) < 1e-6);
});

test('gradient accumulation 4×2 equals one batch of 8', async () => {
  const a = await run({ per_device_train_batch_size: 8, gradient_accumulation_steps: 1, max_steps: 2 });
  const b = await run({ per_device_train_batch_size: 2, gradient_accumulation_steps: 4, max_steps: 2 });
  for (let i = 0; i < 2; i++) {
    for (const k of ['loss', 'grad_norm', 'rewards/chosen', 'logps/rejected']) {
      const x = a.state.log_history[i][k], y = b.state.log_history[i][k];
      assert.ok(Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(x)), `step ${i + 1} ${k}: ${x} vs ${y}`);
    }
  }
  const pa = new Map(a.model.namedParameters()), pb = new Map(b.model.namedParameters());
  let worst = 0;
  for (const [n, p] of pa) for (let i = 0; i < p.size; i++) worst = Math.max(worst, Math.abs(p.data[i] - pb.get(n)!.data[i]));
  // Adam's first steps move a weight by ~lr whatever its gradient's size, so float32 rounding of a tiny gradient (the two runs pack different batches) can show at ~1e-5.
  assert.ok(worst <= 3e-5, `weights differ by ${worst}`);
});

test('precomputed reference log-probs are cached on disk and reused', async () => {
  const dir = out();
  const a = await run({ per_device_train_batch_size: 4, max_steps: 2, precompute_ref_log_probs: true, output_dir: dir });
  const cache = readdirSync(dir).filter((f) => f.startsWith('ref_logps-train-'));
  assert.equal(cache.length, 1);
  let calls = 0;
  const { model } = loadCausalLM(MODEL);
  const t = new DPOTrainer({ model, args: new DPOConfig({ output_dir: dir, logging_steps: 1, learning_rate: 1e-3, max_length: 64, save_strategy: 'no', per_device_train_batch_size: 4, max_steps: 2, precompute_ref_log_probs: true }), trainDataset: eight, processingClass: HfTokenizer.fromDir(MODEL), warn: () => {} });
  t.callbacks.onRefProgress = () => calls++;
  await t.train();
  assert.equal(calls, 0, 'the cached reference log-probs were recomputed');
  assert.deepEqual(t.state.log_history.map((e) => e.loss), a.state.log_history.map((e) => e.loss));
});

test('precomputed reference log-probs stay aligned with their pairs when a row is dropped (prompt fills max_length)', async () => {
  // Row 0 is dropped, so every later pair's position in the split is one less than its data-set row.
  const withDrop = Dataset.fromDict({ prompt: ['word '.repeat(200), ...seed.prompt], chosen: ['yes', ...seed.chosen], rejected: ['no', ...seed.rejected] });
  const ds = () => ({ output_dir: out(), logging_steps: 1, learning_rate: 1e-3, max_length: 64, save_strategy: 'no', per_device_train_batch_size: 2, max_steps: 3, bf16: false, gradient_checkpointing: false });
  const train = async (precompute: boolean) => {
    const { model } = loadCausalLM(MODEL);
    const t = new DPOTrainer({ model, args: new DPOConfig({ ...ds(), precompute_ref_log_probs: precompute }), trainDataset: withDrop, processingClass: HfTokenizer.fromDir(MODEL), warn: () => {} });
    await t.train();
    return t.state.log_history.filter((e) => 'loss' in e);
  };
  const [pre, live] = [await train(true), await train(false)];
  assert.equal(pre[0]['rewards/margins'], 0);
  assert.equal(pre[0]['rewards/accuracies'], 0);
  pre.forEach((e, i) => {
    for (const k of ['loss', 'rewards/chosen', 'rewards/rejected', 'logps/chosen']) assert.ok(Math.abs(e[k] - live[i][k]) < 1e-5, `step ${i + 1} ${k}: precomputed ${e[k]} vs live reference ${live[i][k]}`);
  });
});

test('checkpoints every save_steps, at most save_total_limit kept, none half-written', async () => {
  const dir = out();
  await run({ per_device_train_batch_size: 4, max_steps: 5, save_strategy: 'steps', save_steps: 1, save_total_limit: 2, output_dir: dir });
  const ck = readdirSync(dir).filter((d) => d.startsWith('checkpoint-')).sort();
  // As transformers: the last step (5) saves a checkpoint too; the two newest stay.
  assert.deepEqual(ck, ['checkpoint-4', 'checkpoint-5']);
  assert.ok(!readdirSync(dir).some((d) => d.includes('.tmp-')));
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'scheduler.json', 'rng_state.json', 'trainer_state.json', 'training_args.json']) assert.ok(existsSync(join(dir, 'checkpoint-4', f)), f);
  const st = JSON.parse(readFileSync(join(dir, 'checkpoint-4', 'trainer_state.json'), 'utf8'));
  assert.equal(st.global_step, 4);
  assert.equal(st.log_history.length, 4);
});

test('LoRA trains only the adapters; the base weights stay bit-identical', async () => {
  const before = new Map(loadCausalLM(MODEL).model.namedParameters().map(([n, p]) => [n, Float32Array.from(p.data)]));
  const t = await run({ per_device_train_batch_size: 4, max_steps: 2 }, new LoraConfig({ r: 4, lora_alpha: 8, target_modules: 'all-linear' }));
  let changedAdapters = 0;
  for (const [n, p] of t.model.namedParameters()) {
    if (n.includes('lora_')) {
      if (n.includes('lora_B') && p.data.some((v) => v !== 0)) changedAdapters++;
      continue;
    }
    const orig = before.get(n.replace('.base_layer', ''))!;
    assert.deepEqual(p.data, orig, `${n} changed`);
  }
  assert.ok(changedAdapters > 0);
});

test('eval every eval_steps logs eval_-prefixed metrics; TR-DPO sync moves the reference', async () => {
  const t = await run({ per_device_train_batch_size: 4, max_steps: 2, eval_strategy: 'steps', eval_steps: 1 });
  void t;
  const { model } = loadCausalLM(MODEL);
  const args = new DPOConfig({ output_dir: out(), logging_steps: 1, learning_rate: 1e-2, max_length: 64, save_strategy: 'no', per_device_train_batch_size: 8, max_steps: 2, eval_strategy: 'steps', eval_steps: 1, sync_ref_model: true, ref_model_sync_steps: 1, ref_model_mixup_alpha: 1 });
  const tr = new DPOTrainer({ model, args, trainDataset: eight, evalDataset: eight, processingClass: HfTokenizer.fromDir(MODEL), warn: () => {} });
  await tr.train();
  const evals = tr.state.log_history.filter((e) => 'eval_loss' in e);
  assert.equal(evals.length, 2);
  for (const k of ['eval_rewards/accuracies', 'eval_rewards/margins', 'eval_logps/chosen', 'eval_runtime']) assert.ok(k in evals[0], k);
  // With mixup alpha 1 the reference becomes the policy after each step: the eval rewards are 0.
  assert.ok(Math.abs(evals[1]['eval_rewards/margins']) < 1e-6, `margin ${evals[1]['eval_rewards/margins']}`);
});

test('invalid rows stop the run unless skip_invalid_rows', () => {
  const bad = Dataset.fromList([...eight.rows, { prompt: 'x', chosen: '', rejected: 'y' }]);
  const mk = (o: Record<string, unknown>) => new DPOTrainer({ model: loadCausalLM(MODEL).model, args: new DPOConfig({ output_dir: out(), max_length: 64, ...o }), trainDataset: bad, processingClass: HfTokenizer.fromDir(MODEL), warn: () => {} });
  assert.throws(() => mk({}), /1 of 9 rows are invalid; fix them or pass --skip_invalid_rows/);
  assert.equal(mk({ skip_invalid_rows: true }).data.train.length, 8);
});

test('gradient_checkpointing logs the same metrics step for step (full, and LoRA with dropout)', async () => {
  const base = { per_device_train_batch_size: 4, max_steps: 3 };
  const cases: [Record<string, unknown>, LoraConfig | null][] = [
    [base, null],
    [{ ...base, disable_dropout: false }, new LoraConfig({ r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: 'all-linear' })],
  ];
  for (const [opts, peft] of cases) {
    const a = await run({ ...opts, gradient_checkpointing: false }, peft);
    const b = await run({ ...opts, gradient_checkpointing: true }, peft);
    assert.equal(b.model.gradientCheckpointing, true);
    assert.equal(a.state.log_history.filter((e) => 'loss' in e).length, 3);
    assert.equal(b.state.log_history.length, a.state.log_history.length);
    for (let i = 0; i < a.state.log_history.length; i++) {
      for (const [k, x] of Object.entries(a.state.log_history[i])) {
        if (/runtime|per_second/.test(k)) continue;
        assert.equal(b.state.log_history[i][k], x, `${peft ? 'LoRA' : 'full'} step ${i + 1} ${k}`);
      }
    }
  }
});
