/**
 * One tiny iterative DPO round through the CLI (sample → judge → train → held-out eval) on the newer
 * architectures: Gemma 3 (tied head, two RoPE tables, sliding layers), Phi-3 (fused qkv_proj /
 * gate_up_proj) and a multimodal gemma3 checkpoint (its round model saved back with the vision tower).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadCausalLM } from '../../src/models/load.js';
import { tempDir } from '../io/helpers.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const PROMPTS = ['hello', 'What is your name?', 'Tell me a joke.', 'Which is the best programming language?', 'how are you', 'I am fine'];

for (const name of ['gemma3', 'phi3', 'gemma3-mm']) {
  test(`iterative DPO, one round on ${name}: pairs, finite training metrics and held-out KL, a changed model that loads back`, () => {
    const dir = tempDir(`dpo-iter-${name}-`);
    writeFileSync(join(dir, 'prompts.jsonl'), PROMPTS.map((p) => `${JSON.stringify({ prompt: p })}\n`).join(''));
    // A deterministic judge with few ties: the completion's character codes summed.
    writeFileSync(join(dir, 'judge.mjs'), 'export default (p, c) => [...c].reduce((s, ch) => s + ch.charCodeAt(0), 0) % 97;\n');
    const model = join('test/fixtures/models', name), out = join(dir, 'out');
    const r = spawnSync(process.execPath, [CLI, 'train', '--model_name_or_path', model, '--prompts', join(dir, 'prompts.jsonl'), '--judge', join(dir, 'judge.mjs'),
      '--iterations', '1', '--num_generations', '3', '--max_new_tokens', '4', '--eval_prompts', join(dir, 'prompts.jsonl'), '--eval_num_samples', '2',
      '--output_dir', out, '--per_device_train_batch_size', '2', '--learning_rate', '5e-2', '--max_length', '48', '--logging_steps', '1', '--seed', '5', '--quiet'], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    const rec = JSON.parse(readFileSync(join(out, 'round-1', 'round.json'), 'utf8'));
    assert.ok(rec.pairs >= 2 && rec.steps >= 1, JSON.stringify(rec));
    for (const k of ['train_loss', 'rewards/accuracies', 'rewards/margins', 'heldout_score', 'heldout_kl', 'heldout_win_rate']) assert.ok(Number.isFinite(rec[k]), `${k}: ${rec[k]}`);
    const base = loadCausalLM(model).model, trained = loadCausalLM(join(out, 'round-1')).model;
    const from = new Map(base.namedParameters());
    const moved = trained.namedParameters().filter(([n, p]) => p.data.some((v, i) => Math.abs(v - from.get(n)!.data[i]) > 1e-5));
    assert.ok(moved.length > 5, `${moved.length} tensors changed`);
    if (name === 'gemma3-mm') {
      const f = new SafetensorsFile(join(out, 'round-1', 'model.safetensors'));
      assert.ok([...f.tensors.keys()].some((n) => n.startsWith('vision_tower.')), 'the round model keeps the vision tower');
      f.close();
    }
  });
}
