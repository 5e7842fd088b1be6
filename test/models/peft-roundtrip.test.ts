/**
 * Our saved adapters load in PEFT (tools/fixtures/check_peft_roundtrip.py trains them with our CLI,
 * loads them with PeftModel.from_pretrained and records logits, then continues training them there
 * with TRL); here our own forward with the same adapter files, and after merging, must give PEFT's
 * logits, and continuing from the adapter here gives TRL's continued log and trains the same tensors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad } from '../../src/autograd/tape.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadCausalLM } from '../../src/models/load.js';
import { loadAdapter, mergeAndUnload, peftModuleNames } from '../../src/lora/peft-io.js';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { Dataset } from '../../src/data/dataset.js';
import { DPOConfig } from '../../src/dpo/config.js';
import { DPOTrainer } from '../../src/dpo/trainer.js';

const FIX = 'test/fixtures/peft-roundtrip';
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

for (const name of readdirSync(FIX).sort()) {
  const dir = join(FIX, name);
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  const modelDir = join('test/fixtures/models', meta.model);

  test(`${name}: adapter logits equal PEFT's, merged logits equal transformers' merged model`, () => {
    const f = new SafetensorsFile(join(dir, 'logits.safetensors'));
    const peft = f.read('peft'), merged = f.read('merged'), base = f.read('base');
    f.close();
    const ids = Int32Array.from(meta.input_ids.flat());
    const { model } = loadCausalLM(modelDir);
    const inp = { ids, B: 1, T: ids.length };
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

  test(`${name}: continuing from the adapter trains PEFT's tensors to TRL's continued log`, async () => {
    const { model } = loadCausalLM(modelDir);
    loadAdapter(model, dir);
    const seed = JSON.parse(readFileSync('examples/dpo_example.json', 'utf8')) as Record<string, string[]>;
    const { report_to: _r, use_cpu: _u, ...args } = meta.continue_args;
    const trainer = new DPOTrainer({
      model, args: new DPOConfig({ ...args, output_dir: mkdtempSync(join(tmpdir(), 'peft-continue-')) }),
      trainDataset: Dataset.fromDict(seed), processingClass: HfTokenizer.fromDir(modelDir), warn: () => {},
    });
    // Our trainable tensors under PEFT's parameter names (adapter "default"; a multimodal model's text layers under its module path).
    const { toPeft } = peftModuleNames(model);
    const peftName = (n: string) => `base_model.model.${toPeft(n)}`
      .replace(/\.(lora_[AB])\.weight$/, '.$1.default.weight')
      .replace(/\.lora_magnitude_vector$/, '.lora_magnitude_vector.default.weight')
      .replace(/^(base_model\.model\.[^]*?)\.(weight)$/, (m, p: string, w: string) => (/lora_/.test(p) ? m : `${p}.modules_to_save.default.${w}`));
    assert.deepEqual(trainer.trainableParameters().map(([n]) => peftName(n)).sort(), meta.continue_trainable);
    await trainer.train();
    const ours = trainer.state.log_history.filter((h) => 'loss' in h);
    const theirs = meta.continue_log_history as Record<string, number>[];
    // pissa / olora: TRL's add_adapter("ref") redoes the init on the already residual base (W_res − s·B₁·A₁), so its
    // policy and reference are no longer the saved adapter's model; only the step-1 loss (policy = reference: ln 2) compares.
    const quirk = /pissa|olora/.test(name);
    const worst: string[] = [];
    for (let i = 0; i < (quirk ? 1 : theirs.length); i++) {
      for (const [k, v] of Object.entries(theirs[i])) {
        if (k === 'step' || k === 'epoch' || typeof v !== 'number' || (quirk && k !== 'loss')) continue;
        const err = Math.abs(ours[i][k] - v) / Math.max(Math.abs(v), 1e-3);
        if (err > (i === 0 ? 1e-4 : 1e-3)) worst.push(`step ${i + 1} ${k}: ours ${ours[i][k]} vs TRL ${v}`);
      }
    }
    assert.deepEqual(worst, []);
  });
}
