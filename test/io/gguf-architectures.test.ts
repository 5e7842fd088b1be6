/**
 * The GGUF export of every architecture beyond llama / qwen / gpt2, and of every RoPE scaling type,
 * run by llama.cpp itself (node-llama-cpp 3.22.1's bundled build): its per-position logits equal
 * our model's (which the model tests hold to transformers) and its greedy continuation equals ours.
 * Where llama.cpp's graph differs from transformers (a sliding window it lacks, longrope's long
 * factors chosen by context size, dynamic NTK, a score scale it derives, a fixed no-RoPE period),
 * the fixture is patched into the part both compute alike, and the export's refusal or caveat is
 * tested in gguf.test.ts.
 *
 * Gemma's MLP: llama.cpp's CPU GELU reads a float16 table (input and output rounded to 11 bits),
 * so Gemma's logits differ by ~1e-3 of their size. Gemma is therefore checked twice: with its MLPs
 * zeroed (down_proj = 0: every other quirk, norms + 1, √hidden, soft-caps, q/k norms, sliding
 * pattern, two RoPE tables, to 1e-4) and whole, relative to the largest |logit| (measured ≤ 1.2e-3;
 * a gate / up swap or a missing norm shift is off by order 1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadPolicy } from '../../src/cli/load-policy.js';
import { exportModelGguf } from '../../src/io/gguf-export.js';
import { generate } from '../../src/generate/generate.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { patchedFixture, tempDir } from './helpers.js';
import { llamaCppGreedy, llamaCppLogits, loadLlamaCpp, maxAbsDiff, ourLogits } from '../helpers/llama-cpp.js';

const MODELS = 'test/fixtures/models';
const TEXT = 'Hello world, the cat sat on the mat. def add(a, b): return a + b  # 3 + 4 = 7, and then some more words follow here';
const dir = tempDir('dpo-gguf-arch-');

interface Case {
  /** Fixture directory under test/fixtures/models. */
  fixture: string;
  /** config.json keys replaced (see the file comment). */
  patch?: Record<string, unknown>;
  /** Tokens compared (default 40: past every sliding window and every original context here). */
  T?: number;
  /** Greedy prompt length (default 12: past longrope's original 8), or 0 for no greedy check. */
  prompt?: number;
  /** llama.cpp's float16 GELU (see above). */
  gelu?: boolean;
}

// Gemma's llama.cpp graphs scale scores by head_dim^−½ (16 here): query_pre_attn_scalar 16.
const GEMMA = { query_pre_attn_scalar: 16 };
const CASES: [string, Case][] = [
  ['gemma2', { fixture: 'gemma2', patch: GEMMA, gelu: true }], // soft-caps 2 / 3, window 4, every other layer sliding
  ['gemma3', { fixture: 'gemma3', patch: GEMMA, gelu: true }], // layers sliding / full / sliding, local θ 100
  ['gemma3 (multimodal checkpoint)', { fixture: 'gemma3-mm', patch: GEMMA, gelu: true }],
  // yarn on the full-attention table (the sliding one unscaled: llama.cpp scales only the full layers)
  ['gemma3 yarn', { fixture: 'gemma3-rope', patch: { ...GEMMA, rope_parameters: { full_attention: { factor: 4.0, original_max_position_embeddings: 16, rope_theta: 1e6, rope_type: 'yarn' }, sliding_attention: { rope_theta: 100.0, rope_type: 'default' } } }, gelu: true }],
  ['olmo2', { fixture: 'olmo2' }],
  ['granite', { fixture: 'granite' }],
  // llama.cpp skips RoPE on every 4th layer and has no window: both layers with RoPE, no window.
  ['smollm3', { fixture: 'smollm3', patch: { no_rope_layers: [1, 1], use_sliding_window: false } }],
  // longrope (long factors past 8 tokens), partial rotary 0.5, fused qkv / gate_up; llama.cpp disables Phi's window.
  ['phi3', { fixture: 'phi3', patch: { sliding_window: null } }],
  ['llama yarn', { fixture: 'llama-yarn' }],
  // transformers' explicit attention_factor as rope.scaling.attn_factor relative to llama.cpp's 0.1·ln(factor) + 1.
  ['llama yarn attention_factor', { fixture: 'llama-yarn', patch: { rope_parameters: { factor: 4.0, original_max_position_embeddings: 16, rope_theta: 10000.0, rope_type: 'yarn', attention_factor: 1.5, beta_fast: 16.0, beta_slow: 2.0 } } }],
  ['llama linear', { fixture: 'llama-linear' }],
  ['llama longrope', { fixture: 'llama-longrope' }],
  // dynamic NTK equals default RoPE up to max_position_embeddings (8), where llama.cpp stops matching.
  ['llama dynamic', { fixture: 'llama-dynamic', T: 8, prompt: 0 }],
];

const ctxOpts = { contextSize: 128, batchSize: 64, threads: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false } as const;

/** Sets every down_proj weight to 0 (the MLP branch then adds nothing, before or after its norm). */
function zeroMlps(model: CausalLM): void {
  for (const [n, p] of model.namedParameters()) if (/\.mlp\.down_proj\.weight$/.test(n)) p.data.fill(0);
}

for (const [name, c] of CASES) {
  test(`${name}: llama.cpp's logits and greedy continuation equal ours (f32 GGUF)`, async (t) => {
    const lc = await loadLlamaCpp();
    if ('skip' in lc) return t.skip(lc.skip);
    const src = c.patch ? patchedFixture(join(MODELS, c.fixture), dir, name.replace(/\W+/g, '-'), c.patch) : join(MODELS, c.fixture);
    // (general.name must not contain "phi3": see the phi3 table's checkName.)
    const variants: ['exact' | 'gelu', (m: CausalLM) => void][] = c.gelu ? [['exact', zeroMlps], ['gelu', () => {}]] : [['exact', () => {}]];
    for (const [kind, prepare] of variants) {
      const p = loadPolicy(src);
      prepare(p.model);
      const file = join(dir, `${name.replace(/\W+/g, '-')}-${kind}.gguf`);
      exportModelGguf(p.model, p.tokenizer, file, { outtype: 'f32', name: `tiny-${kind}` });
      const m = await lc.llama.loadModel({ modelPath: file });
      const ctx = await m.createContext(ctxOpts);
      const seq = ctx.getSequence();
      try {
        const ids = p.tokenizer.encode(TEXT).slice(0, c.T ?? 40);
        const ours = ourLogits(p.model, ids);
        const err = maxAbsDiff(await llamaCppLogits(seq, ids, p.model.arch.vocabSize), ours);
        if (kind === 'exact') {
          t.diagnostic(`${name}: max |logit difference| over ${ids.length} positions: ${err.toExponential(2)}`);
          assert.ok(err <= 1e-4, `${name}: llama.cpp vs our logits: max abs difference ${err}`);
        } else {
          const rel = err / Math.max(...ours.map(Math.abs));
          t.diagnostic(`${name} with its MLPs (float16 GELU in llama.cpp): max |logit difference| / max |logit| = ${rel.toExponential(2)}`);
          assert.ok(rel <= 3e-3, `${name}: llama.cpp vs our logits: relative difference ${rel}`);
          continue;
        }
        const n = c.prompt ?? 12;
        if (!n) continue;
        const prompt = ids.slice(0, n);
        const eog = [...Array(p.model.arch.vocabSize).keys()].filter((i) => m.isEogToken(i as never));
        const want = generate(p.model, prompt, { maxNewTokens: 16, temperature: 0, eosTokenIds: eog });
        if (eog.includes(want[want.length - 1])) want.pop();
        assert.deepEqual(await llamaCppGreedy(seq, prompt, 16), want, `${name}: greedy continuation`);
      } finally {
        await ctx.dispose();
        await m.dispose();
      }
    }
  });
}
