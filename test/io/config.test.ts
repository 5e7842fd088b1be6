import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../../src/errors.js';
import { configJsonText, readModelConfig, updatedConfig, writeModelConfig } from '../../src/io/config.js';
import { archFromConfig } from '../../src/models/registry.js';
import { parseJson, pythonFloat, stringifyPython } from '../../src/io/json.js';
import { tempDir } from './helpers.js';

const dir = tempDir();
const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'models');

function cfgFile(name: string, obj: unknown): string {
  const p = join(dir, `${name}.json`);
  writeFileSync(p, typeof obj === 'string' ? obj : JSON.stringify(obj, null, 2));
  return p;
}

// Llama 3.2 1B's config as transformers 4.x wrote it: top-level rope_theta, rope_scaling, torch_dtype.
const LLAMA32 = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009],
  head_dim: 64, hidden_act: 'silu', hidden_size: 2048, initializer_range: 0.02, intermediate_size: 8192, max_position_embeddings: 131072,
  mlp_bias: false, model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 16, num_key_value_heads: 8, pretraining_tp: 1,
  rms_norm_eps: 1e-05, rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.45.0.dev0', use_cache: true, vocab_size: 128256,
};


test('Llama 3.2 as transformers 4.x wrote it (top-level rope_theta, rope_scaling, torch_dtype)', () => {
  const c = readModelConfig(cfgFile('llama32', LLAMA32));
  const a = archFromConfig(c.raw, c.path);
  assert.deepEqual([a.modelType, a.hiddenSize, a.numKvHeads, a.headDim, a.ropeTheta, a.tieEmbeddings, a.qkvBias, a.oBias, a.mlpBias, a.slidingWindow], ['llama', 2048, 8, 64, 500000, true, false, false, false, 0]);
  assert.deepEqual(a.ropeScaling, { rope_type: 'llama3', rope_theta: 500000, factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 });
});

test('config errors are one line naming the file and key', () => {
  const base = { model_type: 'llama', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 1, intermediate_size: 128, vocab_size: 10 };
  const { hidden_size: _, ...noHidden } = base;
  const cases: [unknown, RegExp][] = [
    [noHidden, /: config\.json has no "hidden_size"; it is required for model_type "llama"$/],
    [{ ...base, hidden_size: '64' }, /"hidden_size" must be a number, got "64"/],
    [{ ...base, num_hidden_layers: 0 }, /"num_hidden_layers" must be a whole number from 1 to \d+, got 0/],
    [{ ...base, vocab_size: 10.5 }, /"vocab_size" must be a whole number from 1 to \d+, got 10.5/],
    [{ ...base, rms_norm_eps: 'small' }, /"rms_norm_eps" must be a number, got "small"/],
    [{ ...base, tie_word_embeddings: 'yes' }, /"tie_word_embeddings" must be true or false, got "yes"/],
    [{ ...base, num_key_value_heads: 3 }, /num_attention_heads 4 is not a multiple of num_key_value_heads 3/],
    [{ ...base, hidden_size: 66 }, /"num_attention_heads" 4 does not divide "hidden_size" 66; expected a divisor of 66 \(or set head_dim\)/],
    [{ ...base, model_type: 'bert' }, /model_type "bert" is not supported; supported: llama, mistral, qwen2, qwen3, /],
    [{ ...base, model_type: undefined }, /model_type "" is not supported/],
    [{ ...base, hidden_act: 'gelu' }, /hidden_act "gelu" is not supported for llama \(supported: silu\)/],
    [{ ...base, partial_rotary_factor: 1.5 }, /rope_parameters\.partial_rotary_factor must be in \(0, 1\], got 1\.5/],
    [{ ...base, rope_parameters: { rope_type: 'su', factor: 4 } }, /rope_parameters rope type "su" is not supported; supported: default, linear, dynamic, yarn, longrope, llama3/],
    [{ ...base, rope_parameters: { rope_type: 'yarn' } }, /rope_parameters of rope type "yarn" needs "factor"; add it/],
    [{ ...base, rope_scaling: { rope_type: 'longrope', short_factor: [1], long_factor: 'x' } }, /rope_scaling\.long_factor must be a list of numbers, got "x"/],
    [{ ...base, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 1 } }, /llama3 rope scaling needs high_freq_factor > low_freq_factor, got 1 and 4/],
    [{ ...base, model_type: 'qwen2', num_key_value_heads: 4, layer_types: ['full_attention', 'x'] }, /"layer_types" must be a list of "full_attention" \/ "sliding_attention"/],
    [{ ...base, model_type: 'qwen2', num_key_value_heads: 4, layer_types: ['full_attention', 'full_attention'] }, /"layer_types" has 2 entries for 1 layers/],
    [[1, 2], /must be a JSON object/],
  ];
  for (const [raw, pattern] of cases) {
    const p = cfgFile('bad', raw);
    assert.throws(() => {
      const c = readModelConfig(p);
      archFromConfig(c.raw, c.path);
    }, (e: unknown) => e instanceof DpoError && e.message.startsWith(`${p}: `) && pattern.test(e.message) && !e.message.includes('\n'), String(pattern));
  }
  assert.throws(() => readModelConfig(cfgFile('notjson', '{"model_type": "llama",}')), /notjson\.json: not valid JSON \(expected a string key at character 23\)/);
  assert.throws(() => readModelConfig(join(dir, 'nowhere')), /nowhere\/config\.json: missing; a model directory needs config\.json/);
  assert.throws(() => readModelConfig(cfgFile('dup', '{"model_type": "llama", "model_type": "gpt2"}')), /duplicate key "model_type"/);
});

test('every fixture config parses and writes back byte for byte as transformers wrote it', { skip: !existsSync(FIXTURES) }, () => {
  for (const name of readdirSync(FIXTURES)) {
    const p = join(FIXTURES, name, 'config.json');
    if (!existsSync(p)) continue;
    const c = readModelConfig(join(FIXTURES, name));
    archFromConfig(c.raw, c.path);
    assert.equal(configJsonText(c.raw, c.floatPaths), readFileSync(p, 'utf8'), `${name}/config.json round trip`);
  }
  const llama = archFromConfig(readModelConfig(join(FIXTURES, 'llama')).raw);
  assert.deepEqual(llama.ropeScaling, { rope_type: 'llama3', rope_theta: llama.ropeTheta, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 });
});

test('updated configs keep floats floats and dtype / torch_dtype in step', () => {
  const out = tempDir();
  const { value, floatPaths } = parseJson(JSON.stringify(LLAMA32).replace('"attention_dropout":0', '"attention_dropout":0.0'));
  const raw = updatedConfig(value as Record<string, unknown>, { dtype: 'float32', use_cache: undefined });
  assert.equal(raw.torch_dtype, 'float32');
  assert.ok(!('use_cache' in raw));
  writeModelConfig(out, raw, floatPaths);
  const text = readFileSync(join(out, 'config.json'), 'utf8');
  assert.match(text, /"rope_theta": 500000\.0,/);
  assert.match(text, /"factor": 32\.0,/);
  assert.match(text, /"attention_dropout": 0\.0,/);
  assert.match(text, /"rms_norm_eps": 1e-05,/);
  assert.match(text, /"max_position_embeddings": 131072,/);
  assert.ok(text.endsWith('}\n'));
});

test('stringifyPython writes what json.dumps(indent=2, sort_keys=True) writes', () => {
  // Python: json.dumps({'b': [1e-05, 1e16, 1e15, 0.0001, 0.00012, 1.5e-7, 123456789012345680000.0, float(2**60), -0.0, 3.0, 'é☃𝄞'],
  //                     'a': {}, 'c': [], 'd': {'x': None, 'y': True}}, indent=2, sort_keys=True)
  const py = '{\n  "a": {},\n  "b": [\n    1e-05,\n    1e+16,\n    1000000000000000.0,\n    0.0001,\n    0.00012,\n    1.5e-07,\n    1.2345678901234568e+20,\n    1.152921504606847e+18,\n    -0.0,\n    3.0,\n    "\\u00e9\\u2603\\ud834\\udd1e"\n  ],\n  "c": [],\n  "d": {\n    "x": null,\n    "y": true\n  }\n}';
  const { value, floatPaths } = parseJson(py);
  assert.equal(stringifyPython(value, floatPaths), py);
  assert.deepEqual([pythonFloat(0.1), pythonFloat(1e-7), pythonFloat(123.0), pythonFloat(1e22), pythonFloat(-2.5e-5)], ['0.1', '1e-07', '123.0', '1e+22', '-2.5e-05']);
});
