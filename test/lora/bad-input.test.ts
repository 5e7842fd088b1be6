/** Every bad LoRA input is a one-line DpoError saying what, where and what to do. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DpoError } from '../../src/errors.js';
import { loadCausalLM } from '../../src/models/load.js';
import { LoraConfig, loraConfigFromOptions } from '../../src/lora/config.js';
import { applyLoraConfig } from '../../src/lora/apply.js';
import { loadAdapter } from '../../src/lora/peft-io.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';

function throwsLine(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DpoError, String(e));
    assert.ok(!e.message.includes('\n'), `not one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

test('LoraConfig refuses bad values and the combinations PEFT refuses', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ use_dora: 'yes' }, /use_dora must be true or false/],
    [{ init_lora_weights: 'loftq' }, /init_lora_weights must be one of true, false, "gaussian", "pissa", "olora"; got "loftq"/],
    [{ init_lora_weights: 'pissa_niter_4' }, /pissa_niter_4.*randomised SVD.*use "pissa"/],
    [{ rank_pattern: { q_proj: 0 } }, /rank_pattern\["q_proj"\] must be a positive integer/],
    [{ alpha_pattern: { q_proj: 'x' } }, /alpha_pattern\["q_proj"\] must be a number/],
    [{ rank_pattern: { '(': 2 } }, /rank_pattern key "\(" is not a valid regular expression/],
    [{ rank_pattern: [1] }, /rank_pattern must be a mapping/],
    [{ target_modules: '.*q_proj', layers_to_transform: [0] }, /layers_to_transform cannot be used when target_modules is a str/],
    [{ target_modules: '.*q_proj', layers_pattern: 'layers' }, /layers_pattern cannot be used when target_modules is a str/],
    [{ target_modules: ['q_proj'], layers_pattern: 'layers' }, /when layers_pattern is specified, layers_to_transform must also be specified/],
    [{ layers_to_transform: 'one' }, /layers_to_transform must be a layer index or a list/],
    [{ modules_to_save: 'lm_head' }, /modules_to_save must be a list of module names/],
    [{ fan_in_fan_out: true }, /unknown option "fan_in_fan_out"/],
  ];
  for (const [o, re] of cases) throwsLine(() => new LoraConfig(o), re);
  throwsLine(() => loraConfigFromOptions({ lora_r: 4, lora_alpha: 8, peft_config: ['x'] }), /peft_config must be a mapping of PEFT LoraConfig keys/);
});

test('applying a LoraConfig: patterns, modules and layers that match nothing, unsupported layers', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['llama', { target_modules: ['q_proj'], rank_pattern: { k_proj: 2 } }, /rank_pattern key "k_proj" matches none of the LoRA layers/],
    ['llama', { target_modules: ['q_proj'], alpha_pattern: { 'layers\\.7\\.self_attn\\.q_proj': 2 } }, /alpha_pattern key .* matches none of the LoRA layers/],
    ['llama', { target_modules: ['q_proj'], modules_to_save: ['score'] }, /modules_to_save "score" matches no module/],
    ['llama-tied', { target_modules: ['q_proj'], modules_to_save: ['lm_head'] }, /ties lm_head to the input embedding/],
    ['llama', { target_modules: ['embed_tokens'] }, /match "model.embed_tokens", which is not a linear layer/],
    ['llama', { target_modules: ['lm_head'], lora_dropout: 0.05 }, /LoRA on lm_head needs lora_dropout 0/],
    ['gpt2', { target_modules: ['c_attn'], init_lora_weights: 'olora' }, /olora on transformer.h.0.attn.c_attn: PEFT 0.21 factors GPT-2's transposed Conv1D/],
    ['llama', { r: 64, target_modules: ['q_proj'], init_lora_weights: 'pissa' }, /r=64 exceeds min\(in, out\) = 32/],
    ['llama', { target_modules: ['q_proj'], exclude_modules: ['q_proj'] }, /match no linear layer .* after exclude_modules/],
    ['llama', { target_modules: ['q_proj'], layers_to_transform: [5] }, /match no linear layer/],
    ['llama', { target_modules: 'q_proj' }, /a single target is a regex on the full module name, as in PEFT: try "\.\*\\\.q_proj"/],
  ];
  for (const [m, o, re] of cases) {
    const { model } = loadCausalLM(join('test/fixtures/models', m));
    throwsLine(() => applyLoraConfig(model, new LoraConfig({ r: 4, lora_alpha: 8, ...o }), 0), re);
  }
});

function editedAdapter(src: string, edit: (cfg: Record<string, unknown>, tensors: Map<string, TensorToWrite>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'lora-bad-'));
  cpSync(src, dir, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  const f = new SafetensorsFile(join(dir, 'adapter_model.safetensors'));
  const tensors = new Map([...f.tensors.values()].map((i) => [i.name, { shape: i.shape, data: f.read(i.name) } as TensorToWrite]));
  f.close();
  edit(cfg, tensors);
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(cfg));
  rmSync(join(dir, 'adapter_model.safetensors'));
  writeSafetensors(join(dir, 'adapter_model.safetensors'), [...tensors]);
  return dir;
}

test('loading a PEFT adapter whose files disagree with its config', () => {
  const V = 'test/fixtures/peft-variants';
  const cases: [string, (c: Record<string, unknown>, t: Map<string, TensorToWrite>) => void, RegExp][] = [
    [`${V}/llama-dora/trained`, (c) => (c.use_dora = false), /is a DoRA magnitude but adapter_config.json has use_dora false/],
    [`${V}/llama-dora/trained`, (_c, t) => { for (const k of [...t.keys()]) if (k.includes('magnitude')) t.delete(k); }, /use_dora is true but .* has no lora_magnitude_vector/],
    [`${V}/llama-modules_to_save/trained`, (c) => (c.modules_to_save = null), /unexpected tensor "base_model.model.lm_head.weight".*modules_to_save is not set/],
    [`${V}/llama-modules_to_save/trained`, (_c, t) => t.delete('base_model.model.lm_head.weight'), /selects lm_head but the file has no base_model.model.lm_head.weight/],
    [`${V}/llama-patterns/trained`, (c) => (c.rank_pattern = {}), /r is 4 but .*model.layers.0.mlp.down_proj.lora_A.weight of shape \[2, 64\]; expected 2/],
    [`${V}/llama-patterns/trained`, (c) => (c.rank_pattern = { down_proj: 3 }), /r is 3 for model.layers.0.mlp.down_proj \(rank_pattern\) but .* expected 2/],
    [`${V}/llama-patterns/trained`, (c) => (c.init_lora_weights = 'loftq'), /adapter_config.json: init_lora_weights must be one of/],
    [`${V}/llama-patterns/trained`, (c) => (c.lora_bias = true), /"lora_bias" true is not supported/],
  ];
  for (const [src, edit, re] of cases) {
    const { model } = loadCausalLM('test/fixtures/models/llama');
    throwsLine(() => loadAdapter(model, editedAdapter(src, edit)), re);
  }
});

test('alpha_pattern of a loaded adapter sets that layer\'s scaling (it used to take lora_alpha for all)', () => {
  const { model } = loadCausalLM('test/fixtures/models/llama');
  const layers = loadAdapter(model, 'test/fixtures/peft-variants/llama-patterns/trained');
  assert.equal(layers.get('model.layers.0.self_attn.v_proj')!.scaling, 32 / 4);
  assert.equal(layers.get('model.layers.0.self_attn.o_proj')!.scaling, 3 / 4);
  assert.equal(layers.get('model.layers.1.self_attn.o_proj')!.scaling, 8 / 4);
  assert.equal(layers.get('model.layers.1.self_attn.q_proj')!.scaling, 8 / 6);
  assert.equal(layers.get('model.layers.0.mlp.down_proj')!.scaling, 8 / 2);
});

test('a multimodal gemma3 adapter: a vision-tower LoRA (not loaded here) or a text-only target_modules is an error', () => {
  const src = 'test/fixtures/peft-roundtrip/gemma3-mm';
  const vision = 'base_model.model.model.vision_tower.encoder.layers.0.self_attn.q_proj';
  const cases: [(c: Record<string, unknown>, t: Map<string, TensorToWrite>) => void, RegExp][] = [
    [(_c, t) => { t.set(`${vision}.lora_A.weight`, { shape: [4, 16], data: new Float32Array(64) }); t.set(`${vision}.lora_B.weight`, { shape: [16, 4], data: new Float32Array(64) }); },
      /adapter targets "model.vision_tower.encoder.layers.0.self_attn.q_proj", outside the text model of this multimodal gemma3 checkpoint \(the vision tower and projector are not loaded\); use an adapter on the language model only/],
    [(c) => (c.target_modules = 'model\\.layers\\..*\\.(?:q_proj|v_proj|gate_proj)'), /does not cover "model.layers.0.mlp.gate_proj"/],
  ];
  for (const [edit, re] of cases) {
    const { model } = loadCausalLM('test/fixtures/models/gemma3-mm');
    throwsLine(() => loadAdapter(model, editedAdapter(src, edit)), re);
  }
});
