/**
 * bf16 (`bf16: true`): every float32 GEMM runs on bf16-rounded operands with float32 accumulation,
 * while weights, gradients and AdamW state stay float32. The metrics of a pinned TRL f32 run must
 * stay within 2e-2 (relative above 1, absolute below) of TRL's — and must actually move, or bf16
 * would not be on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replayTrlRun } from '../helpers/trl-run.js';
import { getMatmulPrecision } from '../../src/backend/index.js';

// The argmax of a random model's near-uniform logits flips under any rounding; allow 5 points.
const TOL: Record<string, number> = { mean_token_accuracy: 0.05 };

for (const name of ['llama-sigmoid', 'qwen2-lora-continued-conv', 'gpt2-sft-sigmoid']) {
  test(`bf16 stays within 2e-2 of TRL's f32 run: ${name}`, async () => {
    const { run, ours } = await replayTrlRun(name, { bf16: true });
    assert.equal(getMatmulPrecision(), 'float32', 'train() restores float32 GEMMs');
    assert.equal(ours.length, run.log_history.length);
    const worst: string[] = [];
    let moved = 0;
    run.log_history.forEach((ref, i) => {
      for (const [k, v] of Object.entries(ref)) {
        if (k === 'step' || k === 'epoch' || typeof v !== 'number') continue;
        const d = Math.abs(ours[i][k] - v);
        moved = Math.max(moved, d / Math.max(Math.abs(v), 1));
        if (d > (TOL[k] ?? 2e-2 * Math.max(Math.abs(v), 1))) worst.push(`step ${i + 1} ${k}: bf16 ${ours[i][k]} vs TRL f32 ${v}`);
      }
    });
    assert.deepEqual(worst, []);
    assert.ok(moved > 1e-4, `bf16 changed nothing (max deviation ${moved}): are the GEMMs really bf16?`);
  });
}
