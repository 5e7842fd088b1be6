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
import { TRL_FIXTURES as FIX, TIMING, metricsOutside, relErr as rel, replayTrlRun } from '../helpers/trl-run.js';
import { checkpointDirs } from '../../src/dpo/checkpoint.js';

for (const name of readdirSync(FIX).sort()) {
  test(`TRL parity: ${name}`, async () => {
    const { run, ours, trainer, evaluateAfter } = await replayTrlRun(name);
    assert.deepEqual(ours.map((e) => Object.keys(e).find((k) => k.endsWith('loss'))), run.log_history.map((e) => Object.keys(e).find((k) => k.endsWith('loss'))), `${name}: the logged entries (training steps, evaluations) differ`);
    // TRL 1.13 does not keep its token count in checkpoints (it restarts from 0 on resume); ours does.
    const worst = metricsOutside(run.log_history, ours, (k, step) => k === 'num_tokens' && !!run.case.resume_at && step > run.case.resume_at);
    for (const [k, v] of Object.entries(run.evaluate_after ?? {})) {
      if (k === 'step' || k === 'epoch' || TIMING.test(k)) continue;
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
