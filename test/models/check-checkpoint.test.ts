/** config.json against the safetensors headers: every disagreement is one line naming the key, before anything is allocated. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../../src/errors.js';
import { archFromConfig } from '../../src/models/registry.js';
import { architectureFor } from '../../src/models/registry.js';
import { loadCausalLM } from '../../src/models/load.js';
import { loadAdapter } from '../../src/lora/peft-io.js';
import { tempDir } from '../io/helpers.js';

const FIXTURES = 'test/fixtures/models';
const NAMES = ['llama', 'llama-tied', 'mistral', 'qwen2', 'qwen3', 'gpt2', 'gemma3', 'gemma3-mm', 'gemma2', 'olmo2', 'granite', 'smollm3', 'phi3'];

test('each family\'s weight table equals the parameters of the model it builds (names and shapes)', () => {
  const variants: Record<string, unknown>[] = [{}, { attention_bias: true }, { mlp_bias: true }, { tie_word_embeddings: true }, { tie_word_embeddings: false }, { head_dim: null }, { n_inner: 48 }];
  for (const name of NAMES) {
    const base = JSON.parse(readFileSync(join(FIXTURES, name, 'config.json'), 'utf8'));
    for (const v of variants) {
      const arch = archFromConfig({ ...base, ...v });
      const A = architectureFor(arch);
      const t = A.weightShapes(arch);
      const table = [...t.global, ...Array.from({ length: t.numLayers }, (_, i) => t.layer(i)).flat()].map((e) => [e.name, e.shape.map((d) => d.size)] as const);
      const params = A.build(arch).namedParameters().map(([n, p]) => [n, p.shape] as const);
      const sort = (xs: readonly (readonly [string, readonly number[]])[]) => [...xs].sort((a, b) => (a[0] < b[0] ? -1 : 1));
      assert.deepEqual(sort(table), sort(params), `${name} ${JSON.stringify(v)}`);
    }
  }
});

function mutated(fixture: string, patch: Record<string, unknown>): string {
  const d = tempDir('dpo-ckpt-');
  cpSync(join(FIXTURES, fixture), d, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete cfg[k];
    else cfg[k] = v;
  }
  writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
  return d;
}

function fails(dir: string, pattern: RegExp): void {
  const t0 = performance.now();
  assert.throws(() => loadCausalLM(dir), (e: unknown) => {
    assert.ok(e instanceof DpoError, `not a DpoError: ${e}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), e.message);
    return true;
  });
  assert.ok(performance.now() - t0 < 2000, 'took too long');
}

test('absurd sizes name the key, the file and the value the weights imply', () => {
  fails(mutated('llama', { num_hidden_layers: 1e9 }), /config\.json: num_hidden_layers is 1000000000 but model\.safetensors has layers 0\.\.1; expected 2$/);
  fails(mutated('llama', { vocab_size: 1e9 }), /config\.json: vocab_size is 1000000000 but model\.safetensors has "model\.embed_tokens\.weight" of shape \[320, 32\]; expected 320$/);
  fails(mutated('llama', { hidden_size: 1e9 }), /hidden_size is 1000000000 .*expected 32$/);
  fails(mutated('llama', { intermediate_size: 1e9 }), /intermediate_size is 1000000000 .*gate_proj.*expected 64$/);
  fails(mutated('llama', { num_attention_heads: 1e9 }), /num_attention_heads is 1000000000 .*q_proj.*expected 4$/);
  fails(mutated('llama', { num_key_value_heads: 4 }), /num_key_value_heads is 4 .*k_proj.*expected 2$/);
  fails(mutated('llama', { head_dim: 16 }), /head_dim is 16 .*expected 8$/);
  fails(mutated('llama', { num_hidden_layers: 1 }), /num_hidden_layers is 1 but model\.safetensors has layers 0\.\.1; expected 2/);
  fails(mutated('gpt2', { n_layer: 1e9 }), /n_layer is 1000000000 but model\.safetensors has layers 0\.\.1; expected 2/);
  fails(mutated('gpt2', { n_embd: 64, n_head: 4 }), /n_embd is 64 .*expected 32$/);
  fails(mutated('gpt2', { n_positions: 1e9 }), /n_positions is 1000000000 .*wpe.*expected 64$/);
  fails(mutated('gpt2', { n_inner: 1e9 }), /n_inner is 1000000000 .*c_fc.*expected 128$/);
  fails(mutated('llama-sharded', { num_hidden_layers: 7 }), /num_hidden_layers is 7 but the shards of model\.safetensors\.index\.json has layers 0\.\.1; expected 2/);
  fails(mutated('llama-tied', { tie_word_embeddings: false }), /tie_word_embeddings is false but model\.safetensors has no lm_head\.weight; expected true/);
  fails(mutated('qwen3', { model_type: 'llama' }), /model\.safetensors: unexpected weights .*"model\.layers\.0\.self_attn\.q_norm\.weight"/);
});

test('sizes that are not whole positive numbers, and heads that do not divide, fail in config.json', () => {
  fails(mutated('llama', { hidden_size: 1.5 }), /"hidden_size" must be a whole number from 1 to \d+, got 1\.5/);
  fails(mutated('llama', { num_hidden_layers: 0 }), /"num_hidden_layers" must be a whole number/);
  fails(mutated('llama', { vocab_size: -1 }), /"vocab_size" must be a whole number/);
  fails(mutated('llama', { intermediate_size: 'NaN' }), /"intermediate_size" must be a number, got "NaN"/);
  fails(mutated('llama', { num_attention_heads: 5, head_dim: undefined }), /"num_attention_heads" 5 does not divide "hidden_size" 32/);
  fails(mutated('llama', { num_key_value_heads: 3 }), /num_attention_heads 4 is not a multiple of num_key_value_heads 3/);
  fails(mutated('gpt2', { n_head: 5 }), /"n_head" 5 does not divide "n_embd" 32/);
  fails(mutated('llama', { rms_norm_eps: -1 }), /"rms_norm_eps" must be between 0 and 1/);
  fails(mutated('llama', { rope_parameters: { rope_type: 'default', rope_theta: 'x' } }), /config\.json: rope_parameters\.rope_theta must be a number, got "x"/);
});

test('dtype and layer gaps in the header are named', () => {
  const d = tempDir('dpo-ckpt-');
  cpSync(join(FIXTURES, 'llama'), d, { recursive: true });
  const p = join(d, 'model.safetensors');
  const buf = readFileSync(p);
  const n = Number(buf.readBigUInt64LE(0));
  const header = buf.subarray(8, 8 + n).toString('utf8');
  // Same byte length: rename layer 1's tensors to layer 3, then make one tensor I32 (same 4 bytes per element).
  const gap = Buffer.from(header.replaceAll('model.layers.1.', 'model.layers.3.'), 'utf8');
  writeFileSync(p, Buffer.concat([buf.subarray(0, 8), gap, buf.subarray(8 + n)]));
  fails(d, /model\.safetensors: has layers up to 3 but no layer 1/);
  const i32 = Buffer.from(header.replace('"dtype":"F32"', '"dtype":"I32"'), 'utf8');
  writeFileSync(p, Buffer.concat([buf.subarray(0, 8), i32, buf.subarray(8 + n)]));
  fails(d, /has dtype I32; only F32, BF16 and F16 weights can be loaded/);
});

test('a PEFT adapter is checked against adapter_config.json (r, alpha, target_modules) before LoRA layers exist', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ r: 1e9 }, /adapter_config\.json: r is 1000000000 but .*adapter_model\.safetensors has base_model\.model\..*lora_A\.weight of shape \[4, (32|64)\]; expected 4$/],
    [{ r: 0 }, /"r" must be a whole number ≥ 1, got 0/],
    [{ r: '4' }, /"r" must be a whole number ≥ 1, got "4"/],
    [{ lora_alpha: null }, /"lora_alpha" must be a number, got null/],
    [{ lora_dropout: 2 }, /"lora_dropout" must be a number in \[0, 1\)/],
    [{ target_modules: ['q_proj'] }, /target_modules \["q_proj"\] does not cover "model\.layers\.0\.mlp\.down_proj"/],
  ];
  for (const [patch, pattern] of cases) {
    const d = tempDir('dpo-adapter-');
    cpSync('test/fixtures/peft-roundtrip/llama', d, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(d, 'adapter_config.json'), 'utf8'));
    writeFileSync(join(d, 'adapter_config.json'), JSON.stringify({ ...cfg, ...patch }));
    const { model } = loadCausalLM(join(FIXTURES, 'llama'));
    assert.throws(() => loadAdapter(model, d), (e: unknown) => e instanceof DpoError && pattern.test(e.message) && !e.message.includes('\n'), JSON.stringify(patch));
  }
});
