/** iterativeDPO: rounds, per-round resume after an interrupt (same weights and records as an uninterrupted run), ref_update, errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicy } from '../../src/cli/load-policy.js';
import { DPOConfig } from '../../src/dpo/config.js';
import { DPOTrainer } from '../../src/dpo/trainer.js';
import { iterativeDPO, iterativeHistory, type IterativeDPOOptions } from '../../src/dpo/iterative.js';
import { additionJudge, sample, split } from '../../src/demo/addition.js';

const ADDER = 'assets/demo-adder';
const { train, heldOut } = split();
const rows = sample(train, 24, 5).map((p) => ({ prompt: p.prompt }));
const held = sample(heldOut, 6, 6).map((p) => ({ prompt: p.prompt }));

function options(out: string, extra: Partial<IterativeDPOOptions> = {}): IterativeDPOOptions {
  const { model, tokenizer } = loadPolicy(ADDER);
  return {
    model, tokenizer, prompts: rows, judge: additionJudge, iterations: 2,
    args: new DPOConfig({ output_dir: out, per_device_train_batch_size: 4, num_train_epochs: 1, learning_rate: 5e-5, logging_steps: 1, save_steps: 1, gradient_checkpointing: false, bf16: false, seed: 3 }),
    generation: { numGenerations: 4, maxNewTokens: 5, temperature: 1, topK: 0 },
    heldOut: { prompts: held, numSamples: 2, maxNewTokens: 5 },
    ...extra,
  };
}

const params = (o: IterativeDPOOptions) => o.model.namedParameters().map(([n, p]) => [n, Array.from(p.data)] as const);

test('iterativeDPO: an interrupted round resumes at its round and step, ending with the uninterrupted run\'s weights and records', async () => {
  const straight = options(mkdtempSync(join(tmpdir(), 'dpo-iter-a-')));
  const a = await iterativeDPO(straight);
  assert.equal(a.completed, true);
  assert.deepEqual(a.records.map((r) => r.round), [0, 1, 2]);
  assert.ok(a.records[1].pairs > 3 && a.records[1].steps > 1, JSON.stringify(a.records[1]));
  assert.equal(a.records[0].heldout_kl, 0);
  // An unbiased estimate on 12 samples: not 0 once the policy moved (it may come out either side of the small true KL).
  assert.ok(Number.isFinite(a.records[2].heldout_kl) && a.records[2].heldout_kl !== 0);

  const dir = mkdtempSync(join(tmpdir(), 'dpo-iter-b-'));
  // Stopped after round 2's first optimizer step (a checkpoint is saved, as for Ctrl-C).
  const stopped = options(dir, {
    train: async (init, resumeFrom, k) => {
      const t = new DPOTrainer({ ...init, callbacks: { onStep: () => { if (k === 2) t.stopRequested = true; } } });
      const out = await t.train({ resumeFromCheckpoint: resumeFrom });
      return out.interrupted ? null : t;
    },
  });
  const b1 = await iterativeDPO(stopped);
  assert.equal(b1.completed, false);
  assert.deepEqual(b1.records.map((r) => r.round), [0, 1]);
  assert.ok(existsSync(join(dir, 'round-2', 'checkpoint-1', 'trainer_state.json')));
  assert.ok(!existsSync(join(dir, 'round-2', 'round.json')));
  // A fresh process's view: the starting model again, resume.
  let resumedFrom: string | null = 'unset';
  const resumed = options(dir, {
    resume: true,
    train: async (init, resumeFrom) => {
      resumedFrom = resumeFrom;
      const t = new DPOTrainer(init);
      await t.train({ resumeFromCheckpoint: resumeFrom });
      return t;
    },
  });
  const b2 = await iterativeDPO(resumed);
  assert.equal(b2.completed, true);
  assert.equal(resumedFrom, 'latest');
  assert.deepEqual(b2.records, a.records);
  assert.deepEqual(params(resumed), params(straight));
  // One history across rounds, steps continuing.
  const h = iterativeHistory(dir, 2).filter((e) => 'loss' in e);
  assert.deepEqual(h.map((e) => e.step), Array.from({ length: h.length }, (_, i) => i + 1));
  assert.deepEqual([...new Set(h.map((e) => e.round))], [1, 2]);
});

test('iterativeDPO: ref_update initial trains against the starting model (other weights than round); bad settings are one-line errors', async () => {
  const r = options(mkdtempSync(join(tmpdir(), 'dpo-iter-r-')));
  const i = options(mkdtempSync(join(tmpdir(), 'dpo-iter-i-')), { refUpdate: 'initial' });
  const ra = await iterativeDPO(r);
  const ia = await iterativeDPO(i);
  // Round 1 is the same either way (the reference is the starting model in both), round 2 differs.
  assert.equal(ra.records[1].train_loss, ia.records[1].train_loss);
  assert.notDeepEqual(params(r), params(i));
  await assert.rejects(iterativeDPO(options(mkdtempSync(join(tmpdir(), 'dpo-iter-e-')), { iterations: 0 })), /^DpoError: iterations must be a whole number ≥ 1, got 0$/);
  await assert.rejects(iterativeDPO(options(mkdtempSync(join(tmpdir(), 'dpo-iter-e-')), { refUpdate: 'base' as never })), /ref_update must be one of round, initial, got base/);
  await assert.rejects(iterativeDPO(options(r.args.outputDir)), /already holds a finished round of an iterative run; continue it with --resume_from_checkpoint true, or choose another --output_dir/);
});

test('dpo train --judge --prompts --iterations: rounds, two β curves in one report, one-line errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-iter-cli-'));
  writeFileSync(join(dir, 'judge.mjs'), "export default (p, c) => { const [a, b] = p.slice(0, -1).split('+').map(Number); return c.trim() === String(a + b) ? 1 : 0; };\n");
  writeFileSync(join(dir, 'prompts.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n'));
  writeFileSync(join(dir, 'heldout.jsonl'), held.map((r) => JSON.stringify(r)).join('\n'));
  const CLI = join(process.cwd(), 'dist/src/cli/main.js');
  const base = ['train', '--model_name_or_path', ADDER, '--judge', join(dir, 'judge.mjs'), '--prompts', join(dir, 'prompts.jsonl')];
  const run = (...a: string[]) => spawnSync(process.execPath, [CLI, ...base, ...a], { encoding: 'utf8', timeout: 300_000 });
  const out = join(dir, 'out');
  const r = run('--eval_prompts', join(dir, 'heldout.jsonl'), '--iterations', '1', '--beta', '0.1', '0.5', '--output_dir', out, '--max_new_tokens', '5', '--top_k', '0',
    '--per_device_train_batch_size', '4', '--learning_rate', '5e-5', '--no_bf16', '--no_gradient_checkpointing', '--logging_steps', '1', '--quiet');
  assert.equal(r.status, 0, r.stderr);
  for (const b of ['0.1', '0.5']) {
    const rec = JSON.parse(readFileSync(join(out, `beta-${b}`, 'round-1', 'round.json'), 'utf8')) as Record<string, number>;
    assert.equal(rec.beta, Number(b));
    assert.ok(rec.steps > 0 && Number.isFinite(rec.heldout_kl));
    assert.ok(existsSync(join(out, `beta-${b}`, 'round-1', 'model.safetensors')));
  }
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /Reward–KL frontier/);
  assert.match(html, /data-key="frontier@0" data-points="2"/);
  assert.match(html, /data-key="frontier@1" data-points="2"/);
  const err = (a: string[], msg: string) => {
    const e = run(...a);
    assert.equal(e.status, 2, e.stdout);
    assert.equal(e.stderr.trim(), `dpo: ${msg}`);
  };
  err(['--use_peft'], 'dpo train: iterative DPO trains the full model (--use_peft is not supported with --judge); drop --use_peft');
  err(['--dataset_name', 'x.jsonl'], 'dpo train: --dataset_name is a fixed preference data set; iterative DPO makes its pairs from --prompts each round, pass only one of them');
  err(['--ref_update', 'base'], 'dpo train: ref_update "base" is not one of round, initial');
  err(['--resume_from_checkpoint', 'ckpt'], 'dpo train: with --judge, --resume_from_checkpoint takes true (continue the run in --output_dir), got ckpt');
  err(['--temperature', '0'], 'dpo train: --temperature must be > 0 (at 0 every completion is the same greedy one, so no pair exists)');
});
