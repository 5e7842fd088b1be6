/** Phi-3 specifics beyond parity: the fused projections as LoRA targets, keys we refuse. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../../src/errors.js';
import { loadCausalLM } from '../../src/models/load.js';
import { archFromConfig } from '../../src/models/registry.js';
import { resolveTargets } from '../../src/lora/apply.js';
import { generate, generateBatch } from '../../src/generate/generate.js';

const DIR = 'test/fixtures/models/phi3';

test('phi3: LoRA targets use the fused names as PEFT does; PEFT has no default targets for phi3', () => {
  const { model } = loadCausalLM(DIR);
  assert.deepEqual(resolveTargets(model, ['qkv_proj']), ['model.layers.0.self_attn.qkv_proj', 'model.layers.1.self_attn.qkv_proj']);
  assert.deepEqual(resolveTargets(model, ['gate_up_proj', 'down_proj']).length, 4);
  assert.throws(() => resolveTargets(model, ['q_proj']), /match no linear layer of this phi3 model; its linear layers are: qkv_proj, o_proj, gate_up_proj, down_proj, lm_head/);
  assert.throws(() => resolveTargets(model, null), /no default LoRA target_modules for model_type phi3 \(PEFT has none\); pass lora_target_modules/);
});

test('phi3: keys that would change the numbers and are not implemented are one-line errors', () => {
  const raw = JSON.parse(readFileSync(join(DIR, 'config.json'), 'utf8'));
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ rope_parameters: { ...raw.rope_parameters, rope_type: 'linear', factor: 2.0 } }, /c\.json: phi3 rope type "linear" is not supported by transformers' Phi-3; use default or longrope/],
    [{ rope_parameters: { ...raw.rope_parameters, short_factor: [1.0, 1.0, 1.0] } }, /c\.json: rope short_factor has 3 entries; Phi-3 needs rotary dims \/ 2 = 2/],
    [{ rope_parameters: undefined, rope_scaling: { type: 'longrope', short_factor: [1.0, 1.0] } }, /c\.json: rope_scaling of rope type "longrope" needs "long_factor"/],
    [{ resid_pdrop: 0.1 }, /c\.json: "resid_pdrop" = 0\.1 is not supported for model_type "phi3" \(residual \/ embedding dropout\)/],
    [{ embd_pdrop: 0.1 }, /"embd_pdrop" = 0\.1 is not supported for model_type "phi3"/],
    [{ partial_rotary_factor: 0, rope_parameters: { ...raw.rope_parameters, partial_rotary_factor: 0 } }, /c\.json: rope_parameters\.partial_rotary_factor must be in \(0, 1\], got 0/],
  ];
  for (const [patch, re] of cases) {
    assert.throws(() => archFromConfig({ ...raw, ...patch }, 'c.json'), (e: unknown) => e instanceof DpoError && re.test(e.message) && !e.message.includes('\n'), String(re));
  }
  // Legacy "su" / "yarn" are read as longrope (Phi3Config.convert_rope_params_to_dict).
  const su = archFromConfig({ ...raw, rope_parameters: undefined, rope_scaling: { type: 'su', short_factor: [1.0, 1.5], long_factor: [2.0, 4.0] } });
  assert.equal(su.rope!.plan.perLayer ? null : su.rope!.plan.params.rope_type, 'longrope');
  assert.equal(su.layer(0).window, 6);
  assert.equal(archFromConfig({ ...raw, sliding_window: null }).layer(1).window, 0);
});

test('phi3: generation recomputes the sequence once past original_max_position_embeddings, batched rows as one at a time', () => {
  const { model } = loadCausalLM(DIR);
  assert.equal(model.recomputeCacheAt, 9);
  const prompt = [5, 17, 42, 8, 99, 3, 61];
  // Row 3 stops at its first token (EOS 225) before the recompute at 9 tokens; the others cross it.
  const cfg = { maxNewTokens: 12, temperature: 0.9, eosTokenIds: [225] };
  const rows = generateBatch(model, prompt, [1, 2, 3], cfg);
  assert.deepEqual(rows.map((r) => r.length), [12, 12, 1]);
  rows.forEach((r, i) => assert.deepEqual(r, generate(model, prompt, { ...cfg, seed: i + 1 }), `row ${i}`));
});
