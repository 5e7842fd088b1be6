/**
 * The GGUF writer and its parts, without llama.cpp: files parse with @huggingface/gguf (an
 * independent reader) with every value, shape, type and 32-byte-aligned offset as written; Q8_0,
 * BF16 and F16 encode bit for bit as ggml does; the q/k permutation, the pre-tokenizer names of
 * real tokenizers, and the errors for what llama.cpp cannot take.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { arr, bool, f32, str, u32, writeGguf, type GgufTensor } from '../../src/io/gguf.js';
import { dequantizeQ8_0, encodeTensor, quantizeQ8_0 } from '../../src/io/gguf-quant.js';
import { ggufTableFor, permuteRows } from '../../src/io/gguf-arch.js';
import { exportModelGguf, storedType } from '../../src/io/gguf-export.js';
import { preTokenizerName, tokenizerMetadata } from '../../src/io/gguf-tokenizer.js';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { loadPolicy } from '../../src/cli/load-policy.js';
import { DpoError } from '../../src/errors.js';
import { archFromConfig } from '../../src/models/registry.js';
import { patchedFixture, tempDir } from './helpers.js';

const dir = tempDir('dpo-gguf-unit-');
const parse = (file: string) => gguf(file, { allowLocalFile: true, typedMetadata: true });

test('writer: @huggingface/gguf reads back every value, shape, type and aligned offset', async () => {
  const w = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i));
  const tensors: GgufTensor[] = [
    { name: 'a.weight', shape: [3, 64], type: 'F32', data: () => encodeTensor(w, 'F32') },
    { name: 'odd', shape: [5], type: 'F32', data: () => encodeTensor(new Float32Array([1, 2, 3, 4, 5]), 'F32') },
    { name: 'b.weight', shape: [3, 64], type: 'F16', data: () => encodeTensor(w, 'F16') },
    { name: 'c.weight', shape: [3, 64], type: 'Q8_0', data: () => encodeTensor(w, 'Q8_0') },
    { name: 'd.weight', shape: [3, 64], type: 'BF16', data: () => encodeTensor(w, 'BF16') },
  ];
  const file = join(dir, 'w.gguf');
  writeGguf(file, [
    ['general.architecture', str('llama')],
    ['x.u32', u32(7)], ['x.f32', f32(0.5)], ['x.bool', bool(true)], ['x.str', str('héllo ✓')],
    ['x.strs', arr('string', ['a b', '', 'Ġc'])], ['x.i32s', arr('i32', [-1, 2, 3])],
  ], tensors);
  const { typedMetadata: m, tensorInfos, tensorDataOffset } = await parse(file);
  assert.equal(m.version.value, 3);
  assert.equal(m['general.architecture']?.value, 'llama');
  assert.equal(m['x.u32'].value, 7);
  assert.equal(m['x.u32'].type, 4);
  assert.equal(m['x.f32'].value, 0.5);
  assert.equal(m['x.bool'].value, true);
  assert.equal(m['x.str'].value, 'héllo ✓');
  assert.deepEqual(m['x.strs'].value, ['a b', '', 'Ġc']);
  assert.deepEqual(m['x.i32s'].value, [-1, 2, 3]);
  assert.deepEqual(tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype]), [
    ['a.weight', [64, 3], 0], ['odd', [5], 0], ['b.weight', [64, 3], 1], ['c.weight', [64, 3], 8], ['d.weight', [64, 3], 30],
  ]);
  assert.equal(Number(tensorDataOffset) % 32, 0);
  const bytes = readFileSync(file);
  for (const t of tensorInfos) assert.equal(Number(t.offset) % 32, 0, `${t.name} offset ${t.offset}`);
  // The F32 tensors' bytes are where the offsets say.
  const at = (i: number, n: number) => new Float32Array(bytes.buffer.slice(bytes.byteOffset + Number(tensorDataOffset + tensorInfos[i].offset), bytes.byteOffset + Number(tensorDataOffset + tensorInfos[i].offset) + 4 * n));
  assert.deepEqual(at(0, w.length), w);
  assert.deepEqual([...at(1, 5)], [1, 2, 3, 4, 5]);
  assert.throws(() => writeGguf(join(dir, 'x.gguf'), [['k', u32(1)], ['k', u32(2)]], []), /given twice/);
  assert.throws(() => writeGguf(join(dir, 'x.gguf'), [], [{ name: 'q', shape: [2, 10], type: 'Q8_0', data: () => new Uint8Array(0) }]), /multiple of 32/);
});

test('Q8_0 is ggml\'s quantize_row_q8_0: d = amax/127 as f16, q = roundf(x/d), half away from zero', () => {
  const x = new Float32Array(64);
  x[0] = 127; // amax of block 0 → d = 1 exactly
  x[1] = 2.5; x[2] = -2.5; x[3] = 0.49; x[4] = -126.6;
  x.fill(0, 32); // block 1 all zero → d = 0, q = 0
  const q = quantizeQ8_0(x);
  assert.equal(q.length, 2 * 34);
  const v = new DataView(q.buffer);
  assert.equal(v.getUint16(0, true), 0x3c00); // f16 1.0
  assert.deepEqual([1, 2, 3, 4, 5].map((j) => v.getInt8(2 + j)), [3, -3, 0, -127, 0]);
  assert.equal(v.getInt8(2), 127);
  assert.equal(v.getUint16(34, true), 0);
  // Round trip within half a step (plus the f16 rounding of d).
  const r = Float32Array.from({ length: 256 }, (_, i) => Math.cos(i * 1.7) * (1 + (i % 7)));
  const back = dequantizeQ8_0(quantizeQ8_0(r), r.length);
  for (let b = 0; b < 8; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(r[b * 32 + j]));
    for (let j = 0; j < 32; j++) assert.ok(Math.abs(back[b * 32 + j] - r[b * 32 + j]) <= (amax / 127) * 0.51 + amax * 1e-3);
  }
});

test('BF16 and F16 round to nearest even; BF16 keeps NaN quiet (ggml_compute_fp32_to_bf16)', () => {
  const bits = (x: number[], t: 'BF16' | 'F16') => [...new Uint16Array(encodeTensor(new Float32Array(x), t).slice().buffer)];
  // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to even (1.0); 1 + 3·2^-8 rounds up.
  assert.deepEqual(bits([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2, Infinity], 'BF16'), [0x3f80, 0x3f80, 0x3f82, 0xc000, 0x7f80]);
  const nan = new Float32Array(new Uint32Array([0x7f800001]).buffer);
  assert.equal(new Uint16Array(encodeTensor(nan, 'BF16').slice().buffer)[0], 0x7fc0);
  assert.deepEqual(bits([1, 65504, 1e-8, -0.5], 'F16'), [0x3c00, 0x7bff, 0x0000, 0xb800]);
});

test('permuteRows is llama.cpp\'s LlamaModel.permute: per head, rows [0..hd/2) and [hd/2..hd) interleave', () => {
  // 2 heads of 4 rows, 1 column: head 0 rows 0 1 2 3 → 0 2 1 3; head 1 rows 4 5 6 7 → 4 6 5 7.
  assert.deepEqual([...permuteRows(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), 8, 1, 2)], [0, 2, 1, 3, 4, 6, 5, 7]);
  const w = Float32Array.from({ length: 8 * 3 }, (_, i) => i);
  const p = permuteRows(w, 8, 3, 1); // one head of 8: 0 4 1 5 2 6 3 7
  assert.deepEqual([...p.subarray(3, 6)], [12, 13, 14]);
  assert.throws(() => permuteRows(w, 8, 3, 3), DpoError);
});

test('tokenizer.ggml.pre: the converter\'s hash names real tokenizers; an unknown pre-tokenizer is an error', () => {
  const tok = (d: string) => HfTokenizer.fromDir(`node_modules/@lenml/tokenizer-${d}/models`);
  // These Llama 3 files add no BOS, so the check text's ids hash to Smaug's entry, as in
  // convert_hf_to_gguf.py on the same files (llama.cpp gives both the Llama 3 regex).
  assert.equal(preTokenizerName(tok('llama3'), 'llama3'), 'smaug-bpe');
  assert.equal(preTokenizerName(tok('qwen3'), 'qwen3'), 'qwen2');
  assert.equal(preTokenizerName(tok('gpt2'), 'gpt2'), 'gpt-2');
  // The fixtures' tiny byte-level BPE has no hash in llama.cpp's table: a plain ByteLevel is GPT-2's regex.
  const tiny = HfTokenizer.fromDir('test/fixtures/models/llama');
  assert.equal(preTokenizerName(tiny, 'tiny'), 'gpt-2');
  const odd = new HfTokenizer({ ...tiny.tokenizerJson, pre_tokenizer: { type: 'Split', pattern: { Regex: '\\d' }, behavior: 'Isolated', invert: false } }, tiny.config);
  assert.throws(() => preTokenizerName(odd, 'odd'), (e: Error) => e instanceof DpoError && /no pre-tokenizer matching/.test(e.message));
  const sp = new HfTokenizer({ ...tiny.tokenizerJson, model: { ...(tiny.tokenizerJson.model as object), byte_fallback: true } }, tiny.config);
  assert.throws(() => tokenizerMetadata(sp, {}, 320, 'sp'), (e: Error) => e instanceof DpoError && /byte fallback/.test(e.message));
  // A post-processor that prepends a special token: add_bos_token true, and that token is BOS.
  const withBos = new HfTokenizer({ ...tiny.tokenizerJson, post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|im_start|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: {} } }, tiny.config);
  const md = new Map(tokenizerMetadata(withBos, {}, 320, 'bos'));
  assert.equal(md.get('tokenizer.ggml.add_bos_token')?.value, true);
  assert.equal(md.get('tokenizer.ggml.bos_token_id')?.value, 1);
  assert.equal(md.get('tokenizer.ggml.eos_token_id')?.value, 2);
  const plain = new Map(tokenizerMetadata(tiny, {}, 400, 'tiny'));
  assert.equal(plain.has('tokenizer.ggml.add_bos_token'), false);
  // Rows past the tokenizer are padding tokens of type UNUSED (5), as the converter writes them.
  assert.equal((plain.get('tokenizer.ggml.tokens')?.value as string[])[399], '[PAD399]');
  assert.equal((plain.get('tokenizer.ggml.token_type')?.value as number[])[399], 5);
  assert.deepEqual((plain.get('tokenizer.ggml.token_type')?.value as number[]).slice(0, 4), [3, 3, 3, 1]);
});

test('a model_type without a llama.cpp table is a one-line error naming the alternatives', () => {
  assert.throws(() => ggufTableFor('falcon'), (e: Error) => e instanceof DpoError && /falcon/.test(e.message) && /gemma3, olmo2, granite, smollm3, phi3/.test(e.message) && /dpo merge/.test(e.message) && /convert_hf_to_gguf/.test(e.message) && !e.message.includes('\n'));
});

const fixtureConfig = (name: string) => JSON.parse(readFileSync(`test/fixtures/models/${name}/config.json`, 'utf8'));
const hparams = (raw: Record<string, unknown>) => ggufTableFor(raw.model_type as string).hparams(archFromConfig(raw));
const caveats = (raw: Record<string, unknown>) => ggufTableFor(raw.model_type as string).caveats(archFromConfig(raw));
const oneLine = (re: RegExp) => (e: Error) => e instanceof DpoError && re.test(e.message) && !e.message.includes('\n');

test('RoPE scaling llama.cpp would not reproduce is a one-line error; llama3 / longrope only where the graph loads their tensors', () => {
  const base = fixtureConfig('llama-linear');
  const llama3 = { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, rope_theta: 10000.0 };
  const longrope = fixtureConfig('llama-longrope').rope_parameters;
  assert.throws(() => hparams({ ...base, rope_parameters: { ...llama3, partial_rotary_factor: 0.5 } }), /^DpoError: GGUF export: rope scaling "llama3, partial rotary" on model_type llama has no llama\.cpp equivalent here; llama\.cpp's llama graph rotates whole heads$/);
  assert.throws(() => hparams({ ...base, model_type: 'qwen2', num_key_value_heads: 2, rope_parameters: longrope }), oneLine(/rope scaling "longrope" on model_type qwen2 .*longrope for llama \/ mistral \/ granite \/ phi3/));
  assert.throws(() => hparams({ ...fixtureConfig('smollm3'), no_rope_layers: [1, 1], rope_parameters: llama3 }), oneLine(/rope scaling "llama3" on model_type smollm3/));
  assert.throws(() => hparams({ ...base, rope_parameters: { rope_type: 'yarn', factor: 4.0, rope_theta: 10000.0, truncate: false } }), oneLine(/"yarn with truncate: false" on model_type llama/));
  // One rope.scaling.attn_factor key cannot scale only Gemma 3's full-attention table.
  const g3 = { ...fixtureConfig('gemma3-rope'), query_pre_attn_scalar: 16 };
  assert.throws(() => hparams({ ...g3, rope_parameters: { ...g3.rope_parameters, sliding_attention: { rope_theta: 100.0, rope_type: 'default' }, full_attention: { ...g3.rope_parameters.full_attention, attention_factor: 2.0 } } }), oneLine(/yarn with attention factor .* on a per-layer-type RoPE/));
  assert.throws(() => hparams(g3), oneLine(/rope scaling "linear" on the sliding layers on model_type gemma3_text/));
  for (const rope of [llama3, longrope, base.rope_parameters]) assert.doesNotThrow(() => hparams({ ...base, rope_parameters: rope }));
  assert.doesNotThrow(() => hparams({ ...fixtureConfig('granite'), rope_parameters: llama3 }));
});

test('RoPE keys as the converter writes them: yarn (its attention factor relative to llama.cpp\'s own), longrope (type, original context, attn_factor)', () => {
  const yarn = { ...fixtureConfig('llama-yarn') };
  const m = new Map(hparams(yarn));
  assert.deepEqual(['type', 'factor', 'original_context_length'].map((k) => m.get(`llama.rope.scaling.${k}`)?.value), ['yarn', 4, 16]);
  assert.equal(m.has('llama.rope.scaling.attn_factor'), false, 'transformers\' default yarn factor 0.1·ln(4) + 1 is llama.cpp\'s own');
  const explicit = new Map(hparams({ ...yarn, rope_parameters: { ...yarn.rope_parameters, attention_factor: 1.5, beta_fast: 16 } }));
  assert.ok(Math.abs((explicit.get('llama.rope.scaling.attn_factor')?.value as number) - 1.5 / (0.1 * Math.log(4) + 1)) < 1e-12);
  assert.equal(explicit.get('llama.rope.scaling.yarn_beta_fast')?.value, 16);
  const phi = new Map(hparams(fixtureConfig('phi3')));
  assert.equal(phi.get('phi3.rope.scaling.type')?.value, 'longrope');
  assert.equal(phi.get('phi3.rope.scaling.original_context_length')?.value, 8);
  assert.equal(phi.get('phi3.rope.dimension_count')?.value, 4); // head_dim 8 × partial_rotary_factor 0.5
  assert.ok(Math.abs((phi.get('phi3.rope.scaling.attn_factor')?.value as number) - Math.sqrt(1 + Math.log(32 / 8) / Math.log(8))) < 1e-12);
});

test('what llama.cpp\'s new graphs compute differently is a one-line error', () => {
  const gemma2 = fixtureConfig('gemma2');
  assert.throws(() => hparams(gemma2), oneLine(/^GGUF export: query_pre_attn_scalar 12 \(scores × 0\.288675\) on model_type gemma2 is not what llama\.cpp's gemma2 graph computes; llama\.cpp scales scores by 16\^−½ for 2 layers/));
  assert.throws(() => hparams({ ...gemma2, query_pre_attn_scalar: 16, final_logit_softcapping: null }), oneLine(/softcapping null on model_type gemma2 .*always soft-caps/));
  assert.throws(() => hparams({ ...fixtureConfig('gemma3'), query_pre_attn_scalar: 16, final_logit_softcapping: 30.0 }), oneLine(/logit soft-capping on model_type gemma3_text/));
  assert.throws(() => hparams(fixtureConfig('gemma3-mm')), oneLine(/query_pre_attn_scalar 256 .* on model_type gemma3 is not/));
  assert.throws(() => hparams(fixtureConfig('smollm3')), oneLine(/^GGUF export: layer 1 has no RoPE on model_type smollm3, but llama\.cpp's smollm3 graph skips RoPE exactly on every 4th layer/));
  assert.throws(() => hparams({ ...fixtureConfig('granite'), attention_multiplier: 0 }), oneLine(/attention_multiplier 0 on model_type granite/));
  assert.throws(() => hparams({ ...fixtureConfig('granite'), head_dim: 16 }), oneLine(/head_dim 16 × num_attention_heads 4 ≠ hidden_size 32 on model_type granite/));
});

test('what llama.cpp lacks at some lengths is a printed caveat: sliding windows (phi3, smollm3), dynamic NTK, longrope\'s factor switch', () => {
  assert.deepEqual(caveats(fixtureConfig('phi3')), [
    "llama.cpp's phi3 architecture has no sliding-window attention: its outputs equal this model's only for sequences of up to sliding_window = 6 tokens",
    "llama.cpp picks longrope's long_factor by its context size (above original_max_position_embeddings = 8) where transformers picks it by the sequence length: with a larger context, sequences of up to 8 tokens differ",
  ]);
  assert.match(caveats({ ...fixtureConfig('smollm3'), no_rope_layers: [1, 1] }).join(), /smollm3 architecture has no sliding-window attention.*sliding_window = 4 tokens/);
  assert.deepEqual(caveats(fixtureConfig('llama-dynamic')), ['llama.cpp has no dynamic NTK RoPE scaling: its outputs equal this model\'s only for sequences of up to max_position_embeddings = 8 tokens']);
  assert.deepEqual(caveats({ ...fixtureConfig('gemma3'), query_pre_attn_scalar: 16 }), [], 'gemma3\'s sliding layers are llama.cpp\'s too');
});

test('Gemma norms are stored + 1; Gemma 3 writes its sliding pattern and local θ; Phi-3 its longrope factors; a phi3-named tiny tokenizer is refused', async () => {
  const p = loadPolicy(patchedFixture('test/fixtures/models/gemma3', dir, 'gemma3-q16', { query_pre_attn_scalar: 16 }));
  const file = join(dir, 'gemma3.gguf');
  exportModelGguf(p.model, p.tokenizer, file, { outtype: 'f32', name: 'tiny' });
  const { typedMetadata: m, tensorInfos, tensorDataOffset } = await parse(file);
  assert.equal(m['general.architecture']?.value, 'gemma3');
  assert.deepEqual(m['gemma3.attention.sliding_window_pattern' as 'general.name']?.value, [true, false, true]);
  assert.equal(m['gemma3.attention.sliding_window' as 'general.name']?.value, 4);
  assert.equal(m['gemma3.rope.freq_base_swa' as 'general.name']?.value, 100);
  assert.equal(m['gemma3.attention.key_length' as 'general.name']?.value, 16);
  assert.deepEqual(tensorInfos.filter((t) => t.name.startsWith('blk.0.')).map((t) => t.name).sort(), ['attn_k', 'attn_k_norm', 'attn_norm', 'attn_output', 'attn_q', 'attn_q_norm', 'attn_v', 'ffn_down', 'ffn_gate', 'ffn_norm', 'ffn_up', 'post_attention_norm', 'post_ffw_norm'].map((n) => `blk.0.${n}.weight`));
  const info = tensorInfos.find((t) => t.name === 'blk.0.post_ffw_norm.weight')!;
  const bytes = readFileSync(file);
  const at = bytes.byteOffset + Number(tensorDataOffset + info.offset);
  const stored = new Float32Array(bytes.buffer.slice(at, at + 4 * 32));
  const w = [...p.model.namedParameters()].find(([n]) => n === 'model.layers.0.post_feedforward_layernorm.weight')![1].data;
  assert.deepEqual([...stored], [...w].map((x) => Math.fround(x + 1)));

  const phi = loadPolicy('test/fixtures/models/phi3');
  assert.throws(() => exportModelGguf(phi.model, phi.tokenizer, join(dir, 'phi.gguf'), { outtype: 'f32', name: 'my-Phi-3-dpo' }), oneLine(/llama\.cpp fails to load a model named "my-Phi-3-dpo" .* lacks <\/s> <unk> <s>/));
  exportModelGguf(phi.model, phi.tokenizer, join(dir, 'phi.gguf'), { outtype: 'f32', name: 'tiny' });
  const { tensorInfos: pt } = await parse(join(dir, 'phi.gguf'));
  assert.deepEqual(pt.filter((t) => t.name.startsWith('rope_')).map((t) => [t.name, t.shape.map(Number)]), [['rope_factors_long.weight', [2]], ['rope_factors_short.weight', [2]]]);
  assert.deepEqual(pt.filter((t) => t.name.startsWith('blk.0.')).map((t) => [t.name, t.shape.map(Number)]).sort(), [['blk.0.attn_norm.weight', [32]], ['blk.0.attn_output.weight', [32, 32]], ['blk.0.attn_qkv.weight', [32, 64]], ['blk.0.ffn_down.weight', [64, 32]], ['blk.0.ffn_norm.weight', [32]], ['blk.0.ffn_up.weight', [32, 128]]]);
});

test('stored types: norms, biases, 1-D and position embeddings stay F32; Q8_0 falls back to F16 for rows not a multiple of 32', () => {
  assert.equal(storedType('blk.0.attn_norm.weight', [32], 'q8_0'), 'F32');
  assert.equal(storedType('blk.0.attn_q_norm.weight', [16], 'f16'), 'F32');
  assert.equal(storedType('blk.0.attn_q.bias', [32], 'f16'), 'F32');
  assert.equal(storedType('position_embd.weight', [64, 32], 'f16'), 'F32');
  assert.equal(storedType('blk.0.attn_q.weight', [32, 32], 'q8_0'), 'Q8_0');
  assert.equal(storedType('blk.0.attn_q.weight', [32, 48], 'q8_0'), 'F16');
  assert.equal(storedType('blk.0.attn_q.weight.lora_b', [32, 4], 'q8_0'), 'F16');
  assert.equal(storedType('token_embd.weight', [320, 32], 'bf16'), 'BF16');
});

test('every fixture exports and parses with @huggingface/gguf: architecture, hparams, tokenizer, tensor count', async () => {
  for (const [name, arch, n] of [['llama', 'llama', 22], ['llama-tied', 'llama', 20], ['mistral', 'llama', 21], ['qwen2', 'qwen2', 26], ['qwen3', 'qwen3', 25], ['gpt2', 'gpt2', 28]] as const) {
    const p = loadPolicy(`test/fixtures/models/${name}`);
    for (const outtype of ['f32', 'q8_0'] as const) {
      const file = join(dir, `${name}-${outtype}.gguf`);
      exportModelGguf(p.model, p.tokenizer, file, { outtype, name });
      const { typedMetadata: m, tensorInfos } = await parse(file);
      assert.equal(m['general.architecture']?.value, arch);
      assert.equal(m['general.file_type'].value, outtype === 'f32' ? 0 : 7);
      assert.equal(m[`${arch}.block_count` as 'general.name']?.value, 2);
      assert.equal(m['tokenizer.ggml.model']?.value, 'gpt2');
      assert.equal((m['tokenizer.ggml.tokens'].value as string[]).length, 320);
      assert.equal(tensorInfos.length, n, name);
      assert.equal(tensorInfos.some((t) => t.name === 'output.weight'), !p.model.arch.tieEmbeddings, `${name}: output.weight only when untied`);
      assert.equal(tensorInfos.some((t) => t.name === 'rope_freqs.weight'), name === 'llama', `${name}: rope_freqs only for llama3 scaling`);
      if (outtype === 'q8_0') for (const t of tensorInfos) assert.equal(t.dtype, t.shape.length === 1 || t.name.endsWith('_norm.weight') || t.name.startsWith('position_embd') ? 0 : 8, t.name);
    }
  }
});
