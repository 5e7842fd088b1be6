/**
 * A data set of real size (thousands of pairs, millions of token ids) trains: nothing that walks the
 * whole set spreads it into one call (a 4,000-pair set used to stop with "Maximum call stack size
 * exceeded" before the first step), and the tokenising progress reaches every row.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCausalLM } from '../../src/models/load.js';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { Dataset } from '../../src/data/dataset.js';
import { DPOConfig } from '../../src/dpo/config.js';
import { DPOTrainer } from '../../src/dpo/trainer.js';
import { renderReport } from '../../src/report/html-report.js';
import { syntheticRows } from '../../bench/synthetic-pairs.js';

const MODEL = 'test/fixtures/models/llama';

test('3,200 pairs (> 2M token ids) validate, tokenise and train two steps', async () => {
  const n = 3200;
  const ds = Dataset.fromList(syntheticRows(n, { seed: 5, promptWords: [20, 60], completionWords: [30, 90] }));
  const { model } = loadCausalLM(MODEL);
  const args = new DPOConfig({ output_dir: mkdtempSync(join(tmpdir(), 'dpo-big-')), per_device_train_batch_size: 2, max_steps: 2, logging_steps: 1, learning_rate: 1e-3, max_length: 64, truncation_mode: 'keep_end', save_strategy: 'no' });
  let lastDone = 0;
  const t = new DPOTrainer({
    model, args, trainDataset: ds, processingClass: HfTokenizer.fromDir(MODEL), warn: () => {},
    callbacks: { onDataProgress: (split, done, total) => { assert.equal(split, 'train'); assert.equal(total, n); assert.ok(done >= lastDone); lastDone = done; } },
  });
  assert.equal(lastDone, n);
  assert.equal(t.data.train.length, n);
  let ids = 0;
  for (const p of t.data.train) ids += p.promptIds.length + p.chosenIds.length + p.rejectedIds.length;
  assert.ok(ids >= 2_000_000, `only ${ids} token ids: the set no longer exercises argument limits`);
  await t.train();
  const losses = t.state.log_history.filter((e) => 'loss' in e).map((e) => e.loss);
  assert.equal(losses.length, 2);
  assert.ok(Math.abs(losses[0] - Math.LN2) < 1e-6, `step-1 loss ${losses[0]}`);
  assert.ok(Number.isFinite(losses[1]));
});

test('the HTML report charts a log history longer than any argument list', () => {
  const history = Array.from({ length: 300_000 }, (_, i) => ({ step: i + 1, loss: 1 / (i + 1) }));
  const html = renderReport({ title: 'long', history, settings: {} });
  assert.match(html, /data-key="loss" data-points="300000"/);
});
