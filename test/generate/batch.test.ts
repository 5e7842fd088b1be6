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
