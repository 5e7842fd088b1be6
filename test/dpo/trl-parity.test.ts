/**
 * Pinned trajectories vs TRL 1.13 + PEFT 0.21 (tools/fixtures/make_trl_runs.py): every logged
 * metric within 1e-4 relative at step 1 and 1e-3 at step 4, for full fine-tuning, continued LoRA,
 * a precomputed reference and many loss types.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCausalLM } from '../../src/models/load.js';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { Dataset } from '../../src/data/dataset.js';
import { DPOConfig } from '../../src/dpo/config.js';
import { DPOTrainer } from '../../src/dpo/trainer.js';
import { loadAdapter } from '../../src/lora/peft-io.js';

const FIX = 'test/fixtures/trl';
const seed = JSON.parse(readFileSync('examples/dpo_example.json', 'utf8')) as Record<string, string[]>;
const conv = {
  prompt: seed.prompt.map((p) => [{ role: 'user', content: p }]),
  chosen: seed.chosen.map((c) => [{ role: 'assistant', content: c }]),
  rejected: seed.rejected.map((r) => [{ role: 'assistant', content: r }]),
};

interface Run {
  case: { name: string; model: string; data: string; lora?: string; args: Record<string, unknown> };
  common: Record<string, unknown>;
  log_history: Record<string, number>[];
}

const SKIP = new Set(['step', 'epoch']);

for (const name of readdirSync(FIX).sort()) {
  test(`TRL parity: ${name}`, async () => {
    const run = JSON.parse(readFileSync(join(FIX, name, 'run.json'), 'utf8')) as Run;
    const dir = join('test/fixtures/models', run.case.model);
    const { model } = loadCausalLM(dir);
    const tok = HfTokenizer.fromDir(dir);
    if (run.case.lora === 'continued') loadAdapter(model, join(FIX, name, 'initial_adapter'));
    const { report_to: _r, bf16: _b, use_cpu: _u, ...common } = run.common;
    const args = new DPOConfig({ ...common, ...run.case.args, output_dir: mkdtempSync(join(tmpdir(), 'dpo-parity-')) });
    const data = run.case.data === 'standard' ? seed : conv;
    const trainer = new DPOTrainer({ model, args, trainDataset: Dataset.fromDict(data), processingClass: tok, warn: () => {} });
    await trainer.train();
    const ours = trainer.state.log_history.filter((h) => 'loss' in h);
    assert.equal(ours.length, run.log_history.length);
    const worst: string[] = [];
    run.log_history.forEach((ref, i) => {
      const tol = i === 0 ? 1e-4 : 1e-3;
      for (const [k, v] of Object.entries(ref)) {
        if (SKIP.has(k) || typeof v !== 'number') continue;
        assert.ok(k in ours[i], `${name}: step ${i + 1} lacks metric ${k}`);
        const err = Math.abs(ours[i][k] - v) / Math.max(Math.abs(v), 1e-3);
        if (err > tol) worst.push(`step ${i + 1} ${k}: ours ${ours[i][k]} vs TRL ${v} (rel ${err.toExponential(2)})`);
      }
      assert.equal(ours[i].step, ref.step);
      assert.ok(Math.abs(ours[i].epoch - ref.epoch) < 1e-9, `${name}: epoch ${ours[i].epoch} vs ${ref.epoch}`);
    });
    assert.deepEqual(worst, []);
  });
}
