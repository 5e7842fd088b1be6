/** Gemma 3 specifics beyond parity: the multimodal layout saved back, keys we refuse or take, image columns. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad } from '../../src/autograd/tape.js';
import { DpoError } from '../../src/errors.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadCausalLM, saveCausalLM } from '../../src/models/load.js';
import { archFromConfig } from '../../src/models/registry.js';
import { refuseImages } from '../../src/data/validate.js';
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
});
