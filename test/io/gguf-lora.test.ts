/**
 * The adapter GGUF on top of the base GGUF, run by llama.cpp at scale 1, equals the merged GGUF
 * and our model with the adapter: with q_proj and k_proj adapted (B's rows permuted with the base's,
 * 4 query and 2 key-value heads), rsLoRA, and per-layer rank / alpha (PEFT's rank_pattern and
 * alpha_pattern), which llama.cpp's single alpha can only express folded into B; Gemma 3 (every
 * projection) and Phi-3 (its fused qkv_proj and gate_up_proj, as PEFT names them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadPolicy } from '../../src/cli/load-policy.js';
import { applyLora, loraLayers, resolveTargets } from '../../src/lora/apply.js';
import { mergeAndUnload } from '../../src/lora/peft-io.js';
import { exportLoraGguf, exportModelGguf } from '../../src/io/gguf-export.js';
import { Rng } from '../../src/tensor/rng.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { patchedFixture, tempDir } from './helpers.js';
import { llamaCppLogits, loadLlamaCpp, maxAbsDiff, ourLogits } from '../helpers/llama-cpp.js';

const MODELS = 'test/fixtures/models';
const dir = tempDir('dpo-gguf-lora-');

interface Plan { r: number; alpha: number; useRslora: boolean; targets: string }
/** A patched fixture (see gguf-architectures.test.ts: what llama.cpp computes like transformers) and the tolerance against ours relative to max |logit| (Gemma: llama.cpp's float16 GELU). */
interface Source { src: () => string; relTol?: number }
const CASES: [string, Plan[], Source?][] = [
  ['llama', [{ r: 4, alpha: 8, useRslora: false, targets: 'all-linear' }]],
  // Gemma 3 (q/k norms, +1 norms, sliding pattern) with every projection adapted.
  ['gemma3', [{ r: 4, alpha: 8, useRslora: false, targets: 'all-linear' }], { src: () => patchedFixture(join(MODELS, 'gemma3'), dir, 'gemma3', { query_pre_attn_scalar: 16 }), relTol: 3e-3 }],
  // Phi-3's fused qkv_proj and gate_up_proj as LoRA targets (attn_qkv / ffn_up in llama.cpp), longrope past 8 tokens.
  ['phi3', [{ r: 4, alpha: 8, useRslora: false, targets: '.*(qkv_proj|gate_up_proj)' }], { src: () => patchedFixture(join(MODELS, 'phi3'), dir, 'phi3', { sliding_window: null }) }],
  ['qwen2', [{ r: 4, alpha: 16, useRslora: true, targets: '.*(q_proj|k_proj|v_proj|down_proj)' }]],
  // Two LoRA configs in one model: rank 2 / alpha 8 on attention, rank 6 / alpha 3 on the MLP.
  ['qwen3', [{ r: 2, alpha: 8, useRslora: false, targets: '.*self_attn\\.(q|k|v|o)_proj' }, { r: 6, alpha: 3, useRslora: false, targets: '.*mlp\\..*' }]],
  ['gpt2', [{ r: 4, alpha: 8, useRslora: false, targets: 'all-linear' }]],
];

/** LoRA layers with random B (a fresh adapter's B is zero and would prove nothing). */
function withAdapter(model: CausalLM, plans: Plan[]): void {
  const rng = new Rng(7);
  plans.forEach((pl, i) => applyLora(model, { r: pl.r, alpha: pl.alpha, dropout: 0, useRslora: pl.useRslora }, resolveTargets(model, pl.targets), 11 + i));
  for (const [, l] of loraLayers(model)) {
    const b = l.lora_B.weight.data;
    for (let i = 0; i < b.length; i++) b[i] = (rng.nextFloat() * 2 - 1) * 0.3;
  }
}

const ctxOpts = { contextSize: 64, batchSize: 64, threads: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false } as const;

for (const [name, plans, source] of CASES) {
  test(`${name}: base GGUF + adapter GGUF (scale 1) = merged GGUF = our model with the adapter`, async (t) => {
    const lc = await loadLlamaCpp();
    if ('skip' in lc) return t.skip(lc.skip);
    const src = source?.src() ?? join(MODELS, name);
    const base = loadPolicy(src);
    const baseFile = join(dir, `${name}-base.gguf`);
    exportModelGguf(base.model, base.tokenizer, baseFile, { outtype: 'f32', name: 'tiny' }); // (not "phi3": see the phi3 table's checkName)
    const ids = base.tokenizer.encode('The quick brown fox jumps over the lazy dog; 12 + 30 = 42.');
    const baseLogits = ourLogits(base.model, ids);

    const p = loadPolicy(src);
    withAdapter(p.model, plans);
    const ours = ourLogits(p.model, ids);
    const change = maxAbsDiff(ours, baseLogits);
    // The adapter must change the logits far beyond the tolerance for this test to mean anything.
    assert.ok(change > 0.05 && (!source?.relTol || change > 10 * source.relTol * Math.max(...ours.map(Math.abs))), `the adapter changes the logits by only ${change}`);
    const loraFile = join(dir, `${name}-lora.gguf`);
    exportLoraGguf(p.model, loraFile, { outtype: 'f32', name: `${name}-lora` });
    mergeAndUnload(p.model);
    const mergedFile = join(dir, `${name}-merged.gguf`);
    exportModelGguf(p.model, p.tokenizer, mergedFile, { outtype: 'f32', name: 'tiny' });

    const V = p.model.arch.vocabSize;
    const bm = await lc.llama.loadModel({ modelPath: baseFile });
    const mm = await lc.llama.loadModel({ modelPath: mergedFile });
    const withLora = await bm.createContext({ ...ctxOpts, lora: { adapters: [{ filePath: loraFile, scale: 1 }] } });
    const merged = await mm.createContext(ctxOpts);
    try {
      const a = await llamaCppLogits(withLora.getSequence(), ids, V);
      const m = await llamaCppLogits(merged.getSequence(), ids, V);
      const eAM = maxAbsDiff(a, m), eAO = maxAbsDiff(a, ours), eMO = maxAbsDiff(m, ours);
      t.diagnostic(`${name}: max |Δlogit| base+adapter vs merged ${eAM.toExponential(2)}, vs ours ${eAO.toExponential(2)}; merged vs ours ${eMO.toExponential(2)}`);
      const tolOurs = source?.relTol ? source.relTol * Math.max(...ours.map(Math.abs)) : 1e-3;
      assert.ok(eAM <= 1e-3 && eAO <= tolOurs && eMO <= tolOurs, `${name}: ${eAM} ${eAO} ${eMO}`);
    } finally {
      await withLora.dispose();
      await merged.dispose();
      await bm.dispose();
      await mm.dispose();
    }
  });
}
