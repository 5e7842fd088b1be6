/**
 * Our saved adapters load in PEFT (tools/fixtures/check_peft_roundtrip.py trains them with our CLI,
 * loads them with PeftModel.from_pretrained and records logits); here our own forward with the
 * same adapter files, and after merging, must give PEFT's logits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad } from '../../src/autograd/tape.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadCausalLM } from '../../src/models/load.js';
import { loadAdapter, mergeAndUnload } from '../../src/lora/peft-io.js';

for (const name of ['llama', 'gpt2', 'gemma3']) {
  test(`${name}: adapter logits equal PEFT's, merged logits equal transformers' merged model`, () => {
    const dir = join('test/fixtures/peft-roundtrip', name);
    const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
    const f = new SafetensorsFile(join(dir, 'logits.safetensors'));
    const peft = f.read('peft'), merged = f.read('merged'), base = f.read('base');
    f.close();
    const ids = Int32Array.from(meta.input_ids.flat());
    const { model } = loadCausalLM(join('test/fixtures/models', name));
    const inp = { ids, B: 1, T: ids.length };
    const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let m = 0;
      for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
      return m;
    };
    assert.ok(maxDiff(noGrad(() => model.logits(inp)).data, base) < 1e-4);
    loadAdapter(model, dir);
    const withAdapter = noGrad(() => model.logits(inp)).data;
    assert.ok(maxDiff(withAdapter, base) > 1e-2, 'the adapter must change the logits for this check to mean anything');
    const e1 = maxDiff(withAdapter, peft);
    assert.ok(e1 <= 1e-4, `${name}: base+adapter vs PEFT: ${e1}`);
    mergeAndUnload(model);
    const e2 = maxDiff(noGrad(() => model.logits(inp)).data, merged);
    assert.ok(e2 <= 1e-4, `${name}: merged vs transformers: ${e2}`);
  });
}
