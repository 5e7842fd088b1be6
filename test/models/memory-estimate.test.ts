/** The memory estimate: what it counts, and the one-line stop when a run cannot fit. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../../src/errors.js';
import type { StorageSpec } from '../../src/quant/load-stored.js';
import { archFromConfig } from '../../src/models/registry.js';
import { assertRunFits, availableMemory, estimateRunMemory, type RunShape } from '../../src/models/memory-estimate.js';
import { BENCH_CONFIG } from '../../bench/workload.js';
import { qwenConfig } from '../../bench/make-qwen-checkpoint.js';

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

test('every fixture model: parameters counted as transformers counts them (a multimodal gemma3 without its vision tower), LoRA trainables as PEFT, no NaN', () => {
  // tools/fixtures/make_models.py --num-parameters
  const rec = JSON.parse(readFileSync('test/fixtures/num-parameters/models.json', 'utf8')).models as Record<string, { num_parameters: number; text_num_parameters: number; lora?: { r: number; target_modules: string[] | string; trainable: number } }>;
  assert.ok(['gemma3', 'gemma3-mm', 'phi3', 'gemma2'].every((n) => n in rec));
  for (const [name, r] of Object.entries(rec)) {
    const a = archFromConfig(JSON.parse(readFileSync(join('test/fixtures/models', name, 'config.json'), 'utf8')));
    const shape: RunShape = { arch: a, lora: null, bf16: false, gradientCheckpointing: false, refCopy: true, rows: 4, seqLen: 33 };
    const part = (e: ReturnType<typeof estimateRunMemory>, w: string) => e.parts.find(([k]) => k.startsWith(w))![1];
    assert.equal(part(estimateRunMemory(shape), 'weights') / 4, r.text_num_parameters, name);
    if (name === 'gemma3-mm') assert.ok(r.num_parameters > r.text_num_parameters, 'the vision tower is in transformers\' total, not in ours');
    else assert.equal(r.text_num_parameters, r.num_parameters, name);
    if (r.lora) {
      // PEFT's fullmatch regex for the multimodal model selects the language model's q_proj / v_proj; ours sees only the text model.
      const targets = name === 'gemma3' ? null : typeof r.lora.target_modules === 'string' ? ['q_proj', 'v_proj'] : r.lora.target_modules;
      const e = estimateRunMemory({ ...shape, lora: { r: r.lora.r, targetModules: targets }, refCopy: false });
      assert.equal(part(e, 'gradients') / 4, r.lora.trainable, `${name}: LoRA trainables`);
    }
    for (const v of [shape, { ...shape, bf16: true, gradientCheckpointing: true }, { ...shape, lora: { r: 4, targetModules: 'all-linear' }, refCopy: false, storage: { kind: 'nf4', nested: false } as StorageSpec }]) {
      const e = estimateRunMemory(v);
      assert.ok([e.bytes, e.activationsOther, ...e.parts.map(([, b]) => b)].every((b) => Number.isFinite(b) && b >= 0), `${name}: ${JSON.stringify(e.parts)}`);
      assert.ok(part(e, 'activations') > 0, name);
    }
  }
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
