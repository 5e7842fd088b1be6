/** Gemma 3 specifics beyond parity: the multimodal layout saved back, keys we refuse or take, image columns. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { noGrad } from '../../src/autograd/tape.js';
import { DpoError } from '../../src/errors.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadCausalLM, saveCausalLM } from '../../src/models/load.js';
import { archFromConfig } from '../../src/models/registry.js';
import { refuseImages } from '../../src/data/validate.js';
import { checkPrompts } from '../../src/generate/pairs.js';
import { tempDir } from '../io/helpers.js';

const MODELS = 'test/fixtures/models';

test('gemma3 (multimodal): saved with the text weights under language_model.model., reloads to the same logits', () => {
  const { model } = loadCausalLM(join(MODELS, 'gemma3-mm'));
  const out = tempDir('dpo-gemma3-');
  saveCausalLM(model, out);
  const f = new SafetensorsFile(join(out, 'model.safetensors'));
  const names = [...f.tensors.keys()];
  f.close();
  assert.ok(names.includes('language_model.model.embed_tokens.weight'), names.join(', '));
  assert.ok(names.every((n) => n.startsWith('language_model.model.')), 'only the text model is saved');
  const back = loadCausalLM(out).model;
  const inp = { ids: Int32Array.from([5, 17, 42, 8, 99, 3, 61]), B: 1, T: 7 };
  const a = noGrad(() => model.logits(inp)).data, b = noGrad(() => back.logits(inp)).data;
  assert.deepEqual(Array.from(b), Array.from(a));
});

test('gemma3: keys that would change the numbers and are not implemented are one-line errors', () => {
  const raw = JSON.parse(readFileSync(join(MODELS, 'gemma3', 'config.json'), 'utf8'));
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ final_logit_softcapping: -30.0 }, /c\.json: "final_logit_softcapping" must be a positive number or null, got -30/],
    [{ use_bidirectional_attention: true }, /"use_bidirectional_attention" = true is not supported for model_type "gemma3_text" \(bidirectional attention\)/],
    [{ hidden_activation: 'gelu' }, /hidden_activation "gelu" is not supported for gemma3_text \(supported: gelu_pytorch_tanh\)/],
    [{ rope_scaling: { rope_type: 'ntk', factor: 8.0 } }, /c\.json: rope_scaling rope type "ntk" is not supported; supported: default, linear/],
  ];
  for (const [patch, re] of cases) {
    assert.throws(() => archFromConfig({ ...raw, ...patch }, 'c.json'), (e: unknown) => e instanceof DpoError && re.test(e.message) && !e.message.includes('\n'), String(re));
  }
  const mm = JSON.parse(readFileSync(join(MODELS, 'gemma3-mm', 'config.json'), 'utf8'));
  assert.throws(() => archFromConfig({ ...mm, text_config: { ...mm.text_config, use_bidirectional_attention: true } }, 'm.json'), /m\.json: "text_config\.use_bidirectional_attention" = true is not supported/);
  // Soft-caps, off by default in Gemma 3, are taken when set (Gemma 2's fused ops).
  const capped = archFromConfig({ ...raw, attn_logit_softcapping: 50.0, final_logit_softcapping: 30.0 });
  assert.deepEqual([capped.attnSoftcap, capped.finalSoftcap, archFromConfig(raw).finalSoftcap], [50, 30, 0]);
});

test('an image column is an error naming the column, never dropped', () => {
  assert.throws(() => refuseImages([{ prompt: 'p', chosen: 'a', rejected: 'b', images: [] }], 'train data (x.jsonl)'),
    /train data \(x\.jsonl\): column "images" holds images, but only the text model is trained here \(a vision tower is never loaded\); remove the column or use text-only pairs$/);
  refuseImages([{ prompt: 'p', chosen: 'a', rejected: 'b' }], 'ok');
  // TRL's vision format: an image part inside a message.
  const msg = (content: unknown) => [{ role: 'user', content }];
  assert.throws(() => refuseImages([{ prompt: msg('hi'), chosen: msg('a'), rejected: msg('b') }, { prompt: msg([{ type: 'image' }, { type: 'text', text: 'what is it?' }]), chosen: msg('a'), rejected: msg('b') }], 'train data (v.jsonl)'),
    /: train data \(v\.jsonl\): row 1, prompt\[0\]\.content\[0\] is an "image" part, but only the text model is trained here \(a vision tower is never loaded\); use text-only messages$/);
  refuseImages([{ prompt: msg([{ type: 'text', text: 'hi' }]), chosen: msg('a'), rejected: msg('b') }], 'text parts are fine');
  assert.throws(() => checkPrompts([{ prompt: 'describe', images: ['x.png'] }]), /: prompts: column "images" holds images/);
});

test('dpo train / dpo data on a multimodal gemma3 with an image column: exit 2 and the one-line error', () => {
  const dir = tempDir('dpo-gemma3-img-');
  const data = join(dir, 'vision.jsonl');
  writeFileSync(data, `${JSON.stringify({ prompt: 'What is shown?', chosen: ' a cat', rejected: ' a dog', images: [{ path: 'cat.png' }] })}\n`.repeat(4));
  for (const args of [['train', '--model_name_or_path', join(MODELS, 'gemma3-mm'), '--dataset_name', data, '--output_dir', join(dir, 'out'), '--max_steps', '1'], ['data', '--dataset_name', data]]) {
    const r = spawnSync(process.execPath, [join(process.cwd(), 'dist/src/cli/main.js'), ...args], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr.trim(), /^dpo: .*vision\.jsonl\)?: column "images" holds images, but only the text model is trained here \(a vision tower is never loaded\); remove the column or use text-only pairs$/);
  }
});
