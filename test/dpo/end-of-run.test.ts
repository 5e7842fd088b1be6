/**
 * End of run as transformers 5.17's Trainer and precompute_ref_log_probs's storage, beyond the TRL
 * fixture runs (trl-parity.test.ts): best-model defaults and bad combinations, rotation that keeps
 * the best checkpoint, the best weights as the final model, epoch strategies, several eval sets, the
 * reference-keyed cache and the reference log-probs a checkpoint carries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { loadCausalLM } from '../../src/models/load.js';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { Dataset } from '../../src/data/dataset.js';
import { DPOConfig } from '../../src/dpo/config.js';
import { DPOTrainer } from '../../src/dpo/trainer.js';
import { BestModelTracker, checkpointsToDelete } from '../../src/dpo/best-model.js';
import { adaptersOffReference, fixedReference } from '../../src/dpo/reference.js';
import { applyLora, resolveTargets } from '../../src/lora/apply.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { metricsOutside, replayTrlRun } from '../helpers/trl-run.js';

const MODEL = 'test/fixtures/models/llama';
const seed = JSON.parse(readFileSync('examples/dpo_example.json', 'utf8')) as Record<string, string[]>;
const train = Dataset.fromDict(seed);
const swapped = Dataset.fromDict({ prompt: seed.prompt, chosen: seed.rejected, rejected: seed.chosen });
const out = () => mkdtempSync(join(tmpdir(), 'dpo-end-'));
const BASE = { logging_steps: 1, learning_rate: 5e-3, max_length: 64, per_device_train_batch_size: 7, bf16: false, max_steps: 4 };

function trainer(opts: Record<string, unknown>, evalDataset: Dataset | Record<string, Dataset> | null = swapped, warn: (m: string) => void = () => {}) {
  const { model } = loadCausalLM(MODEL);
  return new DPOTrainer({ model, args: new DPOConfig({ output_dir: out(), ...BASE, ...opts }), trainDataset: train, evalDataset, processingClass: HfTokenizer.fromDir(MODEL), warn });
}
const checkpoints = (dir: string) => readdirSync(dir).filter((d) => d.startsWith('checkpoint-')).sort();

test('best-model defaults as transformers: metric loss under load_best_model_at_end, greater_is_better from the name', () => {
  const a = new DPOConfig({ load_best_model_at_end: true, eval_strategy: 'steps', save_steps: 10, eval_steps: 5 });
  assert.equal(a.metricForBestModel, 'loss');
  assert.equal(a.greaterIsBetter, false);
  assert.equal(new DPOConfig({ metric_for_best_model: 'rewards/accuracies' }).greaterIsBetter, true);
  assert.equal(new DPOConfig({ metric_for_best_model: 'eval_loss', greater_is_better: true }).greaterIsBetter, true);
  assert.equal(new DPOConfig().metricForBestModel, null);
  assert.equal(new DPOConfig().greaterIsBetter, null);
});

test('bad best-model settings are one-line errors', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ save_strategy: 'best' }, /^DPOConfig: save_strategy best needs metric_for_best_model/],
    [{ load_best_model_at_end: true, eval_strategy: 'epoch', save_strategy: 'steps' }, /^DPOConfig: load_best_model_at_end needs save_strategy equal to eval_strategy \(or save_strategy best\), got save_strategy steps and eval_strategy epoch$/],
    [{ load_best_model_at_end: true, eval_strategy: 'steps', eval_steps: 3, save_steps: 10 }, /^DPOConfig: load_best_model_at_end needs save_steps \(10\) to be a multiple of eval_steps \(3\)/],
    [{ load_best_model_at_end: true, eval_strategy: 'steps', eval_steps: 0.1, save_steps: 10 }, /a ratio and a step count/],
    [{ metric_for_best_model: '' }, /^DPOConfig: metric_for_best_model is empty/],
    [{ greater_is_better: 'maybe' }, /^DPOConfig: greater_is_better must be true or false/],
    [{ eval_on_start: 'soon' }, /^DPOConfig: eval_on_start must be true or false/],
    [{ save_strategy: 'sometimes' }, /^DPOConfig: save_strategy "sometimes" is not one of steps, epoch, best, no$/],
  ];
  for (const [o, re] of bad) assert.throws(() => new DPOConfig(o), (e: Error) => re.test(e.message) && !e.message.includes('\n'), JSON.stringify(o));
  // Ratios on both sides are fine when one is a multiple of the other (as transformers' integer check).
  assert.doesNotThrow(() => new DPOConfig({ load_best_model_at_end: true, eval_strategy: 'steps', eval_steps: 0.1, save_steps: 0.2 }));
});

test('a metric_for_best_model that no evaluation logs stops at the first evaluation, naming the ones there are', async () => {
  const t = trainer({ eval_strategy: 'steps', eval_steps: 1, metric_for_best_model: 'bleu', save_strategy: 'no' });
  await assert.rejects(t.train(), /^DpoError: metric_for_best_model: eval_bleu is not an evaluation metric; use one of eval_loss, .*eval_rewards\/accuracies/);
});

test('rotation keeps the newest and the best checkpoint (rotate_checkpoints)', () => {
  const all = ['c1', 'c2', 'c3', 'c4'];
  assert.deepEqual(checkpointsToDelete(all, 2, null), ['c1', 'c2']);
  assert.deepEqual(checkpointsToDelete(all, 2, 'c1'), ['c2', 'c3']);
  assert.deepEqual(checkpointsToDelete(all, 1, 'c2'), ['c1', 'c3']);
  assert.deepEqual(checkpointsToDelete(all, null, 'c2'), []);
  const state = { global_step: 3, best_metric: null, best_global_step: null, best_model_checkpoint: null };
  const tr = new BestModelTracker({ metricForBestModel: 'loss', greaterIsBetter: false, loadBestModelAtEnd: true, saveStrategy: 'steps', evalStrategy: 'steps', saveSteps: 1, evalSteps: 1, loggingSteps: 1 });
  assert.equal(tr.update(state, { eval_loss: 2 }), true);
  assert.equal(tr.update({ ...state }, { eval_loss: 3 }), false);
  assert.deepEqual([state.best_metric, state.best_global_step], [2, 3]);
});

test('load_best_model_at_end: the best checkpoint\'s weights are the final model, save_total_limit 2 keeps it and the newest', async () => {
  // On the swapped eval set the eval loss rises from step 1: step 1 is best.
  const t = trainer({ eval_strategy: 'steps', eval_steps: 1, save_steps: 1, load_best_model_at_end: true, save_total_limit: 2 });
  await t.train();
  const dir = t.args.outputDir;
  assert.deepEqual(checkpoints(dir), ['checkpoint-1', 'checkpoint-4']);
  const final = JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8'));
  assert.equal(final.best_global_step, 1);
  assert.equal(basename(final.best_model_checkpoint), 'checkpoint-1');
  assert.equal(final.best_metric, t.state.log_history.find((e) => 'eval_loss' in e)!.eval_loss);
  const inCheckpoint = JSON.parse(readFileSync(join(dir, 'checkpoint-4', 'trainer_state.json'), 'utf8'));
  assert.equal(basename(inCheckpoint.best_model_checkpoint), 'checkpoint-1');
  const a = new SafetensorsFile(join(dir, 'model.safetensors')), b = new SafetensorsFile(join(dir, 'checkpoint-1', 'model.safetensors'));
  try {
    for (const name of a.tensors.keys()) assert.deepEqual(a.read(name), b.read(name), name);
  } finally {
    a.close();
    b.close();
  }
});

test('save_total_limit 1 with a best checkpoint: only the best stays at the end', async () => {
  const t = trainer({ eval_strategy: 'steps', eval_steps: 1, save_steps: 1, load_best_model_at_end: true, save_total_limit: 1 });
  await t.train();
  assert.deepEqual(checkpoints(t.args.outputDir), ['checkpoint-1']);
});

test('epoch strategies: each epoch ends with an evaluation then a checkpoint, the last (partial) epoch too', async () => {
  // 7 pairs, batch 2: 4 steps per epoch; max_steps 6 stops in epoch 2.
  const t = trainer({ per_device_train_batch_size: 2, max_steps: 6, eval_strategy: 'epoch', save_strategy: 'epoch', load_best_model_at_end: true });
  await t.train();
  assert.deepEqual(t.state.log_history.filter((e) => 'eval_loss' in e).map((e) => e.step), [4, 6]);
  assert.deepEqual(checkpoints(t.args.outputDir), ['checkpoint-4', 'checkpoint-6']);
  assert.equal(t.state.best_global_step, 4);
});

test('save_strategy no: no checkpoint at the end either; the final model is still written', async () => {
  const t = trainer({ save_strategy: 'no' }, null);
  await t.train();
  assert.deepEqual(checkpoints(t.args.outputDir), []);
  assert.ok(existsSync(join(t.args.outputDir, 'model.safetensors')));
});

test('several eval sets: one entry each, eval_<name>_loss, and the best metric may name any of them', async () => {
  const t = trainer({ eval_strategy: 'steps', eval_steps: 2, save_strategy: 'best', metric_for_best_model: 'eval_same_loss' }, { swapped, same: train });
  await t.train();
  const evals = t.state.log_history.filter((e) => Object.keys(e).some((k) => k.startsWith('eval_')));
  assert.deepEqual(evals.map((e) => [e.step, Object.keys(e).find((k) => k.endsWith('_loss'))]), [[2, 'eval_swapped_loss'], [2, 'eval_same_loss'], [4, 'eval_swapped_loss'], [4, 'eval_same_loss']]);
  for (const k of ['eval_rewards/margins', 'eval_same_runtime']) assert.ok(k in evals[1], k);
  // Training on the same pairs lowers their loss: each evaluation is a new best, so each saves.
  assert.equal(t.state.best_global_step, 4);
  assert.deepEqual(checkpoints(t.args.outputDir), ['checkpoint-2', 'checkpoint-4']);
});

test('the precomputed cache is keyed by the reference\'s weights: adapters off ignore the adapter, an explicit ref_model its policy', () => {
  const key = (ref: { hashWeights(h: ReturnType<typeof createHash>): void }) => {
    const h = createHash('sha256');
    ref.hashWeights(h);
    return h.digest('hex');
  };
  const withAdapter = (seedValue: number) => {
    const { model } = loadCausalLM(MODEL);
    applyLora(model, { r: 4, alpha: 8, dropout: 0, useRslora: false }, resolveTargets(model, null), seedValue);
    return model;
  };
  const [m1, m2] = [withAdapter(1), withAdapter(2)];
  // Fresh adapters from other seeds: other A, same base, same reference.
  assert.equal(key(adaptersOffReference(m1)), key(adaptersOffReference(m2)));
  assert.notEqual(key(fixedReference(m1)), key(fixedReference(m2)));
  const ref = loadCausalLM(MODEL).model;
  const before = key(fixedReference(ref));
  const policy = loadCausalLM(MODEL).model;
  policy.parameters()[0].data[0] += 1;
  assert.equal(key(fixedReference(ref)), before);
  assert.notEqual(key(fixedReference(policy)), before);
});

test('precompute: checkpoints carry the train and eval reference log-probs; a resume on other data warns and recomputes', async () => {
  const t = trainer({ precompute_ref_log_probs: true, eval_strategy: 'steps', eval_steps: 2, save_steps: 2 });
  await t.train();
  const ck = join(t.args.outputDir, 'checkpoint-2');
  for (const f of ['ref_logps-train.f64', 'ref_logps-eval.f64', 'ref_logps.json']) assert.ok(existsSync(join(ck, f)), f);
  const index = JSON.parse(readFileSync(join(ck, 'ref_logps.json'), 'utf8'));
  assert.deepEqual(Object.keys(index), ['train', 'eval']);
  assert.equal(index.train.pairs, 7);
  // The stored values are the ones the run used.
  const buf = readFileSync(join(ck, 'ref_logps-train.f64'));
  const stored = new Float64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  assert.deepEqual(stored, t.refCache.get('train')!.values);
  // Resume with other training data (one pair fewer): the stored values do not fit; a warning says so.
  const warnings: string[] = [];
  const { model } = loadCausalLM(MODEL);
  const fewer = Dataset.fromDict({ prompt: seed.prompt.slice(1), chosen: seed.chosen.slice(1), rejected: seed.rejected.slice(1) });
  const r = new DPOTrainer({ model, args: t.args, trainDataset: fewer, evalDataset: swapped, processingClass: HfTokenizer.fromDir(MODEL), warn: (m) => warnings.push(m) });
  await r.train({ resumeFromCheckpoint: ck });
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0], /checkpoint-2: its precomputed reference log-probs for train were made for other data or settings; computing them from the model as loaded/);
});

test('eval_on_start logs an evaluation at step 0, before any update (eval loss ln 2)', async () => {
  const t = trainer({ eval_on_start: true, eval_strategy: 'steps', eval_steps: 10, save_strategy: 'no' }, train);
  await t.train();
  const evals = t.state.log_history.filter((e) => 'eval_loss' in e);
  assert.deepEqual(evals.map((e) => e.step), [0, 4]);
  assert.ok(Math.abs(evals[0].eval_loss - Math.LN2) < 1e-6, `${evals[0].eval_loss}`);
});

test('precompute without a ref_model: an eval set whose reference was not computed before the first update is an error, as TRL', () => {
  const t = trainer({ precompute_ref_log_probs: true, eval_strategy: 'steps', save_strategy: 'no' });
  t.state.global_step = 1;  // as if training had moved the policy (the reference) already
  assert.throws(() => t.evaluate(), /^DpoError: precompute_ref_log_probs: the reference log-probs of eval were not computed before training, and the policy is the reference only until the first update/);
});

test('continued adapter + precompute, resumed from checkpoint-2\'s own (trained) adapter: TRL\'s numbers of the uninterrupted run', async () => {
  // The reference is the initial adapter: only the log-probs stored in checkpoint-2 still know it.
  // (TRL 1.13 itself does not restore such an adapter on resume, so its uninterrupted run is the reference.)
  const { run, ours } = await replayTrlRun('llama-lora-continued', { precompute_ref_log_probs: true, save_strategy: 'steps', save_steps: 2 }, { resumeAt: 2 });
  assert.deepEqual(metricsOutside(run.log_history, ours), []);
});
