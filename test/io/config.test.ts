import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../../src/errors.js';
import { configJsonText, parseModelConfig, readModelConfig, updatedConfig, writeModelConfig } from '../../src/io/config.js';
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

test('llama with llama3 rope scaling (transformers 4.x layout: rope_scaling + top-level rope_theta)', () => {
  const c = readModelConfig(cfgFile('llama32', LLAMA32));
  assert.equal(c.modelType, 'llama');
  assert.equal(c.hiddenSize, 2048);
  assert.equal(c.numKeyValueHeads, 8);
  assert.equal(c.headDim, 64);
  assert.equal(c.ropeTheta, 500000);
  assert.deepEqual(c.ropeScaling, { ropeType: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.dtype, 'bfloat16');
  assert.deepEqual(c.eosTokenId, [128001, 128008, 128009]);
  assert.equal(c.bosTokenId, 128000);
  assert.equal(c.padTokenId, null);
  assert.deepEqual([c.qkvBias, c.oBias, c.mlpBias], [false, false, false]);
  assert.equal(c.slidingWindow, null);
  assert.equal(c.raw, c.raw);
  assert.equal((c.raw as typeof LLAMA32).transformers_version, '4.45.0.dev0', 'raw JSON kept');
});

test('llama rope variants: 5.x rope_parameters, legacy "type" key, defaults, unsupported types', () => {
  const base = { model_type: 'llama', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 1, intermediate_size: 128, vocab_size: 10 };
  const v5 = parseModelConfig({ ...base, rope_parameters: { rope_type: 'llama3', rope_theta: 1000.0, factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0 } });
  assert.equal(v5.ropeTheta, 1000);
  assert.equal(v5.ropeScaling!.originalMaxPositionEmbeddings, 2048, 'falls back to max_position_embeddings (llama default 2048)');
  const legacy = parseModelConfig({ ...base, rope_theta: 250.0, rope_scaling: { type: 'llama3', factor: 2, low_freq_factor: 1, high_freq_factor: 2, original_max_position_embeddings: 16 } });
  assert.equal(legacy.ropeTheta, 250);
  assert.equal(legacy.ropeScaling!.factor, 2);
  const plain = parseModelConfig(base);
  assert.deepEqual([plain.ropeTheta, plain.ropeScaling, plain.headDim, plain.numKeyValueHeads, plain.normEps, plain.maxPositionEmbeddings], [10000, null, 16, 4, 1e-6, 2048]);
  assert.deepEqual([plain.bosTokenId, plain.eosTokenId, plain.tieWordEmbeddings, plain.hiddenAct], [1, 2, false, 'silu']);
  assert.equal(parseModelConfig({ ...base, rope_scaling: null, rope_parameters: { rope_type: 'default', rope_theta: 5.0 } }).ropeTheta, 5);
  assert.throws(() => parseModelConfig({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4.0 } }, 'x/config.json'), /x\/config\.json: rope_scaling\.rope_type "yarn" is not supported \(supported: default, llama3\)/);
  assert.throws(() => parseModelConfig({ ...base, rope_parameters: { rope_type: 'llama3', factor: '8', low_freq_factor: 1, high_freq_factor: 4 } }), /"rope_parameters\.factor" must be a number, got "8"/);
  assert.throws(() => parseModelConfig({ ...base, rope_parameters: { rope_type: 'llama3', low_freq_factor: 1, high_freq_factor: 4 } }), /missing "rope_parameters\.factor"/);
  const withBias = parseModelConfig({ ...base, attention_bias: true, mlp_bias: true });
  assert.deepEqual([withBias.qkvBias, withBias.oBias, withBias.mlpBias], [true, true, true]);
});

test('qwen2: q/k/v biases, sliding window only with use_sliding_window, from max_window_layers on', () => {
  const qwen25 = {
    architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, hidden_act: 'silu', hidden_size: 896,
    initializer_range: 0.02, intermediate_size: 4864, max_position_embeddings: 32768, max_window_layers: 21, model_type: 'qwen2',
    num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-06, rope_theta: 1000000.0, sliding_window: 32768,
    tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.43.1', use_cache: true, use_sliding_window: false, vocab_size: 151936,
  };
  const c = readModelConfig(cfgFile('qwen25', qwen25));
  assert.deepEqual([c.headDim, c.numKeyValueHeads, c.ropeTheta, c.tieWordEmbeddings], [64, 2, 1e6, true]);
  assert.deepEqual([c.qkvBias, c.oBias, c.mlpBias], [true, false, false]);
  assert.equal(c.slidingWindow, null);
  assert.ok(c.layerTypes.every((t) => t === 'full_attention'));
  const sliding = parseModelConfig({ ...qwen25, num_hidden_layers: 3, use_sliding_window: true, sliding_window: 64, max_window_layers: 1 });
  assert.equal(sliding.slidingWindow, 64);
  assert.deepEqual(sliding.layerTypes, ['full_attention', 'sliding_attention', 'sliding_attention']);
  const given = parseModelConfig({ ...qwen25, num_hidden_layers: 2, use_sliding_window: true, sliding_window: 8, layer_types: ['sliding_attention', 'full_attention'] });
  assert.deepEqual(given.layerTypes, ['sliding_attention', 'full_attention']);
  const off = parseModelConfig({ ...qwen25, num_hidden_layers: 2, sliding_window: 8, layer_types: ['sliding_attention', 'full_attention'] });
  assert.deepEqual([off.slidingWindow, off.layerTypes], [null, ['full_attention', 'full_attention']], 'use_sliding_window false wins');
  assert.throws(() => parseModelConfig({ ...qwen25, layer_types: ['full_attention'] }, 'q.json'), /q\.json: "layer_types" has 1 entries for 24 layers/);
  const noKv = { ...qwen25 } as Record<string, unknown>;
  delete noKv.num_key_value_heads;
  assert.throws(() => parseModelConfig(noKv), /num_attention_heads 14 is not a multiple of num_key_value_heads 32/, 'transformers default 32 applies');
});

test('qwen3: head_dim (default 128, not hidden/heads), tied embeddings', () => {
  const qwen3 = {
    architectures: ['Qwen3ForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, head_dim: 128,
    hidden_act: 'silu', hidden_size: 1024, initializer_range: 0.02, intermediate_size: 3072, max_position_embeddings: 40960, max_window_layers: 28,
    model_type: 'qwen3', num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-06, rope_scaling: null,
    rope_theta: 1000000, sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, use_sliding_window: false, vocab_size: 151936,
  };
  const c = readModelConfig(cfgFile('qwen3', qwen3));
  assert.deepEqual([c.headDim, c.numAttentionHeads, c.numKeyValueHeads, c.ropeTheta, c.ropeScaling, c.slidingWindow], [128, 16, 8, 1e6, null, null]);
  assert.deepEqual([c.qkvBias, c.oBias], [false, false]);
  const { head_dim: _, ...noHeadDim } = qwen3;
  assert.equal(parseModelConfig({ ...noHeadDim, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 4 }).headDim, 128);
});

test('mistral: sliding window on every layer (default 4096, null = none), no biases', () => {
  const mistral = {
    architectures: ['MistralForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 4096, initializer_range: 0.02,
    intermediate_size: 14336, max_position_embeddings: 32768, model_type: 'mistral', num_attention_heads: 32, num_hidden_layers: 32,
    num_key_value_heads: 8, rms_norm_eps: 1e-05, rope_theta: 10000.0, sliding_window: 4096, tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 32000,
  };
  const c = readModelConfig(cfgFile('mistral', mistral));
  assert.deepEqual([c.slidingWindow, c.headDim, c.numKeyValueHeads], [4096, 128, 8]);
  assert.ok(c.layerTypes.every((t) => t === 'sliding_attention'));
  assert.equal(parseModelConfig({ ...mistral, sliding_window: null }).slidingWindow, null);
  const { sliding_window: _, ...noKey } = mistral;
  assert.equal(parseModelConfig(noKey).slidingWindow, 4096);
  assert.equal(parseModelConfig({ ...mistral, attention_bias: true }).qkvBias, false, 'mistral has no attention bias whatever the key says');
});

test('gpt2: n_embd / n_layer / n_head / n_positions / n_inner / layer_norm_epsilon / activation_function', () => {
  const gpt2 = {
    activation_function: 'gelu_new', architectures: ['GPT2LMHeadModel'], attn_pdrop: 0.1, bos_token_id: 50256, embd_pdrop: 0.1, eos_token_id: 50256,
    initializer_range: 0.02, layer_norm_epsilon: 1e-05, model_type: 'gpt2', n_ctx: 1024, n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024,
    resid_pdrop: 0.1, summary_activation: null, vocab_size: 50257,
  };
  const c = readModelConfig(cfgFile('gpt2', gpt2));
  assert.deepEqual(
    [c.hiddenSize, c.numHiddenLayers, c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.intermediateSize, c.maxPositionEmbeddings, c.normEps, c.hiddenAct, c.tieWordEmbeddings],
    [768, 12, 12, 12, 64, 3072, 1024, 1e-5, 'gelu_new', true],
  );
  assert.deepEqual([c.ropeTheta, c.ropeScaling, c.residPdrop, c.qkvBias, c.mlpBias], [null, null, 0.1, true, true]);
  assert.equal(parseModelConfig({ ...gpt2, n_inner: 100 }).intermediateSize, 100);
  assert.throws(() => parseModelConfig({ ...gpt2, n_head: 5 }, 'g.json'), /g\.json: n_embd 768 is not a multiple of n_head 5/);
});

test('config errors are one line naming the file and key', () => {
  const base = { model_type: 'llama', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 1, intermediate_size: 128, vocab_size: 10 };
  const { hidden_size: _, ...noHidden } = base;
  const cases: [unknown, RegExp][] = [
    [noHidden, /: missing "hidden_size"$/],
    [{ ...base, hidden_size: '64' }, /"hidden_size" must be a positive integer, got "64"/],
    [{ ...base, num_hidden_layers: 0 }, /"num_hidden_layers" must be a positive integer, got 0/],
    [{ ...base, vocab_size: 10.5 }, /"vocab_size" must be a positive integer, got 10.5/],
    [{ ...base, rms_norm_eps: 'small' }, /"rms_norm_eps" must be a number, got "small"/],
    [{ ...base, tie_word_embeddings: 'yes' }, /"tie_word_embeddings" must be true or false, got "yes"/],
    [{ ...base, eos_token_id: ['2'] }, /"eos_token_id" must be an integer, a list of integers or null/],
    [{ ...base, num_key_value_heads: 3 }, /num_attention_heads 4 is not a multiple of num_key_value_heads 3/],
    [{ ...base, hidden_size: 66 }, /hidden_size 66 is not a multiple of num_attention_heads 4; set head_dim/],
    [{ ...base, model_type: 'bert' }, /model_type "bert" is not supported; supported: llama, mistral, qwen2, qwen3, gpt2/],
    [{ ...base, model_type: undefined }, /missing "model_type"/],
    [[1, 2], /must be a JSON object/],
  ];
  for (const [raw, pattern] of cases) {
    const p = cfgFile('bad', raw);
    assert.throws(() => readModelConfig(p), (e: unknown) => e instanceof DpoError && e.message.startsWith(`${p}: `) && pattern.test(e.message) && !e.message.includes('\n'), String(pattern));
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
    assert.equal(configJsonText(c.raw, c.floatPaths), readFileSync(p, 'utf8'), `${name}/config.json round trip`);
  }
  const llama = readModelConfig(join(FIXTURES, 'llama'));
  assert.deepEqual(llama.ropeScaling, { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 });
  assert.equal(readModelConfig(join(FIXTURES, 'llama-bf16')).dtype, 'bfloat16');
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
