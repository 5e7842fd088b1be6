/** `dpo export` as a subprocess: both formats from a saved PEFT adapter, and its one-line errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const ADAPTER = 'test/fixtures/peft-roundtrip/llama'; // names test/fixtures/models/llama as its base
const out = mkdtempSync(join(tmpdir(), 'dpo-export-'));

function dpo(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, 'export', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
const parse = (f: string) => gguf(f, { allowLocalFile: true, typedMetadata: true });

test('dpo export: merged model (adapter dir naming its base) and the adapter alone', async () => {
  const merged = join(out, 'merged.gguf');
  let r = dpo('--model_name_or_path', ADAPTER, '--format', 'gguf', '--outtype', 'q8_0', '--output', merged);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /merged.*q8_0/);
  const m = await parse(merged);
  assert.equal(m.typedMetadata['general.type']?.value, 'model');
  assert.equal(m.typedMetadata['general.file_type']?.value, 7);
  assert.ok(m.tensorInfos.some((t) => t.name === 'blk.1.attn_q.weight' && t.dtype === 8));

  const lora = join(out, 'adapter.gguf');
  r = dpo('--model_name_or_path', 'test/fixtures/models/llama', '--adapter_name_or_path', ADAPTER, '--format', 'gguf-lora', '--output', lora);
  assert.equal(r.code, 0, r.err);
  const a = await parse(lora);
  assert.equal(a.typedMetadata['general.architecture']?.value, 'llama');
  assert.equal(a.typedMetadata['general.type']?.value, 'adapter');
  assert.equal(a.typedMetadata['adapter.type' as 'general.type']?.value, 'lora');
  assert.equal(a.typedMetadata['adapter.lora.alpha' as 'general.type']?.value, 8);
  // r = 4 on q_proj, v_proj, down_proj of 2 layers; default outtype f32 as convert_lora_to_gguf.py.
  const names = a.tensorInfos.map((t) => t.name).sort();
  assert.equal(names.length, 12);
  assert.ok(names.includes('blk.0.attn_q.weight.lora_a') && names.includes('blk.1.ffn_down.weight.lora_b'));
  const qa = a.tensorInfos.find((t) => t.name === 'blk.0.attn_q.weight.lora_a')!;
  assert.deepEqual(qa.shape.map(Number), [32, 4]); // ne0 = in_features, ne1 = r
  assert.equal(qa.dtype, 0);
});

test('dpo export: bad requests are one-line errors with exit code 2', () => {
  const cases: [string[], RegExp][] = [
    [['--model_name_or_path', 'test/fixtures/models/llama', '--format', 'gguf'], /--output FILE\.gguf is required/],
    [['--model_name_or_path', 'test/fixtures/models/llama', '--format', 'gguf-lora', '--output', join(out, 'x.gguf')], /gguf-lora needs an adapter/],
    [['--model_name_or_path', 'test/fixtures/models/llama', '--format', 'onnx', '--output', join(out, 'x.gguf')], /format/],
    [['--model_name_or_path', 'test/fixtures/models/llama', '--outtype', 'q4_0', '--output', join(out, 'x.gguf')], /outtype/],
    [['--model_name_or_path', 'test/fixtures/models/llama', '--output', out], /is a directory/],
  ];
  for (const [args, re] of cases) {
    const r = dpo(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  }
});

test('dpo export: mistral with a sliding window shorter than its context says llama.cpp lacks it', () => {
  const r = dpo('--model_name_or_path', 'test/fixtures/models/mistral', '--outtype', 'f32', '--output', join(out, 'mistral.gguf'));
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /no sliding-window attention.*sliding_window = 6/);
});
