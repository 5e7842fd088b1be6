/**
 * padding_free: rows packed back to back (positions restart, attention per row) give the padded
 * batch's log-probs and gradients, and pinned TRL trajectories replay within the parity tolerance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { backward } from '../../src/autograd/tape.js';
import { getBackend, nativeAvailable, setBackend } from '../../src/backend/index.js';
import { loadCausalLM } from '../../src/models/load.js';
import { packRows, packedPositions } from '../../src/dpo/packing.js';
import { disableDropout, hasDropout } from '../../src/dpo/model-dropout.js';
import { applyLora, resolveTargets } from '../../src/lora/apply.js';
import { completionPositions, sequenceLogps, type PairBatch } from '../../src/dpo/logps.js';
import { sum } from '../../src/ops/index.js';
import { scope } from '../../src/tensor/pool.js';
import { Rng } from '../../src/tensor/rng.js';
import { replayTrlRun } from '../helpers/trl-run.js';

/** 4 rows of lengths 9, 5, 12, 7 in T = 12, completions from position 3 (right padding); pairs share 4 tokens. */
function batch(vocab: number): PairBatch {
  const rng = new Rng(7);
  const lens = [9, 5, 12, 7], T = 12, rows = lens.length;
  const inputIds = new Int32Array(rows * T), attentionMask = new Uint8Array(rows * T), completionMask = new Uint8Array(rows * T);
  lens.forEach((n, r) => {
    for (let t = 0; t < n; t++) {
      // A rejected row starts like its chosen row (rows r − 2): the prompt and one completion token.
      inputIds[r * T + t] = r >= 2 && t < 4 ? inputIds[(r - 2) * T + t] : rng.nextInt(vocab);
      attentionMask[r * T + t] = 1;
      completionMask[r * T + t] = t >= 3 ? 1 : 0;
    }
  });
  return { inputIds, attentionMask, completionMask, rows, T };
}

test('packRows: real tokens back to back, positions restart, one segment per row', () => {
  const b = batch(50);
  const { inputs, offsets } = packRows(b);
  assert.deepEqual([...offsets], [0, 9, 14, 26]);
  assert.equal(inputs.T, 33);
  assert.equal(inputs.B, 1);
  assert.deepEqual([...inputs.positionIds!.subarray(9, 14)], [0, 1, 2, 3, 4]);
  assert.deepEqual([...inputs.segIds!.subarray(12, 16)], [1, 1, 2, 2]);
  assert.deepEqual([...inputs.ids.subarray(14, 26)], [...b.inputIds.subarray(24, 36)]);
  const { sel, rowOf } = completionPositions(b);
  const packed = packedPositions(sel, rowOf, b.T, packRows(b));
  // Every selected position holds the same token in both layouts, and no shift crosses a row.
  for (let m = 0; m < sel.length; m++) {
    assert.equal(inputs.ids[packed[m]], b.inputIds[sel[m]]);
    assert.equal(inputs.segIds![packed[m] + 1], rowOf[m]);
  }
});

test('packRows with sharePrompt: each pair\'s common prefix once, rests attend it with positions continuing', () => {
  const b = batch(50);
  const { inputs, offsets, shared, sharedOffsets } = packRows(b, true);
  assert.deepEqual([...shared], [4, 4, 4, 4]);
  assert.deepEqual([...sharedOffsets], [0, 17, 0, 17]);
  assert.deepEqual([...offsets], [4, 21, 9, 22]);
  assert.equal(inputs.T, 33 - 8);
  assert.deepEqual([...inputs.segIds!.subarray(0, 10)], [4, 4, 4, 4, 0, 0, 0, 0, 0, 2]);
  assert.deepEqual([...inputs.segParents!.subarray(0, 10)], [-1, -1, -1, -1, 4, 4, 4, 4, 4, 4]);
  assert.deepEqual([...inputs.positionIds!.subarray(9, 17)], [4, 5, 6, 7, 8, 9, 10, 11]);
  const { sel, rowOf } = completionPositions(b);
  const packed = packedPositions(sel, rowOf, b.T, packRows(b, true));
  for (let m = 0; m < sel.length; m++) {
    assert.equal(inputs.ids[packed[m]], b.inputIds[sel[m]], `token ${m}`);
    assert.equal(inputs.positionIds![packed[m]], sel[m] - rowOf[m] * b.T, `position ${m}`);
  }
  // A pair with nothing in common packs as two plain segments.
  const lone = { ...b, inputIds: b.inputIds.map((x, i) => (i >= 2 * b.T ? (x + 1) % 50 : x)) };
  assert.equal(packRows(lone, true).inputs.segParents, null);
});

test('padding_free log-probs and gradients equal the padded batch, with and without prompt sharing (llama, mistral sliding window, qwen2, gpt2, gemma3, gemma2, olmo2, granite, smollm3, phi3; both backends)', () => {
  const prev = getBackend().name;
  try {
    for (const backend of nativeAvailable() ? (['ref', 'native'] as const) : (['ref'] as const)) {
      setBackend(backend);
      for (const name of ['llama', 'mistral', 'qwen2', 'gpt2', 'gemma3', 'gemma2', 'olmo2', 'granite', 'smollm3', 'phi3']) {
        const run = (paddingFree: boolean, sharePrompt = false) => {
          const { model } = loadCausalLM(join('test/fixtures/models', name));
          for (const p of model.parameters()) p.requiresGrad = true;
          const b = batch(model.arch.vocabSize);
          const lp = scope(() => {
            const out = sequenceLogps(model, b, { stats: true, paddingFree, sharePrompt });
            const v = Float64Array.from(out.logps.data);
            backward(sum(out.logps));
            return { v, entropy: out.stats!.entropySum };
          });
          return { ...lp, grads: model.namedParameters().map(([n, p]) => [n, p.grad!.data] as const) };
        };
        const a = run(false);
        for (const c of [run(true), run(true, true)]) {
          a.v.forEach((x, i) => assert.ok(Math.abs(x - c.v[i]) <= 1e-5 * Math.max(1, Math.abs(x)), `${name} (${backend}) logp[${i}]: padded ${x}, packed ${c.v[i]}`));
          assert.ok(Math.abs(a.entropy - c.entropy) <= 1e-4 * Math.abs(a.entropy), `${name}: entropy ${a.entropy} vs ${c.entropy}`);
          a.grads.forEach(([n, g], k) => {
            const h = c.grads[k][1];
            let num = 0, den = 0;
            for (let i = 0; i < g.length; i++) {
              num = Math.max(num, Math.abs(g[i] - h[i]));
              den = Math.max(den, Math.abs(g[i]));
            }
            assert.ok(num <= 1e-5 * Math.max(den, 1e-3), `${name} (${backend}) grad ${n}: max diff ${num} (scale ${den})`);
          });
        }
      }
    }
  } finally {
    setBackend(prev);
  }
});

test('prompt sharing waits for dropout to be off (shared prompts would share dropout masks)', () => {
  const { model } = loadCausalLM('test/fixtures/models/llama');
  assert.equal(hasDropout(model), false);
  applyLora(model, { r: 4, alpha: 8, dropout: 0.1, useRslora: false }, resolveTargets(model, null), 1);
  assert.equal(hasDropout(model), true, 'LoRA dropout counts');
  disableDropout(model); // TRL's default disable_dropout=True
  assert.equal(hasDropout(model), false);
  (model.arch as { residDropout: number }).residDropout = 0.1;
  assert.equal(hasDropout(model), true, 'model dropout counts');
});

for (const name of ['llama-sigmoid', 'mistral-sigmoid', 'gpt2-sft-sigmoid', 'qwen2-lora-continued-conv', 'gemma3-sigmoid', 'gemma2-sigmoid', 'olmo2-lora-continued', 'granite-ipo', 'smollm3-sigmoid-conv', 'phi3-lora-qkv']) {
  test(`padding_free replays TRL's pinned run within the parity tolerance: ${name}`, async () => {
    const { run, ours } = await replayTrlRun(name, { padding_free: true });
    assert.equal(ours.length, run.log_history.length);
    const worst: string[] = [];
    run.log_history.forEach((ref, i) => {
      const tol = i === 0 ? 1e-4 : 1e-3;
      for (const [k, v] of Object.entries(ref)) {
        if (k === 'step' || k === 'epoch' || typeof v !== 'number') continue;
        const err = Math.abs(ours[i][k] - v) / Math.max(Math.abs(v), 1e-3);
        if (err > tol) worst.push(`step ${i + 1} ${k}: ours ${ours[i][k]} vs TRL ${v}`);
      }
    });
    assert.deepEqual(worst, []);
  });
}
