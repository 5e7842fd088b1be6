/**
 * Training on a stored base (quant/load-stored.ts) under LoRA:
 * - a 4-bit (NF4 nested, FP4) and an 8-bit base give the same run (≤1e-5) as a float32 base made of
 *   their dequantized weights: the per-tile path adds no error of its own;
 * - bf16 storage (dtype bfloat16: the linears, the frozen embedding and lm_head) stays within 2e-2
 *   of TRL's float32 run;
 * - a bf16 checkpoint's linears are views of the memory-mapped file (no copy), also when sharded;
 * - the memory estimate counts the stored bytes; the CLI flags and their one-line errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { SafetensorsFile, writeSafetensors } from '../../src/io/safetensors.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replayTrlRun } from '../helpers/trl-run.js';
import { storedLinearTargets, type StorageSpec } from '../../src/quant/load-stored.js';
import { isStorage, quantizeWeight, toFloat32 } from '../../src/quant/storage.js';
import { FrozenLinear } from '../../src/nn/frozen-linear.js';
import { FrozenEmbedding } from '../../src/nn/frozen-embedding.js';
import { loadCausalLM } from '../../src/models/load.js';
import { nativeAvailable } from '../../src/backend/index.js';
import { estimateRunMemory } from '../../src/models/memory-estimate.js';
import { weightStorageFor } from '../../src/quant/options.js';
import type { CausalLM } from '../../src/models/causal-lm.js';

const RUN = 'llama-lora-continued';

function dequantizedBase(spec: StorageSpec): (m: CausalLM) => void {
  return (m) => {
    for (const { layer } of storedLinearTargets(m).values()) {
      const w = layer.weight.data as Float32Array;
      w.set(toFloat32(quantizeWeight(w, layer.outFeatures, layer.inFeatures, spec.kind, { nested: spec.nested })));
    }
  };
}

for (const spec of [{ kind: 'nf4', nested: true }, { kind: 'fp4' }, { kind: 'int8' }] as StorageSpec[]) {
  test(`${spec.kind}${spec.nested ? ' nested' : ''} base: the run equals (≤1e-5) the run on a float32 base of its dequantized weights (${RUN})`, async () => {
    const q = await replayTrlRun(RUN, {}, { storage: spec });
    assert.ok(q.model.namedModules().some(([, m]) => m instanceof FrozenLinear && m._w.kind === spec.kind), 'no stored linear');
    const f = await replayTrlRun(RUN, {}, { prepare: dequantizedBase(spec) });
    assert.equal(q.ours.length, f.ours.length);
    const bad: string[] = [];
    let moved = 0;
    q.ours.forEach((e, i) => {
      for (const [k, v] of Object.entries(f.ours[i])) {
        if (typeof v !== 'number' || k === 'step' || k === 'epoch') continue;
        const d = Math.abs(e[k] - v);
        if (d > 1e-5 * Math.max(1, Math.abs(v))) bad.push(`step ${i + 1} ${k}: stored ${e[k]} vs dequantized f32 ${v}`);
        if (typeof q.run.log_history[i][k] === 'number') moved = Math.max(moved, Math.abs(v - q.run.log_history[i][k]));
      }
    });
    assert.deepEqual(bad, []);
    assert.ok(moved > 1e-6, 'quantization changed nothing: is the base really quantized?');
  });
}

for (const name of ['llama-lora-continued', 'qwen2-lora-continued-conv']) {
  test(`bf16 storage of the LoRA base (dtype bfloat16 = bf16 compute) stays within 2e-2 of TRL's f32 run: ${name}`, async () => {
    const { run, ours, model } = await replayTrlRun(name, { bf16: true }, { storage: { kind: 'bf16' } });
    assert.ok(model.namedModules().some(([, m]) => m instanceof FrozenLinear && m._w.kind === 'bf16'), 'no bf16 linear');
    // The frozen embedding (and the head it ties to, or the untied lm_head) is bf16 too.
    assert.ok(model.namedModules().some(([n, m]) => m instanceof FrozenEmbedding && m._w.kind === 'bf16' && n.endsWith('embed_tokens')), 'no bf16 embedding');
    assert.ok(isStorage(model.lmHeadWeight()), 'the lm_head is not stored');
    const worst: string[] = [];
    run.log_history.forEach((ref, i) => {
      for (const [k, v] of Object.entries(ref)) {
        if (k === 'step' || k === 'epoch' || typeof v !== 'number') continue;
        const tol = k === 'mean_token_accuracy' ? 0.05 : 2e-2 * Math.max(Math.abs(v), 1);
        if (Math.abs(ours[i][k] - v) > tol) worst.push(`step ${i + 1} ${k}: ${ours[i][k]} vs TRL ${v}`);
      }
    });
    assert.deepEqual(worst, []);
  });
}

test('zero-copy: a bf16 checkpoint\'s linears are views of the memory-mapped file (single and sharded); DPO_NO_MMAP=1 copies', { skip: nativeAvailable() ? false : 'needs the native addon (mmap)' }, () => {
  // The bf16 fixture, and the same tensors split into two shards.
  const src = 'test/fixtures/models/llama-bf16';
  const sharded = mkdtempSync(join(tmpdir(), 'dpo-bf16-shards-'));
  copyFileSync(join(src, 'config.json'), join(sharded, 'config.json'));
  const f = new SafetensorsFile(join(src, 'model.safetensors'));
  const names = f.names(), weightMap: Record<string, string> = {};
  for (const [i, part] of [names.slice(0, names.length >> 1), names.slice(names.length >> 1)].entries()) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeSafetensors(join(sharded, file), part.map((n) => { weightMap[n] = file; return [n, { shape: f.info(n).shape, data: f.readRawBf16(n), dtype: 'BF16' as const }] as const; }));
  }
  f.close();
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  for (const dir of [src, sharded]) {
    const { model } = loadCausalLM(dir, { storage: { kind: 'bf16' } });
    const stored = model.namedModules().filter((e): e is [string, FrozenLinear] => e[1] instanceof FrozenLinear);
    assert.ok(stored.length > 0);
    const files = new Set(Object.values(weightMap).map((n) => statSync(join(sharded, n)).size).concat(statSync(join(src, 'model.safetensors')).size));
    const bufs = new Set(stored.map(([, l]) => l._w.data.buffer));
    assert.equal(bufs.size, dir === src ? 1 : 2, `${dir}: one mapping per file`);
    for (const b of bufs) assert.ok(files.has(b.byteLength), `${dir}: a view not over a whole mapped file (${b.byteLength} bytes): copied`);
  }
  process.env.DPO_NO_MMAP = '1';
  try {
    const { model } = loadCausalLM('test/fixtures/models/llama-bf16', { storage: { kind: 'bf16' } });
    const bufs = new Set(model.namedModules().filter(([, m]) => m instanceof FrozenLinear).map(([, m]) => (m as FrozenLinear)._w.data.buffer));
    assert.ok(bufs.size > 1, 'without mmap each tensor is its own copy');
  } finally {
    delete process.env.DPO_NO_MMAP;
  }
});

test('stored loading of a float32 checkpoint: every decoder linear is stored, not a parameter, and reads back as its dequantized weight', () => {
  const f = loadCausalLM('test/fixtures/models/llama').model;
  const q = loadCausalLM('test/fixtures/models/llama', { storage: { kind: 'nf4' } }).model;
  const lf = storedLinearTargets(f), lq = new Map(q.namedModules());
  for (const [wname, { layer }] of lf) {
    const m = lq.get(wname.slice(0, -'.weight'.length)) as FrozenLinear;
    assert.ok(m instanceof FrozenLinear, wname);
    assert.deepEqual(Array.from(m.weight.data), Array.from(toFloat32(quantizeWeight(layer.weight.data as Float32Array, layer.outFeatures, layer.inFeatures, 'nf4'))));
  }
  assert.equal(q.namedParameters().some(([n]) => n.endsWith('q_proj.weight')), false, 'a stored weight is not a parameter');
});

test('memory estimate: stored base linears at their bytes per weight (bf16 half, nf4 about an eighth)', () => {
  const arch = loadCausalLM('test/fixtures/models/llama').model.arch;
  const big = { ...arch, hiddenSize: 1024, intermediateSize: 4096, numLayers: 8, numHeads: 16, numKvHeads: 4, headDim: 64, vocabSize: 1000 };
  const base = { arch: big, lora: { r: 16, targetModules: 'all-linear' }, bf16: false, gradientCheckpointing: true, refCopy: false, rows: 2, seqLen: 8 };
  const w = (storage: StorageSpec | null) => estimateRunMemory({ ...base, storage }).parts[0][1];
  const linear = 8 * (1024 * (1024 + 256 + 256 + 1024) + 3 * 1024 * 4096);
  // bf16 also keeps the frozen embedding and the untied lm_head (1000 × 1024 each) in bf16.
  assert.ok(Math.abs(w(null) - w({ kind: 'bf16' }) - 2 * (linear + 2 * 1000 * 1024)) < 1, 'bf16 saves 2 bytes per weight');
  assert.ok(Math.abs(w(null) - w({ kind: 'nf4', nested: true }) - (4 - 0.5 - 1 / 64 - 4 / 64 / 256) * linear) < 1, 'nf4 nested');
});

test('flags: load_in_4bit / load_in_8bit / dtype → storage; bad combinations are one-line errors', () => {
  assert.deepEqual(weightStorageFor({ load_in_4bit: true, use_bnb_nested_quant: true }, { lora: true }), { kind: 'nf4', nested: true });
  assert.deepEqual(weightStorageFor({ load_in_4bit: true, bnb_4bit_quant_type: 'fp4' }, { lora: true }), { kind: 'fp4', nested: false });
  assert.deepEqual(weightStorageFor({ load_in_8bit: true }, { lora: true }), { kind: 'int8' });
  assert.deepEqual(weightStorageFor({ dtype: 'bfloat16' }, { lora: true }), { kind: 'bf16' });
  assert.deepEqual(weightStorageFor({ dtype: 'auto' }, { lora: true, checkpointDtype: () => 'bfloat16' }), { kind: 'bf16' });
  assert.equal(weightStorageFor({ dtype: 'bfloat16' }, { lora: false }), null, 'full fine-tuning keeps float32 master weights');
  assert.throws(() => weightStorageFor({ load_in_4bit: true, load_in_8bit: true }, { lora: true }), /^DpoError: dpo train: --load_in_4bit and --load_in_8bit together; pass only one of them \(as TRL's ModelConfig\)$/);
  assert.throws(() => weightStorageFor({ load_in_4bit: true }, { lora: false }), /^DpoError: dpo train: --load_in_4bit quantizes the frozen base, which only LoRA can train; add --use_peft \(or --adapter_name_or_path\)$/);
  assert.throws(() => weightStorageFor({ load_in_4bit: true, bnb_4bit_quant_type: 'int4' }, { lora: true }), /^DpoError: dpo train: --bnb_4bit_quant_type int4 is not a 4-bit type; use nf4 or fp4$/);
});

test('dpo train --load_in_4bit --use_bnb_nested_quant --use_peft: trains, prints the storage, the estimate before step 1 and the measured peak; errors exit 2', () => {
  const CLI = join(process.cwd(), 'dist/src/cli/main.js');
  const out = mkdtempSync(join(tmpdir(), 'dpo-quant-'));
  const args = ['train', '--model_name_or_path', 'test/fixtures/models/llama', '--dataset_name', 'examples/dpo_example.json', '--output_dir', out,
    '--per_device_train_batch_size', '2', '--max_steps', '2', '--logging_steps', '1', '--max_length', '64', '--use_peft', '--lora_r', '4'];
  const r = spawnSync(process.execPath, [CLI, ...args, '--load_in_4bit', '--use_bnb_nested_quant'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /base linear weights NF4 with nested absmax, dequantized per tile/);
  assert.match(r.stdout, /memory: estimated peak [\d.]+ [MGk]B \(weights \(base linears nf4\) /);
  assert.match(r.stdout, /memory: measured peak RSS [\d.]+ [MGk]B \(estimated/);
  assert.ok(statSync(join(out, 'adapter_model.safetensors')).size > 0, 'a normal PEFT adapter is saved');
  const bad = spawnSync(process.execPath, [CLI, ...args.filter((a) => a !== '--use_peft'), '--load_in_8bit'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr.trim(), /^dpo: dpo train: --load_in_8bit quantizes the frozen base, which only LoRA can train; add --use_peft \(or --adapter_name_or_path\)$/m);
});
