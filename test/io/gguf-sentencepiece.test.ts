/**
 * GGUF export of checkpoints with a SentencePiece tokenizer (tokenizer.model, as Gemma 2 / 3 and
 * Phi-3 ship): tiny byte-fallback BPE SentencePiece models converted by transformers' GemmaTokenizer /
 * LlamaTokenizer (tools/fixtures/make_models.py --spm). The tokenizer.* metadata equals what
 * llama.cpp's convert_hf_to_gguf.py writes for the same directory; llama.cpp's tokenization of the
 * texts equals transformers'; its logits and greedy continuation equal ours. The reader of
 * tokenizer.model refuses malformed files with one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { loadPolicy } from '../../src/cli/load-policy.js';
import { exportModelGguf } from '../../src/io/gguf-export.js';
import { generate } from '../../src/generate/generate.js';
import { parseSentencePieceModel, SPM_TYPE } from '../../src/io/sentencepiece-model.js';
import { DpoError } from '../../src/errors.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { patchedFixture, tempDir } from './helpers.js';
import { llamaCppGreedy, llamaCppLogits, loadLlamaCpp, maxAbsDiff, ourLogits } from '../helpers/llama-cpp.js';

const MODELS = 'test/fixtures/models';
const SPM = JSON.parse(readFileSync('test/fixtures/tokenization/spm.json', 'utf8')) as {
  texts: string[];
  tokenizers: Record<string, { ids_no_special: number[][] }>;
  convert_hf_to_gguf: Record<string, Record<string, unknown>>;
};
const dir = tempDir('dpo-gguf-spm-');
const ctxOpts = { contextSize: 128, batchSize: 64, threads: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false } as const;

// fixture → (tokenizer in spm.json, config patch: the parts llama.cpp's graphs compute alike, see gguf-architectures.test.ts)
const CASES: [string, string, Record<string, unknown>][] = [
  ['gemma3-spm', 'gemma', { query_pre_attn_scalar: 16 }],
  ['gemma2-spm', 'gemma', { query_pre_attn_scalar: 16 }],
  ['phi3-spm', 'llama', { sliding_window: null }],
];

/**
 * Texts llama.cpp tokenizes unlike transformers with the vocabulary convert_hf_to_gguf.py writes
 * (the same as ours, tested above), each a difference of llama.cpp's or its converter's:
 * - Gemma: the converter types SentencePiece's user-defined pieces (<start_of_turn>) NORMAL unless
 *   tokenizer_config.json lists them in added_tokens_decoder (transformers 5 saves no such list), so
 *   llama.cpp does not match them whole in text;
 * - Llama / Phi-3: llama.cpp always prefixes a space (SentencePiece's add_dummy_prefix), transformers 5's
 *   Metaspace (prepend_scheme "first") not before a leading space, and it prefixes the text after an
 *   added token too.
 */
const KNOWN_DIFFERENCES: Record<string, string[]> = {
  gemma: ['<start_of_turn>user\nhi<end_of_turn>'],
  llama: [' Hello  world', '<|user|>hi<|end|><|assistant|>', '   leading and trailing   '],
};

/** The tokenizer.* metadata of a GGUF file, as @huggingface/gguf reads it. */
async function tokenizerKv(file: string): Promise<Record<string, unknown>> {
  const { metadata } = await gguf(file, { allowLocalFile: true });
  return Object.fromEntries(Object.entries(metadata).filter(([k]) => k.startsWith('tokenizer.')));
}

/** Sets every down_proj weight to 0 (llama.cpp's float16 GELU table: see gguf-architectures.test.ts). */
function zeroMlps(model: CausalLM): void {
  for (const [n, p] of model.namedParameters()) if (/\.mlp\.down_proj\.weight$/.test(n)) p.data.fill(0);
}

for (const [fixture, tokName, patch] of CASES) {
  test(`${fixture}: the SentencePiece vocabulary metadata equals convert_hf_to_gguf.py's`, async () => {
    const p = loadPolicy(patchedFixture(join(MODELS, fixture), dir, `${fixture}-meta`, patch));
    const file = join(dir, `${fixture}-meta.gguf`);
    exportModelGguf(p.model, p.tokenizer, file, { outtype: 'f32', name: 'tiny' });
    const ours = await tokenizerKv(file);
    const want = SPM.convert_hf_to_gguf[fixture];
    assert.deepEqual(Object.keys(ours).sort(), Object.keys(want).sort(), `${fixture}: tokenizer.* keys`);
    for (const k of Object.keys(want)) assert.deepEqual(ours[k], want[k], `${fixture}: ${k}`);
  });

  test(`${fixture}: llama.cpp's tokenization equals transformers', its logits and greedy continuation equal ours`, async (t) => {
    const lc = await loadLlamaCpp();
    if ('skip' in lc) return t.skip(lc.skip);
    const src = patchedFixture(join(MODELS, fixture), dir, fixture, patch);
    for (const kind of ['exact', 'whole'] as const) {
      const p = loadPolicy(src);
      if (kind === 'exact') zeroMlps(p.model);
      const file = join(dir, `${fixture}-${kind}.gguf`);
      exportModelGguf(p.model, p.tokenizer, file, { outtype: 'f32', name: `tiny-${kind}` });
      const m = await lc.llama.loadModel({ modelPath: file });
      const ctx = await m.createContext(ctxOpts);
      const seq = ctx.getSequence();
      try {
        if (kind === 'exact') {
          const differ: string[] = [];
          SPM.texts.forEach((text, i) => {
            if (JSON.stringify(m.tokenize(text, true)) !== JSON.stringify(SPM.tokenizers[tokName].ids_no_special[i])) differ.push(text);
            assert.deepEqual(p.tokenizer.encode(text, { addSpecialTokens: false }), SPM.tokenizers[tokName].ids_no_special[i], `${fixture}: our ids of ${JSON.stringify(text)}`);
          });
          assert.deepEqual(differ, KNOWN_DIFFERENCES[tokName], `${fixture}: texts llama.cpp tokenizes unlike transformers`);
        }
        const ids = p.tokenizer.encode(SPM.texts.slice(3, 8).join(' '), { addSpecialTokens: false }).slice(0, 40);
        const ourL = ourLogits(p.model, ids);
        const err = maxAbsDiff(await llamaCppLogits(seq, ids, p.model.arch.vocabSize), ourL);
        if (kind === 'whole') {
          const rel = err / Math.max(...ourL.map(Math.abs));
          t.diagnostic(`${fixture} with its MLPs: max |logit difference| / max |logit| = ${rel.toExponential(2)}`);
          assert.ok(rel <= 3e-3, `${fixture}: llama.cpp vs our logits: relative difference ${rel}`);
          continue;
        }
        t.diagnostic(`${fixture}: max |logit difference| over ${ids.length} positions: ${err.toExponential(2)}`);
        assert.ok(err <= 1e-4, `${fixture}: llama.cpp vs our logits: max abs difference ${err}`);
        const prompt = ids.slice(0, 12);
        const eog = [...Array(p.model.arch.vocabSize).keys()].filter((i) => m.isEogToken(i as never));
        const want = generate(p.model, prompt, { maxNewTokens: 16, temperature: 0, eosTokenIds: eog });
        if (eog.includes(want[want.length - 1])) want.pop();
        assert.deepEqual(await llamaCppGreedy(seq, prompt, 16), want, `${fixture}: greedy continuation`);
      } finally {
        await ctx.dispose();
        await m.dispose();
      }
    }
  });
}

test('tokenizer.model reader: pieces, types and specs of the fixture', () => {
  const spm = parseSentencePieceModel(readFileSync(join(MODELS, 'gemma3-spm', 'tokenizer.model')), 'tokenizer.model');
  const want = SPM.convert_hf_to_gguf['gemma3-spm']['tokenizer.ggml.tokens'] as string[];
  assert.equal(spm.pieces.length, 400);
  assert.deepEqual(spm.pieces.map((p) => p.piece), want.slice(0, 400));
  assert.deepEqual(spm.pieces.slice(0, 8).map((p) => p.type), [SPM_TYPE.CONTROL, SPM_TYPE.CONTROL, SPM_TYPE.CONTROL, SPM_TYPE.UNKNOWN, SPM_TYPE.USER_DEFINED, SPM_TYPE.USER_DEFINED, SPM_TYPE.USER_DEFINED, SPM_TYPE.BYTE]);
  assert.deepEqual([spm.modelType, spm.byteFallback, spm.addDummyPrefix], [2, true, false]);
  const llama = parseSentencePieceModel(readFileSync(join(MODELS, 'phi3-spm', 'tokenizer.model')), 'tokenizer.model');
  assert.equal(llama.addDummyPrefix, true);
});

test('tokenizer.model reader: a malformed file is a one-line DpoError', () => {
  const good = readFileSync(join(MODELS, 'gemma3-spm', 'tokenizer.model'));
  const cases: [string, Uint8Array, RegExp][] = [
    ['truncated', good.subarray(0, good.length - 3), /runs past the end/],
    ['empty', new Uint8Array(0), /no pieces/],
    ['JSON text', Buffer.from('{"model": {}}'), /wire type|field/],
    ['bad wire type', Uint8Array.from([0x0b]), /wire type 3 of field 1/],
    ['piece not UTF-8', Uint8Array.from([0x0a, 0x03, 0x0a, 0x01, 0xff]), /not UTF-8/],
    ['piece type 9', Uint8Array.from([0x0a, 0x05, 0x0a, 0x01, 0x61, 0x18, 0x09]), /type 9/],
  ];
  for (const [name, bytes, re] of cases) {
    assert.throws(() => parseSentencePieceModel(bytes, 'x/tokenizer.model'), (e: unknown) => {
      assert.ok(e instanceof DpoError, name);
      assert.match(e.message, re, name);
      assert.match(e.message, /^x\/tokenizer\.model: not a SentencePiece model/, name);
      assert.ok(!e.message.includes('\n'), `${name}: one line`);
      return true;
    });
  }
});

test('export: a malformed tokenizer.model in the checkpoint is a one-line DpoError naming the file', () => {
  const src = patchedFixture(join(MODELS, 'gemma3-spm'), dir, 'gemma3-spm-broken', { query_pre_attn_scalar: 16 });
  writeFileSync(join(src, 'tokenizer.model'), readFileSync(join(MODELS, 'gemma3-spm', 'tokenizer.model')).subarray(0, 100));
  const p = loadPolicy(src);
  assert.throws(() => exportModelGguf(p.model, p.tokenizer, join(dir, 'broken.gguf'), { outtype: 'f32', name: 'tiny' }), (e: unknown) => {
    assert.ok(e instanceof DpoError);
    assert.match(e.message, /gemma3-spm-broken\/tokenizer\.model: not a SentencePiece model \(field 1 runs past the end\)/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
});

// Real Gemma checkpoints (saved by transformers 4) list <start_of_turn> / <end_of_turn> in
// tokenizer_config.json's added_tokens_decoder: they are then CONTROL, and llama.cpp matches them whole.
test('gemma3-spm with added_tokens_decoder: those tokens are CONTROL and llama.cpp tokenizes every text as transformers', async (t) => {
  const src = patchedFixture(join(MODELS, 'gemma3-spm'), dir, 'gemma3-spm-decoder', { query_pre_attn_scalar: 16 });
  const cfgPath = join(src, 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  cfg.added_tokens_decoder = { 4: { content: '<start_of_turn>', special: true }, 5: { content: '<end_of_turn>', special: true } };
  writeFileSync(cfgPath, JSON.stringify(cfg));
  const p = loadPolicy(src);
  const file = join(dir, 'gemma3-spm-decoder.gguf');
  exportModelGguf(p.model, p.tokenizer, file, { outtype: 'f32', name: 'tiny' });
  const kv = await tokenizerKv(file);
  const types = kv['tokenizer.ggml.token_type'] as number[];
  const scores = kv['tokenizer.ggml.scores'] as number[];
  assert.deepEqual([types[4], types[5], scores[4], scores[5]], [3, 3, -1000, -1000]);
  const lc = await loadLlamaCpp();
  if ('skip' in lc) return t.skip(lc.skip);
  const m = await lc.llama.loadModel({ modelPath: file });
  try {
    SPM.texts.forEach((text, i) => assert.deepEqual(m.tokenize(text, true), SPM.tokenizers.gemma.ids_no_special[i], `llama.cpp's ids of ${JSON.stringify(text)}`));
  } finally {
    await m.dispose();
  }
});

test('a saved tokenizer (training output, dpo merge) keeps tokenizer.model, so its export is SentencePiece too', async () => {
  const src = patchedFixture(join(MODELS, 'gemma3-spm'), dir, 'gemma3-spm-saved-src', { query_pre_attn_scalar: 16 });
  const p = loadPolicy(src);
  const out = join(dir, 'gemma3-spm-saved');
  mkdirSync(out);
  cpSync(join(src, 'config.json'), join(out, 'config.json'));
  cpSync(join(src, 'model.safetensors'), join(out, 'model.safetensors'));
  p.tokenizer.save(out);
  const q = loadPolicy(out);
  const file = join(dir, 'gemma3-spm-saved.gguf');
  exportModelGguf(q.model, q.tokenizer, file, { outtype: 'f32', name: 'tiny' });
  assert.deepEqual(await tokenizerKv(file), SPM.convert_hf_to_gguf['gemma3-spm']);
});

test('export: a SentencePiece-style tokenizer.json without its tokenizer.model is a one-line DpoError', () => {
  const src = patchedFixture(join(MODELS, 'phi3-spm'), dir, 'phi3-spm-no-model', { sliding_window: null });
  rmSync(join(src, 'tokenizer.model'));
  const p = loadPolicy(src);
  assert.throws(() => exportModelGguf(p.model, p.tokenizer, join(dir, 'no-model.gguf'), { outtype: 'f32', name: 'tiny' }), (e: unknown) => {
    assert.ok(e instanceof DpoError);
    assert.match(e.message, /phi3-spm-no-model: a SentencePiece-style tokenizer without its tokenizer\.model; copy the base model's tokenizer\.model next to tokenizer\.json/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
});
