/**
 * Pinned trajectories vs TRL 1.13 + PEFT 0.21 (tools/fixtures/make_trl_runs.py): every logged
 * metric within 1e-4 relative at step 1 and 1e-3 at step 4, for full fine-tuning, continued LoRA,
 * a precomputed reference and many loss types.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { TRL_FIXTURES as FIX, replayTrlRun } from '../helpers/trl-run.js';

const SKIP = new Set(['step', 'epoch']);

for (const name of readdirSync(FIX).sort()) {
  test(`TRL parity: ${name}`, async () => {
    const { run, ours } = await replayTrlRun(name);
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
