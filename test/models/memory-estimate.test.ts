/** The memory estimate: what it counts, and the one-line stop when a run cannot fit. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DpoError } from '../../src/errors.js';
import { archFromConfig } from '../../src/models/registry.js';
import { assertRunFits, availableMemory, estimateRunMemory, type RunShape } from '../../src/models/memory-estimate.js';
import { BENCH_CONFIG } from '../../bench/workload.js';
import { qwenConfig } from '../../bench/make-qwen-checkpoint.js';
import type { StorageSpec } from '../../src/quant/load-stored.js';

const arch = archFromConfig(BENCH_CONFIG);
const full: RunShape = { arch, lora: null, bf16: false, gradientCheckpointing: false, refCopy: true, rows: 8, seqLen: 255 };

test('workload A: within 15% of its measured 5.1 GB peak; each option shrinks its part', () => {
  const e = estimateRunMemory(full);
  assert.ok(Math.abs(e.bytes / 5.1e9 - 1) < 0.15, `${e.bytes}`);
  const part = (s: RunShape, w: string) => estimateRunMemory(s).parts.find(([k]) => k.startsWith(w))![1];
  // 180M parameters: weights, gradients, AdamW m and v, the reference copy.
  assert.ok(Math.abs(part(full, 'weights') - 4 * 180.1e6) < 1e6);
  assert.equal(part(full, 'AdamW'), 2 * part(full, 'weights'));
  assert.ok(part({ ...full, bf16: true }, 'reference') < 0.75 * part(full, 'reference'));
  assert.ok(part({ ...full, gradientCheckpointing: true }, 'activations') < part(full, 'activations') / 5);
  const lora = estimateRunMemory({ ...full, lora: { r: 8, targetModules: null }, refCopy: false });
  // LoRA: weights and trainable state far below full fine-tuning's; its branches add activations.
  const state = (x: typeof e) => x.parts.filter(([k]) => /^(weights|gradients|AdamW|reference)/.test(k)).reduce((n, [, b]) => n + b, 0);
  assert.ok(state(lora) < state(e) / 4);
  assert.ok(part({ ...full, lora: { r: 8, targetModules: null }, refCopy: false }, 'activations') > part(full, 'activations'));
  // q_proj and v_proj: r·(576 + 576) + r·(576 + 192) per layer, 30 layers.
  assert.equal(lora.parts.find(([k]) => k === 'gradients')![1], 4 * 8 * (1152 + 768) * 30);
  assert.ok(estimateRunMemory({ ...full, lora: { r: 8, targetModules: 'all-linear' }, refCopy: false }).parts[1][1] > lora.parts[1][1]);
});

test('a run that cannot fit stops with the figure and what to try; DPO_MEMORY_LIMIT sets the limit', () => {
  const e = estimateRunMemory(full);
  assert.doesNotThrow(() => assertRunFits(e, { DPO_MEMORY_LIMIT: String(e.bytes + 1) }));
  assert.throws(() => assertRunFits(e, { DPO_MEMORY_LIMIT: '4000000000' }), (err: unknown) => {
    assert.ok(err instanceof DpoError && err.exitCode === 2);
    assert.match(err.message, /^this run needs about 5\.1 GB of memory \(weights 720\.\d MB, .*activations for 8 rows × 255 tokens 1\.\d GB\) but 4\.0 GB is available \(DPO_MEMORY_LIMIT\); try LoRA \(--use_peft\), --bf16, a shorter --max_length, --gradient_checkpointing, a smaller --per_device_train_batch_size/);
    assert.ok(!err.message.includes('\n'));
    return true;
  });
  assert.throws(() => assertRunFits(e, { DPO_MEMORY_LIMIT: 'lots' }), /DPO_MEMORY_LIMIT must be a number of bytes/);
  const a = availableMemory({});
  assert.ok(a.bytes > 0 && /MemAvailable|free memory|cgroup/.test(a.source), a.source);
});

test('benchmark shapes (Qwen2.5-0.5B at 2 rows × 527 tokens, 3B at 2 × 128; LoRA r=16 all-linear): within 15% of the peaks measured by bench/quant-scaling.ts', () => {
  const qwen = archFromConfig(qwenConfig('0.5b'));
  // Measured peak RSS (GB, to 0.1) of the calibration runs in src/models/memory-estimate.ts.
  const measured: [StorageSpec | null, boolean, number][] = [
    [null, true, 2.9], [{ kind: 'bf16' }, true, 2.0], [{ kind: 'int8' }, true, 1.6], [{ kind: 'nf4', nested: true }, true, 1.5], [{ kind: 'nf4', nested: true }, false, 10.8], [{ kind: 'bf16' }, false, 11.4],
  ];
  for (const [storage, gc, peak] of measured) {
    const e = estimateRunMemory({ arch: qwen, lora: { r: 16, targetModules: 'all-linear' }, bf16: true, gradientCheckpointing: gc, refCopy: false, rows: 2, seqLen: 527, storage });
    assert.ok(Math.abs(e.bytes / (peak * 1e9) - 1) < 0.15, `${storage?.kind ?? 'f32'} gc ${gc}: estimate ${(e.bytes / 1e9).toFixed(2)} GB vs measured ${peak} GB`);
  }
  // The 3B shape, 1 step at max_length 128 (2 × 128 tokens): nf4 nested 2.9 GB, bf16 7.1 GB measured.
  const q3 = archFromConfig(qwenConfig('3b'));
  for (const [storage, peak] of [[{ kind: 'nf4', nested: true }, 2.9], [{ kind: 'bf16' }, 7.1]] as [StorageSpec, number][]) {
    const e = estimateRunMemory({ arch: q3, lora: { r: 16, targetModules: 'all-linear' }, bf16: true, gradientCheckpointing: true, refCopy: false, rows: 2, seqLen: 128, storage });
    assert.ok(Math.abs(e.bytes / (peak * 1e9) - 1) < 0.15, `3B ${storage.kind}: estimate ${(e.bytes / 1e9).toFixed(2)} GB vs measured ${peak} GB`);
  }
  // The frozen embedding (the tied head) of this bf16 checkpoint is counted at 2 bytes under 4-bit, at 4 when the adapter trains it.
  const w = (storage: StorageSpec) => estimateRunMemory({ arch: qwen, lora: { r: 16, targetModules: 'all-linear' }, bf16: true, gradientCheckpointing: true, refCopy: false, rows: 2, seqLen: 8, storage }).parts[0][1];
  assert.equal(w({ kind: 'nf4', trainedEmbeddings: true }) - w({ kind: 'nf4' }), 2 * 151936 * 896);
});
