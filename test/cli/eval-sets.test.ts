/** `dpo train` end of run from the command line: several eval sets (--dataset_test_split a,b), the best checkpoint, and their bad inputs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const tmp = () => mkdtempSync(join(tmpdir(), 'dpo-evalsets-'));
function dpo(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
const BASE = ['train', '--model_name_or_path', 'test/fixtures/models/llama', '--dataset_name', 'test/fixtures/data/hfdir', '--max_steps', '2', '--per_device_train_batch_size', '4', '--max_length', '64', '--no_bf16', '--quiet'];

test('--dataset_test_split test,train evaluates each split apart; --load_best_model_at_end records the best checkpoint', () => {
  const out = tmp();
  const r = dpo(...BASE, '--output_dir', out, '--eval_strategy', 'steps', '--eval_steps', '1', '--save_steps', '1', '--dataset_test_split', 'test,train', '--load_best_model_at_end', '--metric_for_best_model', 'train_loss');
  assert.equal(r.code, 0, r.err + r.out);
  const log = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const losses = log.map((e) => Object.keys(e).find((k) => /^eval_.*_loss$/.test(k))).filter(Boolean);
  assert.deepEqual(losses, ['eval_test_loss', 'eval_train_loss', 'eval_test_loss', 'eval_train_loss']);
  const state = JSON.parse(readFileSync(join(out, 'trainer_state.json'), 'utf8'));
  // Training lowers the loss on the training split: step 2 is best.
  assert.equal(state.best_global_step, 2);
  assert.equal(basename(state.best_model_checkpoint), 'checkpoint-2');
  assert.deepEqual(readdirSync(out).filter((d) => d.startsWith('checkpoint-')).sort(), ['checkpoint-1', 'checkpoint-2']);
});

test('YAML: dataset_test_split as a list evaluates each split, as the comma list does', () => {
  const out = tmp();
  const cfg = join(out, 'run.yaml');
  writeFileSync(cfg, 'eval_strategy: steps\neval_steps: 2\nsave_strategy: "no"\ndataset_test_split:\n  - test\n  - train\n');
  const r = dpo(...BASE, '--output_dir', out, '--config', cfg);
  assert.equal(r.code, 0, r.err + r.out);
  const log = readFileSync(join(out, 'metrics.jsonl'), 'utf8');
  assert.match(log, /"eval_test_loss"/);
  assert.match(log, /"eval_train_loss"/);
});

test('bad eval-set and best-model flags stop with one line', () => {
  const out = tmp();
  const cases: [string[], RegExp][] = [
    [['--eval_strategy', 'steps', '--dataset_test_split', 'test,test'], /^dpo: dpo train: --dataset_test_split test,test names a split twice; list each once$/m],
    [['--eval_strategy', 'steps', '--dataset_test_split', ','], /^dpo: dpo train: --dataset_test_split is empty/m],
    [['--save_strategy', 'best'], /^dpo: dpo train: save_strategy best needs metric_for_best_model/m],
    [['--load_best_model_at_end', '--eval_strategy', 'epoch'], /^dpo: dpo train: load_best_model_at_end needs save_strategy equal to eval_strategy/m],
  ];
  for (const [flags, re] of cases) {
    const r = dpo(...BASE, '--output_dir', out, ...flags);
    assert.notEqual(r.code, 0, flags.join(' '));
    assert.match(r.err, re, `${flags.join(' ')}: ${r.err}`);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  }
});
