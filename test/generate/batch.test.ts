/** Batched sampling (one prompt, several rows through a batched KV cache) equals one-at-a-time generation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadCausalLM } from '../../src/models/load.js';
import { generate, generateBatch } from '../../src/generate/generate.js';

for (const name of ['llama', 'mistral', 'qwen2', 'qwen3', 'gpt2']) {
  test(`${name}: generateBatch rows equal generate() with each row's seed (sampled and greedy, with EOS)`, () => {
    const { model } = loadCausalLM(join('test/fixtures/models', name));
    const prompt = [5, 17, 42, 8, 99, 3, 61];
    const seeds = [1, 2, 3, 4, 5];
    const cfg = { maxNewTokens: 12, temperature: 0.9, topK: 40, topP: 0.95 };
    const seq = seeds.map((seed) => generate(model, prompt, { ...cfg, seed }));
    assert.deepEqual(generateBatch(model, prompt, seeds, cfg), seq);
    assert.ok(new Set(seq.map((s) => s.join())).size > 1, 'different seeds sample different rows');
    // an EOS that some rows hit: those rows stop, the others go on
    const eos = seq[0][3];
    const seqE = seeds.map((seed) => generate(model, prompt, { ...cfg, seed, eosTokenIds: [eos] }));
    assert.deepEqual(generateBatch(model, prompt, seeds, { ...cfg, eosTokenIds: [eos] }), seqE);
    assert.deepEqual(generateBatch(model, prompt, [0, 9], { maxNewTokens: 6 }), [0, 9].map(() => generate(model, prompt, { maxNewTokens: 6 })));
  });
}

test('topKIndices equals a stable full sort cut at k (ties by index, k ≥ V, NaN-free random logits)', async () => {
  const { topKIndices } = await import('../../src/generate/generate.js');
  const { Rng } = await import('../../src/tensor/rng.js');
  const rng = new Rng(4);
  for (const [V, k] of [[1, 1], [7, 3], [50, 50], [320, 1], [320, 50], [1000, 17]]) {
    // few distinct values so ties are common
    const logits = Float32Array.from({ length: V }, () => Math.floor(rng.nextFloat() * 12) - 6);
    const ref = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, k);
    assert.deepEqual(topKIndices(logits, k), ref, `V=${V} k=${k}`);
  }
});

test('sampleToken with top-p alone (nucleus found among the top candidates) picks what sorting the whole vocabulary picks', async () => {
  const { sampleToken } = await import('../../src/generate/generate.js');
  const { Rng } = await import('../../src/tensor/rng.js');
  // The sort-everything sampler, as a reference (temperature → top-p over the full vocabulary).
  const reference = (logits: Float32Array, t: number, topP: number, u: number): number => {
    const idx = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
    const m = logits[idx[0]];
    let p = idx.map((i) => Math.exp((logits[i] - m) / t));
    let z = p.reduce((a, b) => a + b, 0);
    p = p.map((x) => x / z);
    let c = 0, keep = 0;
    while (keep < p.length && c < topP) c += p[keep++];
    p = p.slice(0, Math.max(keep, 1));
    z = p.reduce((a, b) => a + b, 0);
    for (let i = 0; i < p.length; i++) if ((u -= p[i] / z) <= 0) return idx[i];
    return idx[p.length - 1];
  };
  const gen = new Rng(8);
  for (const [V, topP, slope] of [[5000, 0.9, 1.5], [5000, 0.5, 0.3], [2000, 0.95, 0.05], [300, 0.7, 1]]) {
    const logits = Float32Array.from({ length: V }, (_, i) => -Math.log(i + 1) * slope + gen.nextFloat());
    let disagree = 0;
    for (let s = 0; s < 300; s++) {
      const u = new Rng(s).nextFloat();
      if (sampleToken(logits, { temperature: 0.8, topP }, new Rng(s)) !== reference(logits, 0.8, topP, u)) disagree++;
    }
    // sums in another order may move a draw sitting on a boundary by one token, nothing more
    assert.ok(disagree <= 1, `V=${V} top_p=${topP}: ${disagree} of 300 draws differ`);
  }
});
