/** Generation with a KV cache equals argmax over full (uncached) forwards, for every architecture. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { noGrad } from '../../src/autograd/tape.js';
import { loadCausalLM } from '../../src/models/load.js';
import { generate, sampleToken } from '../../src/generate/generate.js';
import { Rng } from '../../src/tensor/rng.js';

for (const name of ['llama', 'mistral', 'qwen3', 'gpt2', 'gemma3', 'gemma3-mm', 'gemma2', 'olmo2', 'granite', 'smollm3']) {
  test(`${name}: cached greedy decoding matches full recomputation`, () => {
    const { model } = loadCausalLM(join('test/fixtures/models', name));
    const prompt = [5, 17, 42, 8, 99, 3, 61];
    const got = generate(model, prompt, { maxNewTokens: 10 });
    const ids = [...prompt];
    for (let i = 0; i < 10; i++) {
      const logits = noGrad(() => model.logits({ ids: Int32Array.from(ids), B: 1, T: ids.length }));
      const V = model.arch.vocabSize;
      const last = logits.data.subarray((ids.length - 1) * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
      ids.push(best);
    }
    assert.deepEqual(got, ids.slice(prompt.length));
  });
}

test('sampling: temperature, top-k and top-p restrict the choice; greedy at temperature 0', () => {
  const logits = Float32Array.from([1, 5, 3, 4.9, -2]);
  assert.equal(sampleToken(logits, {}, new Rng(1)), 1);
  const rng = new Rng(3);
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) seen.add(sampleToken(logits, { temperature: 1, topK: 2 }, rng));
  assert.deepEqual([...seen].sort(), [1, 3]);
  const seenP = new Set<number>();
  for (let i = 0; i < 200; i++) seenP.add(sampleToken(logits, { temperature: 1, topP: 0.4 }, rng));
  assert.deepEqual([...seenP], [1]);
});

test('generation stops at EOS', () => {
  const { model } = loadCausalLM('test/fixtures/models/llama');
  const first = generate(model, [5, 17, 42], { maxNewTokens: 5 });
  const stopped = generate(model, [5, 17, 42], { maxNewTokens: 5, eosTokenIds: [first[1]] });
  assert.deepEqual(stopped, first.slice(0, 2));
});
