/**
 * Saving a multimodal gemma3 back whole: `dpo merge` and a full fine-tune's output keep the vision
 * tower and projector byte for byte, config.json as the source's, and the text weights under their
 * source names and dtypes; the merged text weights equal PEFT's merge_and_unload of the same adapter
 * (peft_merged.safetensors, and merge.json: transformers loads our merge as Gemma3ForConditionalGeneration
 * with no missing key; both from tools/fixtures/check_peft_roundtrip.py).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors } from '../../src/io/safetensors.js';
import { loadCausalLM } from '../../src/models/load.js';
import { exportWeights } from '../../src/models/registry.js';
import { writeModelFiles } from '../../src/dpo/checkpoint.js';
import { tempDir } from '../io/helpers.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const MM = 'test/fixtures/models/gemma3-mm';
const FIX = 'test/fixtures/peft-roundtrip/gemma3-mm';
const isText = (n: string) => n.startsWith('language_model.');

function dpo(...args: string[]): void {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
}

interface Stored { dtype: string; shape: number[]; bytes: Buffer; values: Float32Array }
function tensors(file: string): Map<string, Stored> {
  const f = new SafetensorsFile(file);
  try {
    return new Map([...f.tensors.values()].map((i) => [i.name, { dtype: i.dtype, shape: i.shape, bytes: Buffer.from(f.readBytes(i.name)), values: f.read(i.name) }]));
  } finally {
    f.close();
  }
}

/** Every tensor outside the text model: same dtype, shape and bytes as the source's. */
function assertUntouched(out: Map<string, Stored>, src: Map<string, Stored>): void {
  const others = [...src.keys()].filter((n) => !isText(n));
  assert.equal(others.length, 34, 'the fixture has a vision tower and projector');
  for (const n of others) {
    const o = out.get(n);
    assert.ok(o, `${n} missing from the saved model`);
    assert.deepEqual([o.dtype, o.shape], [src.get(n)!.dtype, src.get(n)!.shape], n);
    assert.ok(o.bytes.equals(src.get(n)!.bytes), `${n}: bytes differ from the source's`);
  }
}

test('dpo merge (gemma3 multimodal): vision tower and projector byte-identical, config as the source, text weights equal PEFT merge_and_unload', () => {
  const out = tempDir('dpo-mm-merge-');
  dpo('merge', '--model_name_or_path', MM, '--adapter_name_or_path', FIX, '--output_dir', out);
  assert.equal(readFileSync(join(out, 'config.json'), 'utf8'), readFileSync(join(MM, 'config.json'), 'utf8'));
  const ours = tensors(join(out, 'model.safetensors'));
  const src = tensors(join(MM, 'model.safetensors'));
  const peft = tensors(join(FIX, 'peft_merged.safetensors'));
  assert.deepEqual([...ours.keys()].sort(), [...peft.keys()].sort(), 'the tensors save_pretrained writes after merge_and_unload');
  assertUntouched(ours, src);
  let changed = 0, worst = 0;
  for (const [n, p] of peft) {
    if (!isText(n)) continue;
    const o = ours.get(n)!;
    assert.equal(o.dtype, 'F32', n);
    for (let i = 0; i < p.values.length; i++) {
      worst = Math.max(worst, Math.abs(o.values[i] - p.values[i]));
      if (Math.abs(p.values[i] - src.get(n)!.values[i]) > 1e-3) changed++;
    }
  }
  assert.ok(changed > 100, 'the adapter must change the text weights for this check to mean anything');
  assert.ok(worst <= 1e-6, `merged text weights vs PEFT's merge_and_unload: max |diff| ${worst}`);
  // transformers loaded our merge (when the fixture was made) as the full multimodal model.
  const m = JSON.parse(readFileSync(join(FIX, 'merge.json'), 'utf8'));
  assert.deepEqual([m.class, m.missing_keys, m.unexpected_keys, m.not_text_equal_to_base], ['Gemma3ForConditionalGeneration', [], [], true]);
});

test('dpo merge of a bf16 multimodal gemma3: every tensor stays BF16, the vision tower keeps its bits, text within bf16 rounding of PEFT', () => {
  // A bf16 copy of the fixture (as google/gemma-3-4b-it ships), written by our writer.
  const base = tempDir('dpo-mm-bf16-');
  const src32 = tensors(join(MM, 'model.safetensors'));
  writeSafetensors(join(base, 'model.safetensors'), [...src32].map(([n, t]) => [n, { shape: t.shape, data: t.values, dtype: 'BF16' }] as const));
  const cfg = JSON.parse(readFileSync(join(MM, 'config.json'), 'utf8'));
  writeFileSync(join(base, 'config.json'), JSON.stringify({ ...cfg, dtype: 'bfloat16' }, null, 2));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) copyFileSync(join(MM, f), join(base, f));
  // A processor's files, as a real multimodal checkpoint has them: copied as they are.
  const processor = { 'preprocessor_config.json': '{"image_processor_type": "Gemma3ImageProcessor", "size": {"height": 28, "width": 28}}\n', 'processor_config.json': '{"image_seq_length": 4, "processor_class": "Gemma3Processor"}\n' };
  for (const [f, text] of Object.entries(processor)) writeFileSync(join(base, f), text);
  const out = tempDir('dpo-mm-bf16-merge-');
  dpo('merge', '--model_name_or_path', base, '--adapter_name_or_path', FIX, '--output_dir', out);
  for (const [f, text] of Object.entries(processor)) assert.equal(readFileSync(join(out, f), 'utf8'), text, f);
  assert.equal(readFileSync(join(out, 'config.json'), 'utf8'), readFileSync(join(base, 'config.json'), 'utf8'));
  const ours = tensors(join(out, 'model.safetensors'));
  const src = tensors(join(base, 'model.safetensors'));
  assertUntouched(ours, src);
  assert.deepEqual([...new Set([...ours.values()].map((t) => t.dtype))], ['BF16']);
  const peft = tensors(join(FIX, 'peft_merged.safetensors'));
  const bad: string[] = [];
  for (const [n, p] of peft) {
    if (!isText(n)) continue;
    const o = ours.get(n)!.values, w = src32.get(n)!.values;
    // bf16(bf16(W) + ΔW) against W + ΔW in float32: two roundings of 2⁻⁹ relative each.
    for (let i = 0; i < o.length; i++) if (Math.abs(o[i] - p.values[i]) > 2 ** -8 * (Math.abs(w[i]) + Math.abs(p.values[i])) + 1e-7) bad.push(`${n}[${i}]: ${o[i]} vs ${p.values[i]}`);
  }
  assert.deepEqual(bad.slice(0, 5), []);
});

test('full fine-tuning of a multimodal gemma3: the saved model and checkpoint keep the vision tower and load back', () => {
  const out = tempDir('dpo-mm-full-');
  dpo('train', '--model_name_or_path', MM, '--dataset_name', 'examples/dpo_example.json', '--output_dir', out, '--max_steps', '1', '--save_steps', '1',
    '--per_device_train_batch_size', '2', '--learning_rate', '1e-2', '--max_length', '64', '--quiet');
  const src = tensors(join(MM, 'model.safetensors'));
  for (const dir of [out, join(out, 'checkpoint-1')]) {
    const saved = tensors(join(dir, 'model.safetensors'));
    assert.deepEqual([...saved.keys()].sort(), [...src.keys()].sort(), dir);
    assertUntouched(saved, src);
    const { model } = loadCausalLM(dir);
    const moved = exportWeights(model).filter(([n, t]) => t.data.some((v, i) => Math.abs(v - src.get(n)!.values[i]) > 1e-4));
    assert.ok(moved.length > 10, 'training changed the text weights that were saved');
    for (const [n, t] of exportWeights(model)) assert.deepEqual(Array.from(t.data), Array.from(saved.get(n)!.values), n);
  }
});

test('saving a multimodal gemma3 whose source checkpoint is unknown is a one-line error', () => {
  const { model } = loadCausalLM(MM);
  model._nameOrPath = undefined;
  assert.throws(() => writeModelFiles(model, tempDir('dpo-mm-nosrc-'), ''),
    /^DpoError: saving a gemma3 model: the checkpoint it came from is unknown, so its vision tower cannot be saved with it; load it with loadCausalLM or pass modelNameOrPath to the trainer$/);
});
