/** Model resolution (local dirs, the offline HF cache) and config errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModelDir } from '../../src/io/model-source.js';
import { archFromConfig } from '../../src/models/registry.js';
import { loadCausalLM } from '../../src/models/load.js';

test('a model id resolves from $HF_HOME/hub via refs/main, and says where it looked otherwise', () => {
  const home = mkdtempSync(join(tmpdir(), 'hf-'));
  const repo = join(home, 'hub', 'models--TinyOrg--tiny-llama');
  mkdirSync(join(repo, 'refs'), { recursive: true });
  mkdirSync(join(repo, 'snapshots', 'abc123'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'main'), 'abc123\n');
  cpSync('test/fixtures/models/llama', join(repo, 'snapshots', 'abc123'), { recursive: true });
  const env = { HF_HOME: home };
  assert.equal(resolveModelDir('TinyOrg/tiny-llama', env), join(repo, 'snapshots', 'abc123'));
  assert.equal(resolveModelDir('TinyOrg/tiny-llama@abc123', env), join(repo, 'snapshots', 'abc123'));
  assert.throws(() => resolveModelDir('TinyOrg/other', env), /model "TinyOrg\/other" not found; looked in .*models--TinyOrg--other.*Downloads are not possible here/);
  const old = process.env.HF_HOME;
  process.env.HF_HOME = home;
  try {
    assert.equal(loadCausalLM('TinyOrg/tiny-llama').model.arch.modelType, 'llama');
  } finally {
    if (old === undefined) delete process.env.HF_HOME;
    else process.env.HF_HOME = old;
  }
});

test('config errors name the file and the key', () => {
  const base = JSON.parse(readFileSync('test/fixtures/models/llama/config.json', 'utf8'));
  assert.throws(() => archFromConfig({ ...base, model_type: 'falcon' }, 'x/config.json'), /x\/config.json: model_type "falcon" is not supported; supported: llama, mistral, qwen2, qwen3, gpt2/);
  const { hidden_size: _h, ...noHidden } = base;
  assert.throws(() => archFromConfig(noHidden, 'x/config.json'), /config.json has no "hidden_size"/);
  assert.throws(() => archFromConfig({ ...base, num_key_value_heads: 3 }, 'c'), /not a multiple of num_key_value_heads 3/);
  assert.throws(() => archFromConfig({ ...base, rope_scaling: { rope_type: 'ntk', factor: 2 }, rope_parameters: undefined }, 'c'), /c: rope_scaling rope type "ntk" is not supported/);
  const a = archFromConfig(base);
  assert.equal(a.ropeScaling?.rope_type, 'llama3');
  assert.equal(a.ropeScaling?.factor, 8);
});

test('missing, unexpected and mis-shaped weights are errors naming the weight', () => {
  const d = mkdtempSync(join(tmpdir(), 'dpo-w-'));
  cpSync('test/fixtures/models/llama', d, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
  writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: 32 }));
  assert.throws(() => loadCausalLM(d), /config\.json: intermediate_size is 32 but model\.safetensors has "model\.layers\.0\.mlp\.gate_proj\.weight" of shape \[64, 32\]; expected 64/);
  writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 1 }));
  assert.throws(() => loadCausalLM(d), /num_hidden_layers is 1 but model\.safetensors has layers 0\.\.1; expected 2/);
  writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 3 }));
  assert.throws(() => loadCausalLM(d), /num_hidden_layers is 3 but model\.safetensors has layers 0\.\.1; expected 2/);
});
