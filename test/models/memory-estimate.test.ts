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
  assert.ok(part({ ...full, gradientCheckpointing: true }, 'activations') < part(full, 'activations') / 4);
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
    assert.match(err.message, /^this run needs about 5\.1 GB of memory \(weights 720\.\d MB, .*activations for 2040 tokens \(8 rows, the longest 255\) 1\.\d GB\) but 4\.0 GB is available \(DPO_MEMORY_LIMIT\); try LoRA \(--use_peft\), --bf16, a shorter --max_length, --gradient_checkpointing, a smaller --per_device_train_batch_size/);
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

test('benchmark shapes (Qwen2.5-0.5B / 1.5B / 3B, LoRA r=16 all-linear, the largest batch 837 packed tokens; the 0.5B sweep): within 15% of the peaks measured by bench/quant-scaling.ts', () => {
  // Measured peak RSS (GB, to 0.1) of the calibration runs in src/models/memory-estimate.ts: [storage, checkpointing, peak].
  const runs = (...r: [string, boolean, number][]) => r;
  const measured: Record<string, [string, boolean, number][]> = {
    '0.5b': runs(['f32', true, 2.6], ['bf16', true, 1.6], ['int8', true, 1.2], ['nf4', true, 1.1], ['f32', false, 3.9], ['bf16', false, 3.0], ['int8', false, 2.6], ['nf4', false, 2.4]),
    '1.5b': runs(['f32', true, 7.2], ['bf16', true, 4.1], ['int8', true, 2.8], ['nf4', true, 2.2], ['f32', false, 10.2], ['bf16', false, 7.1], ['int8', false, 5.8], ['nf4', false, 5.2]),
    '3b': runs(['bf16', true, 7.6], ['nf4', true, 3.5], ['bf16', false, 12.5], ['nf4', false, 8.3]),
  };
  const spec = (k: string): StorageSpec | null => (k === 'f32' ? null : k === 'nf4' ? { kind: 'nf4', nested: true } : { kind: k as StorageSpec['kind'] });
  const check = (size: string, storage: string, gc: boolean, peak: number, seqLen: number, tokens: number) => {
    const e = estimateRunMemory({ arch: archFromConfig(qwenConfig(size)), lora: { r: 16, targetModules: 'all-linear', dropout: 0 }, bf16: true, gradientCheckpointing: gc, refCopy: false, rows: 2, seqLen, tokens, storage: spec(storage) });
    assert.ok(Math.abs(e.bytes / (peak * 1e9) - 1) < 0.15, `${size} ${storage} gc ${gc}: estimate ${(e.bytes / 1e9).toFixed(2)} GB vs measured ${peak} GB`);
  };
  for (const [size, rs] of Object.entries(measured)) for (const [storage, gc, peak] of rs) check(size, storage, gc, peak, 527, 837);
  // The sweep at 0.5B, nf4 nested: max_length 512 / 1024 / 2048, [longest row, packed tokens of the largest pair, peak with and without checkpointing].
  for (const [seqLen, tokens, on, off] of [[512, 817, 1.1, 2.4], [1016, 1598, 1.4, 4.1], [1997, 3170, 2.0, 7.4]]) {
    check('0.5b', 'nf4', true, on, seqLen, tokens);
    check('0.5b', 'nf4', false, off, seqLen, tokens);
  }
  // The frozen embedding (the tied head) of this bf16 checkpoint is counted at 2 bytes under 4-bit, at 4 when the adapter trains it.
  const w = (storage: StorageSpec) => estimateRunMemory({ arch: archFromConfig(qwenConfig('0.5b')), lora: { r: 16, targetModules: 'all-linear' }, bf16: true, gradientCheckpointing: true, refCopy: false, rows: 2, seqLen: 8, storage }).parts[0][1];
  assert.equal(w({ kind: 'nf4', trainedEmbeddings: true }) - w({ kind: 'nf4' }), 2 * 151936 * 896);
});
