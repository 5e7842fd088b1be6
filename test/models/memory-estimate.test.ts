/** The memory estimate: what it counts, and the one-line stop when a run cannot fit. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DpoError } from '../../src/errors.js';
import { archFromConfig } from '../../src/models/registry.js';
import { assertRunFits, availableMemory, estimateRunMemory, type RunShape } from '../../src/models/memory-estimate.js';
import { BENCH_CONFIG } from '../../bench/workload.js';

const arch = archFromConfig(BENCH_CONFIG);
const full: RunShape = { arch, lora: null, bf16: false, gradientCheckpointing: false, refCopy: true, rows: 8, seqLen: 255 };

test('workload A: close to (and not above) its measured 5.1 GB peak; each option shrinks its part', () => {
  const e = estimateRunMemory(full);
  assert.ok(e.bytes > 4.5e9 && e.bytes < 5.2e9, `${e.bytes}`);
  const part = (s: RunShape, w: string) => estimateRunMemory(s).parts.find(([k]) => k.startsWith(w))![1];
  // 180M parameters: weights, gradients, AdamW m and v, the reference copy.
  assert.ok(Math.abs(part(full, 'weights') - 4 * 180.1e6) < 1e6);
  assert.equal(part(full, 'AdamW'), 2 * part(full, 'weights'));
  assert.ok(part({ ...full, bf16: true }, 'reference') < 0.75 * part(full, 'reference'));
  assert.ok(part({ ...full, gradientCheckpointing: true }, 'activations') < part(full, 'activations') / 5);
  const lora = estimateRunMemory({ ...full, lora: { r: 8, targetModules: null }, refCopy: false });
  assert.ok(lora.bytes < e.bytes / 2);
  // q_proj and v_proj: r·(576 + 576) + r·(576 + 192) per layer, 30 layers.
  assert.equal(lora.parts.find(([k]) => k === 'gradients')![1], 4 * 8 * (1152 + 768) * 30);
  assert.ok(estimateRunMemory({ ...full, lora: { r: 8, targetModules: 'all-linear' }, refCopy: false }).parts[1][1] > lora.parts[1][1]);
});

test('a run that cannot fit stops with the figure and what to try; DPO_MEMORY_LIMIT sets the limit', () => {
  const e = estimateRunMemory(full);
  assert.doesNotThrow(() => assertRunFits(e, { DPO_MEMORY_LIMIT: String(e.bytes + 1) }));
  assert.throws(() => assertRunFits(e, { DPO_MEMORY_LIMIT: '4000000000' }), (err: unknown) => {
    assert.ok(err instanceof DpoError && err.exitCode === 2);
    assert.match(err.message, /^this run needs about 5\.0 GB of memory \(weights 720\.\d MB, .*activations for 8 rows × 255 tokens 1\.\d GB\) but 4\.0 GB is available \(DPO_MEMORY_LIMIT\); try LoRA \(--use_peft\), --bf16, a shorter --max_length, --gradient_checkpointing, a smaller --per_device_train_batch_size/);
    assert.ok(!err.message.includes('\n'));
    return true;
  });
  assert.throws(() => assertRunFits(e, { DPO_MEMORY_LIMIT: 'lots' }), /DPO_MEMORY_LIMIT must be a number of bytes/);
  const a = availableMemory({});
  assert.ok(a.bytes > 0 && /MemAvailable|free memory|cgroup/.test(a.source), a.source);
});
