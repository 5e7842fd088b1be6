/** Through the real CLI: a checkpoint whose config.json lies, or a run too big for memory, is a one-line error with exit code 2, at once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const root = mkdtempSync(join(tmpdir(), 'dpo-cli-bad-'));
after(() => rmSync(root, { recursive: true, force: true }));

function mutated(fixture: string, patch: Record<string, unknown>): string {
  const d = mkdtempSync(join(root, `${fixture}-`));
  cpSync(join('test/fixtures/models', fixture), d, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
  writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, ...patch }));
  return d;
}

function train(model: string, env: Record<string, string> = {}, ...extra: string[]): { code: number | null; err: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'train', '--model_name_or_path', model, '--dataset_name', 'examples/dpo_example.json', '--max_steps', '1', '--output_dir', join(root, 'out'), '--quiet', ...extra], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
  return { code: r.status, err: r.stderr, ms: Date.now() - t0 };
}

test('config.json sizes of 1e9 (the issue\'s hang and allocation failures) stop at once with the key and the expected value', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['llama', { num_hidden_layers: 1e9 }, /config\.json: num_hidden_layers is 1000000000 but model\.safetensors has layers 0\.\.1; expected 2$/],
    ['llama', { vocab_size: 1e9 }, /config\.json: vocab_size is 1000000000 but model\.safetensors has "model\.embed_tokens\.weight" of shape \[320, 32\]; expected 320$/],
    ['llama', { hidden_size: 1e9 }, /hidden_size is 1000000000 .*; expected 32$/],
    ['llama', { intermediate_size: 1e9 }, /intermediate_size is 1000000000 .*; expected 64$/],
    ['llama', { num_attention_heads: 1e9 }, /num_attention_heads is 1000000000 .*; expected 4$/],
    ['gpt2', { n_layer: 1e9 }, /n_layer is 1000000000 but model\.safetensors has layers 0\.\.1; expected 2$/],
  ];
  for (const [fixture, patch, pattern] of cases) {
    const r = train(mutated(fixture, patch));
    assert.equal(r.code, 2, `${JSON.stringify(patch)}: ${r.err}`);
    const lines = r.err.trim().split('\n');
    assert.equal(lines.length, 1, r.err);
    assert.match(lines[0], /^dpo: /);
    assert.match(lines[0], pattern);
    assert.ok(r.ms < 10_000, `${JSON.stringify(patch)} took ${r.ms} ms`);
  }
});

test('a run that cannot fit in memory stops before building, with the figure and what to try', () => {
  // (bf16 off, so that it is among what to try; TRL's default, and ours, is on)
  const r = train('test/fixtures/models/llama', { DPO_MEMORY_LIMIT: '500000' }, '--no_bf16');
  assert.equal(r.code, 2, r.err);
  assert.match(r.err.trim(), /^dpo: this run needs about [\d.]+ MB of memory \(weights [\d.]+ kB, gradients [\d.]+ kB, AdamW state [\d.]+ kB, reference copy [\d.]+ kB, runtime and working buffers [\d.]+ MB\) but 500\.0 kB is available \(DPO_MEMORY_LIMIT\); try LoRA \(--use_peft\), --bf16$/);
  // With LoRA the weights and state fit; the activations of the longest batch are checked once the data is tokenized.
  // (gradient checkpointing off, so that it is among what to try; TRL's default is on)
  // (81 MB: the fixed runtime of 80 MB and the weights fit, the activations (0.7 MB of packed tokens) do not)
  const l = train('test/fixtures/models/llama', { DPO_MEMORY_LIMIT: '81000000' }, '--use_peft', '--no_gradient_checkpointing');
  assert.equal(l.code, 2, l.err);
  assert.match(l.err.trim(), /^dpo: this run needs about .*activations for \d+ tokens \(\d+ rows, the longest \d+\) .*; try --dtype bfloat16 or --load_in_4bit \(the frozen base in bf16 \/ 4-bit\), a shorter --max_length, --gradient_checkpointing, a smaller --per_device_train_batch_size/);
});
