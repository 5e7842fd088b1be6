/**
 * LoRA variants against PEFT 0.21 (test/fixtures/peft-variants, from tools/fixtures/make_peft_variants.py):
 * the modules PEFT wraps with their r and scaling (targets, patterns, layers_to_transform, exclude_modules,
 * regex, lm_head, modules_to_save); pissa / olora initialisation numerics (residual base, s·B·A); PEFT's
 * saved adapters (DoRA, modules_to_save, each init) loaded here give PeftModel's logits, also once merged;
 * and what we save back uses PEFT's key names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad } from '../../src/autograd/tape.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadCausalLM } from '../../src/models/load.js';
import { LoraConfig } from '../../src/lora/config.js';
import { applyLoraConfig, loraLayers, planTargets, resolveTargets } from '../../src/lora/apply.js';
import { loadAdapter, mergeAndUnload, rememberLoraConfig, saveAdapter } from '../../src/lora/peft-io.js';

const FIX = 'test/fixtures/peft-variants';

interface Case {
  case: { name: string; model: string; cfg: Record<string, unknown> };
  layers: Record<string, { r: number; scaling: number }>;
  input_ids: number[][];
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function readAll(path: string): Map<string, Float32Array> {
  const f = new SafetensorsFile(path);
  try {
    return new Map([...f.tensors.keys()].map((k) => [k, f.read(k)]));
  } finally {
    f.close();
  }
}

/** PEFT's LoraConfig keys as given to get_peft_model (fan_in_fan_out is implied by the architecture here). */
function ourConfig(cfg: Record<string, unknown>): LoraConfig {
  const { fan_in_fan_out: _f, ...rest } = cfg;
  return new LoraConfig({ ...rest, task_type: 'CAUSAL_LM' });
}

for (const name of readdirSync(FIX).sort()) {
  const dir = join(FIX, name);
  const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as Case;
  const modelDir = join('test/fixtures/models', c.case.model);

  test(`${name}: the layers PEFT wraps, with its r and scaling`, () => {
    const { model } = loadCausalLM(modelDir);
    const cfg = ourConfig(c.case.cfg);
    const planned = planTargets(resolveTargets(model, cfg), cfg);
    const ours = Object.fromEntries(planned.map((t) => [t.name, { r: t.r, scaling: cfg.useRslora ? t.alpha / Math.sqrt(t.r) : t.alpha / t.r }]));
    assert.deepEqual(Object.keys(ours).sort(), Object.keys(c.layers).sort());
    for (const [n, want] of Object.entries(c.layers)) {
      assert.equal(ours[n].r, want.r, `${n}: r`);
      assert.ok(Math.abs(ours[n].scaling - want.scaling) < 1e-12, `${n}: scaling ${ours[n].scaling} vs PEFT ${want.scaling}`);
    }
  });

  const init = c.case.cfg.init_lora_weights;
  if (init === 'pissa' || init === 'olora') {
    test(`${name}: ${init} initialisation equals PEFT's (residual base weight and s·B·A)`, () => {
      const { model } = loadCausalLM(modelDir);
      const cfg = ourConfig(c.case.cfg);
      const before = noGrad(() => model.logits({ ids: Int32Array.from(c.input_ids.flat()), B: 1, T: c.input_ids[0].length })).data.slice();
      const layers = applyLoraConfig(model, cfg, 0);
      const residual = readAll(join(dir, 'residual.safetensors'));
      const peft = readAll(join(dir, 'initial', 'adapter_model.safetensors'));
      for (const [n, l] of layers) {
        assert.ok(maxDiff(l.base_layer.weight.data, residual.get(n)!) < 2e-5, `${n}: residual base ${maxDiff(l.base_layer.weight.data, residual.get(n)!)}`);
        const prod = (A: ArrayLike<number>, B: ArrayLike<number>) => {
          const out = new Float64Array(l.outFeatures * l.inFeatures);
          for (let o = 0; o < l.outFeatures; o++) for (let j = 0; j < l.cfg.r; j++) for (let i = 0; i < l.inFeatures; i++) out[o * l.inFeatures + i] += B[o * l.cfg.r + j] * A[j * l.inFeatures + i];
          return out;
        };
        const ours = prod(l.lora_A.weight.data, l.lora_B.weight.data);
        const theirs = prod(peft.get(`base_model.model.${n}.lora_A.weight`)!, peft.get(`base_model.model.${n}.lora_B.weight`)!);
        assert.ok(maxDiff(ours, theirs) < 2e-5, `${n}: B·A ${maxDiff(ours, theirs)}`);
      }
      // W_res + s·B·A = W: the model's output is unchanged at the start.
      const after = noGrad(() => model.logits({ ids: Int32Array.from(c.input_ids.flat()), B: 1, T: c.input_ids[0].length })).data;
      assert.ok(maxDiff(after, before) < 1e-4);
    });
  }

  test(`${name}: PEFT's saved adapter gives PeftModel's logits here, merged too; saved back under PEFT's keys`, () => {
    const logits = readAll(join(dir, 'logits.safetensors'));
    const ids = Int32Array.from(c.input_ids.flat());
    const inp = { ids, B: 1, T: ids.length };
    const { model } = loadCausalLM(modelDir);
    assert.ok(maxDiff(noGrad(() => model.logits(inp)).data, logits.get('base')!) < 1e-4);
    loadAdapter(model, join(dir, 'trained'));
    const e1 = maxDiff(noGrad(() => model.logits(inp)).data, logits.get('peft')!);
    assert.ok(e1 <= 1e-4, `${name}: adapter logits vs PEFT ${e1}`);
    const out = mkdtempSync(join(tmpdir(), 'peft-variant-'));
    saveAdapter(model, out, modelDir);
    const theirs = readAll(join(dir, 'trained', 'adapter_model.safetensors'));
    const ours = readAll(join(out, 'adapter_model.safetensors'));
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
    for (const [k, v] of theirs) assert.ok(maxDiff(ours.get(k)!, v) < 1e-6, k);
    const savedCfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    const peftCfg = JSON.parse(readFileSync(join(dir, 'trained', 'adapter_config.json'), 'utf8'));
    for (const k of ['r', 'lora_alpha', 'use_dora', 'use_rslora', 'init_lora_weights', 'rank_pattern', 'alpha_pattern', 'modules_to_save', 'layers_to_transform', 'exclude_modules']) {
      assert.deepEqual(savedCfg[k], peftCfg[k], `adapter_config.json ${k}`);
    }
    mergeAndUnload(model);
    assert.equal(loraLayers(model).length, 0);
    const e2 = maxDiff(noGrad(() => model.logits(inp)).data, logits.get('peft')!);
    assert.ok(e2 <= 1e-4, `${name}: merged logits vs PEFT ${e2}`);
  });
}

test('rememberLoraConfig is what adapter_config.json reports', () => {
  const { model } = loadCausalLM('test/fixtures/models/llama');
  const cfg = new LoraConfig({ r: 4, lora_alpha: 8, target_modules: ['q_proj'], rank_pattern: { 'layers\\.1\\.self_attn\\.q_proj': 2 } });
  applyLoraConfig(model, cfg, 0);
  rememberLoraConfig(model, cfg);
  const out = mkdtempSync(join(tmpdir(), 'peft-variant-'));
  saveAdapter(model, out, 'x');
  const saved = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  assert.deepEqual(saved.rank_pattern, { 'layers\\.1\\.self_attn\\.q_proj': 2 });
  assert.equal(saved.r, 4);
});
