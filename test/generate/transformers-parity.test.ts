/**
 * Generation against transformers (fixture: tools/fixtures/make_generate.py): greedy continuations
 * token for token, and the sampler's empirical first-token frequencies against the exact
 * distribution transformers' warpers (temperature → top-k → top-p → softmax) give.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad } from '../../src/autograd/tape.js';
import { loadCausalLM } from '../../src/models/load.js';
import { generate, sampleToken } from '../../src/generate/generate.js';
import { Rng } from '../../src/tensor/rng.js';

interface Fixture {
  max_new_tokens: number;
  greedy: Record<string, { prompt: number[]; new_tokens: number[] }[]>;
  sampling: { prompt: number[]; cases: { temperature: number; top_k: number; top_p: number; probs: number[] }[] };
}
const FIX = JSON.parse(readFileSync('test/fixtures/generate/transformers.json', 'utf8')) as Fixture;

for (const [name, rows] of Object.entries(FIX.greedy)) {
  test(`${name}: greedy generation equals transformers' model.generate(do_sample=False)`, () => {
    const { model } = loadCausalLM(join('test/fixtures/models', name));
    for (const r of rows) assert.deepEqual(generate(model, r.prompt, { maxNewTokens: FIX.max_new_tokens }), r.new_tokens);
  });
}

/** Empirical frequencies of n draws of sampleToken on the llama fixture's first-step logits. */
let firstLogits: Float32Array | null = null;
function frequencies(cfg: { temperature: number; topK: number; topP: number }, n: number, seed: number): Float64Array {
  if (!firstLogits) {
    const { model } = loadCausalLM('test/fixtures/models/llama');
    const ids = FIX.sampling.prompt;
    const V = model.arch.vocabSize;
    firstLogits = Float32Array.from(noGrad(() => model.logits({ ids: Int32Array.from(ids), B: 1, T: ids.length })).data.subarray((ids.length - 1) * V, ids.length * V));
  }
  const logits = firstLogits, V = logits.length;
  const rng = new Rng(seed);
  const f = new Float64Array(V);
  for (let i = 0; i < n; i++) f[sampleToken(logits, cfg, rng)] += 1 / n;
  return f;
}

for (const c of FIX.sampling.cases) {
  test(`sampling at temperature ${c.temperature}, top_k ${c.top_k}, top_p ${c.top_p}: frequencies match transformers' exact probabilities`, () => {
    const n = 20_000;
    const f = frequencies({ temperature: c.temperature, topK: c.top_k, topP: c.top_p }, n, 11);
    let maxErr = 0, chi2 = 0, df = -1;
    for (let v = 0; v < c.probs.length; v++) {
      const p = c.probs[v];
      if (p === 0) {
        assert.equal(f[v], 0, `token ${v} has probability 0 after filtering but was sampled`);
        continue;
      }
      maxErr = Math.max(maxErr, Math.abs(f[v] - p));
      chi2 += (n * (f[v] - p) ** 2) / p;
      df++;
    }
    // Support sizes must agree: a token kept by transformers is sampled at least once when p·n ≫ 1.
    for (let v = 0; v < c.probs.length; v++) if (c.probs[v] * n > 20) assert.ok(f[v] > 0, `token ${v} (p = ${c.probs[v]}) never sampled`);
    // 5 standard deviations of the largest binomial error; chi² within its mean + 6 sd (df + 6·√(2df)).
    assert.ok(maxErr < 5 * Math.sqrt(0.25 / n), `max |freq − p| = ${maxErr}`);
    assert.ok(chi2 < df + 6 * Math.sqrt(2 * df), `chi² = ${chi2.toFixed(1)} over ${df} degrees of freedom`);
  });
}

test('the statistical check can fail: a wrong temperature is detected', () => {
  const c = FIX.sampling.cases[0];
  const n = 20_000;
  const f = frequencies({ temperature: c.temperature * 1.3, topK: c.top_k, topP: c.top_p }, n, 11);
  let chi2 = 0, df = -1;
  for (let v = 0; v < c.probs.length; v++) if (c.probs[v] > 0) { chi2 += (n * (f[v] - c.probs[v]) ** 2) / c.probs[v]; df++; }
  assert.ok(chi2 > df + 6 * Math.sqrt(2 * df), `chi² = ${chi2.toFixed(1)} should reject temperature ×1.3`);
});
