/**
 * Pinned trajectories vs TRL 1.13 + PEFT 0.21 (tools/fixtures/make_trl_runs.py): every logged
 * metric (training steps and evaluations) within 1e-4 relative at step 1 (and an evaluation at
 * step 0) and 1e-3 later, for full fine-tuning, continued LoRA, a precomputed reference (with resume
 * and eval), many loss types, best-model selection, eval_on_start and several eval sets; and where
 * TRL saved checkpoints, the same checkpoint-N left and the same best_metric / best_model_checkpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { TRL_FIXTURES as FIX, replayTrlRun } from '../helpers/trl-run.js';
import { checkpointDirs } from '../../src/dpo/checkpoint.js';

const SKIP = new Set(['step', 'epoch']);
/** Wall-clock metrics (eval_runtime, eval_samples_per_second, ...). */
const TIMING = /_(runtime|per_second)$/;
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-3);

for (const name of readdirSync(FIX).sort()) {
  test(`TRL parity: ${name}`, async () => {
    const { run, ours, trainer, evaluateAfter } = await replayTrlRun(name);
    assert.deepEqual(ours.map((e) => Object.keys(e).find((k) => k.endsWith('loss'))), run.log_history.map((e) => Object.keys(e).find((k) => k.endsWith('loss'))), `${name}: the logged entries (training steps, evaluations) differ`);
    const worst: string[] = [];
    run.log_history.forEach((ref, i) => {
      const tol = ref.step <= 1 ? 1e-4 : 1e-3;
      for (const [k, v] of Object.entries(ref)) {
        if (SKIP.has(k) || TIMING.test(k) || typeof v !== 'number') continue;
        // TRL 1.13 does not keep its token count in checkpoints (it restarts from 0 on resume); ours does.
        if (k === 'num_tokens' && run.case.resume_at && ref.step > run.case.resume_at) continue;
        assert.ok(k in ours[i], `${name}: entry ${i} (step ${ref.step}) lacks metric ${k}`);
        const err = rel(ours[i][k], v);
        if (err > tol) worst.push(`step ${ref.step} ${k}: ours ${ours[i][k]} vs TRL ${v} (rel ${err.toExponential(2)})`);
      }
      assert.equal(ours[i].step, ref.step);
      assert.ok(Math.abs(ours[i].epoch - ref.epoch) < 1e-9, `${name}: epoch ${ours[i].epoch} vs ${ref.epoch}`);
    });
    for (const [k, v] of Object.entries(run.evaluate_after ?? {})) {
      if (SKIP.has(k) || TIMING.test(k)) continue;
      if (rel(evaluateAfter![k], v) > 1e-3) worst.push(`evaluate() after training ${k}: ours ${evaluateAfter![k]} vs TRL ${v}`);
    }
    assert.deepEqual(worst, []);
    if (run.state) {
      const s = trainer.state;
      assert.equal(s.best_global_step, run.state.best_global_step);
      assert.equal(s.best_model_checkpoint && basename(s.best_model_checkpoint), run.state.best_model_checkpoint);
      if (run.state.best_metric === null) assert.equal(s.best_metric, null);
      else assert.ok(rel(s.best_metric!, run.state.best_metric) < 1e-3, `best_metric ${s.best_metric} vs TRL ${run.state.best_metric}`);
      assert.deepEqual(checkpointDirs(trainer.args.outputDir).map((d) => basename(d)), run.checkpoints);
    }
  });
}
