/**
 * Our GGUF export, run by llama.cpp itself (node-llama-cpp's prebuilt CPU binary): for a tiny
 * random checkpoint of each architecture (GQA, so q and k are permuted with different head
 * counts), llama.cpp's tokenizer gives our ids, its per-position logits equal ours and its greedy
 * continuation equals ours.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadPolicy } from '../../src/cli/load-policy.js';
import { exportModelGguf } from '../../src/io/gguf-export.js';
import { generate } from '../../src/generate/generate.js';
import { patchedFixture, tempDir } from './helpers.js';
import { llamaCppGreedy, llamaCppLogits, loadLlamaCpp, maxAbsDiff, ourLogits } from '../helpers/llama-cpp.js';

const MODELS = 'test/fixtures/models';
const TEXTS = ['Hello world, the cat sat on the mat.', 'def add(a, b):\n    return a + b  # 3 + 4 = 7', "  leading spaces, émigré naïve café 😀 and 'quotes' don't", 'numbers 12345 67.89\n\n\tand tabs'];
const CHATS = [[{ role: 'user', content: 'What is the capital of France?' }], [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }, { role: 'assistant', content: 'Hello! How can I help?' }, { role: 'user', content: 'Tell me a joke.' }]];

const dir = tempDir('dpo-gguf-');

/** Mistral's fixture has a 6-token sliding window, which llama.cpp's llama graph lacks: a copy without it. */
const mistralNoWindow = () => patchedFixture(join(MODELS, 'mistral'), dir, 'mistral-nowindow', { sliding_window: null });

const CASES: [string, () => string][] = [
  ['llama', () => join(MODELS, 'llama')], // llama3 rope scaling → rope_freqs
  ['llama-tied', () => join(MODELS, 'llama-tied')],
  ['mistral', mistralNoWindow],
  ['qwen2', () => join(MODELS, 'qwen2')],
  ['qwen3', () => join(MODELS, 'qwen3')],
  ['gpt2', () => join(MODELS, 'gpt2')],
];

for (const [name, src] of CASES) {
  test(`${name}: llama.cpp's tokenizer, logits and greedy continuation equal ours (f32 GGUF)`, async (t) => {
    const lc = await loadLlamaCpp();
    if ('skip' in lc) return t.skip(lc.skip);
    const p = loadPolicy(src());
    const file = join(dir, `${name}.gguf`);
    exportModelGguf(p.model, p.tokenizer, file, { outtype: 'f32', name });
    const m = await lc.llama.loadModel({ modelPath: file });
    // An F32 KV cache and no flash attention: llama.cpp's defaults (F16 cache) round keys and values to 11 bits.
    const ctx = await m.createContext({ contextSize: Math.min(128, p.model.arch.maxPositions), batchSize: 64, threads: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false });
    const seq = ctx.getSequence();
    try {
      // Tokenizer: texts and rendered chats (special tokens parsed as such).
      const rendered = CHATS.map((c) => p.tokenizer.applyChatTemplate(c, { addGenerationPrompt: true }));
      for (const text of [...TEXTS, ...rendered]) {
        assert.deepEqual(m.tokenize(text, true), p.tokenizer.encode(text, { addSpecialTokens: false }), `${name}: token ids of ${JSON.stringify(text.slice(0, 40))}`);
      }
      // Logits at every position.
      const V = p.model.arch.vocabSize;
      const ids = p.tokenizer.applyChatTemplateIds(CHATS[1], { addGenerationPrompt: true }).slice(0, 48);
      const err = maxAbsDiff(await llamaCppLogits(seq, ids, V), ourLogits(p.model, ids));
      t.diagnostic(`${name}: max |logit difference| over ${ids.length} positions: ${err.toExponential(2)}`);
      assert.ok(err <= 1e-3, `${name}: llama.cpp vs our logits: max abs difference ${err}`);
      // Greedy continuation.
      // Greedy continuation: llama.cpp's sampler stops at any end-of-generation token, so ours
      // stops at the same set (which must hold our EOS); both then give the same tokens.
      const eog = [...Array(V).keys()].filter((i) => m.isEogToken(i as never));
      if (p.tokenizer.eosTokenId !== null) assert.ok(eog.includes(p.tokenizer.eosTokenId), `${name}: llama.cpp does not stop at our EOS`);
      // (GPT-2's 64 positions hold a 32-token prompt and 32 new tokens.)
      const prompt = p.tokenizer.applyChatTemplateIds(CHATS[0], { addGenerationPrompt: true }).slice(-Math.min(32, p.model.arch.maxPositions - 32));
      const ours = generate(p.model, prompt, { maxNewTokens: 32, temperature: 0, eosTokenIds: eog });
      if (eog.includes(ours[ours.length - 1])) ours.pop();
      const theirs = await llamaCppGreedy(seq, prompt, 32);
      t.diagnostic(`${name}: greedy continuation of ${theirs.length} tokens${theirs.length < 32 ? ' (then end of generation)' : ''}`);
      assert.deepEqual(theirs, ours, `${name}: greedy continuation`);
    } finally {
      await ctx.dispose();
      await m.dispose();
    }
  });
}

// Lower precisions: llama.cpp's logits stay within a stated distance of ours (f32 weights),
// relative to the largest |logit| (about 3 here). The bounds are about 2× the worst of these
// random tiny models (f16 2.4e-3, bf16 2.9e-2, q8_0 5.6e-2 relative; llama.cpp also rounds the
// activations to 8 bits in Q8_0 products); a wrong scale or layout is off by order 1.
const OUTTYPE_TOL = { f16: 1e-2, bf16: 8e-2, q8_0: 1e-1 } as const;
for (const name of ['llama', 'qwen2', 'gpt2']) {
  test(`${name}: f16 / bf16 / q8_0 GGUF logits in llama.cpp stay within ${JSON.stringify(OUTTYPE_TOL)} of ours (relative to max |logit|)`, async (t) => {
    const lc = await loadLlamaCpp();
    if ('skip' in lc) return t.skip(lc.skip);
    const p = loadPolicy(join(MODELS, name));
    const ids = p.tokenizer.applyChatTemplateIds(CHATS[1], { addGenerationPrompt: true }).slice(0, 48);
    const ours = ourLogits(p.model, ids);
    for (const outtype of ['f16', 'bf16', 'q8_0'] as const) {
      const file = join(dir, `${name}-${outtype}.gguf`);
      exportModelGguf(p.model, p.tokenizer, file, { outtype, name });
      const m = await lc.llama.loadModel({ modelPath: file });
      const ctx = await m.createContext({ contextSize: 64, batchSize: 64, threads: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false });
      try {
        const scale = Math.max(...ours.map(Math.abs));
        const err = maxAbsDiff(await llamaCppLogits(ctx.getSequence(), ids, p.model.arch.vocabSize), ours) / scale;
        t.diagnostic(`${name} ${outtype}: max |logit difference| / max |logit| = ${err.toExponential(2)} (max |logit| ${scale.toFixed(2)})`);
        assert.ok(err <= OUTTYPE_TOL[outtype], `${name} ${outtype}: ${err}`);
      } finally {
        await ctx.dispose();
        await m.dispose();
      }
    }
  });
}
