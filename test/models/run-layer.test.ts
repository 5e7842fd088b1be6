/**
 * A no-grad forward (reference model, evaluation) runs each decoder layer in its own pool scope:
 * its peak of live pool bytes does not grow with depth, and its output is the recorded forward's.
 * A recorded forward frees the intermediates no backward reads as soon as they are consumed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { reshape, sum } from '../../src/ops/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { loadCausalLM } from '../../src/models/load.js';
import { LlamaForCausalLM } from '../../src/models/llama.js';
import { poolStats, resetPeakBytes, scope } from '../../src/tensor/pool.js';
import { Rng } from '../../src/tensor/rng.js';

const MODELS = 'test/fixtures/models';

test('no-grad forward: peak live bytes independent of depth, output identical to the recorded forward', () => {
  const { model: small } = loadCausalLM(join(MODELS, 'llama'));
  const Bm = 4, Tm = 48;
  const r = new Rng(3);
  const ids = new Int32Array(Bm * Tm).map(() => r.nextInt(small.arch.vocabSize));
  const peaks = [1, 8].map((numLayers) => {
    const model = new LlamaForCausalLM({ ...small.arch, numLayers });
    const w = new Rng(9);
    for (const p of model.parameters()) p.data.forEach((_, i, a) => (a[i] = (w.nextFloat() - 0.5) * 0.2));
    const run = () => scope(() => noGrad(() => model.hidden({ ids, B: Bm, T: Tm })).data.slice());
    run(); // warm the rope cache
    const before = poolStats().liveBytes;
    resetPeakBytes();
    const out = run();
    const peak = poolStats().peakBytes - before;
    for (const p of model.parameters()) p.requiresGrad = true;
    const recorded = scope(() => model.hidden({ ids, B: Bm, T: Tm }).data.slice());
    assert.deepEqual(out, recorded, `${numLayers} layers: no-grad output differs from the recorded one`);
    return peak;
  });
  console.log(`# no-grad forward peak live bytes: 1 layer ${peaks[0]}, 8 layers ${peaks[1]}`);
  assert.ok(peaks[1] < 1.3 * peaks[0], `8-layer no-grad peak ${peaks[1]} grows with depth (1 layer: ${peaks[0]})`);
});

test('a recorded forward frees what no backward reads (un-rotated q/k, branch outputs): less live memory, same gradients', () => {
  const { model } = loadCausalLM(join(MODELS, 'llama'));
  for (const p of model.parameters()) p.requiresGrad = true;
  const Bm = 2, Tm = 32;
  const r = new Rng(5);
  const ids = new Int32Array(Bm * Tm).map(() => r.nextInt(model.arch.vocabSize));
  const run = () =>
    scope(() => {
      for (const p of model.parameters()) p.grad = null;
      const before = poolStats().liveBytes;
      const h = model.hidden({ ids, B: Bm, T: Tm });
      const held = poolStats().liveBytes - before;
      backward(sum(h));
      return { held, grads: model.parameters().map((p) => Float64Array.from(p.grad?.data ?? [])) };
    });
  run(); // warm the rope cache
  const early = run();
  const original = Tensor.prototype.releaseEarly;
  Tensor.prototype.releaseEarly = function () {};
  let late;
  try {
    late = run();
  } finally {
    Tensor.prototype.releaseEarly = original;
  }
  const { hiddenSize: C, headDim: D, numHeads: H, numKvHeads: KV, numLayers: L } = model.arch;
  const freed = 4 * Bm * Tm * L * (H * D + KV * D + 2 * C); // q, k before RoPE; attention and MLP outputs
  assert.ok(late.held - early.held >= 0.9 * freed, `freed ${late.held - early.held} bytes, expected about ${freed}`);
  early.grads.forEach((g, i) => assert.deepEqual(g, late.grads[i], `gradient ${i} changed`));
});

test('releaseEarly: a view frees its base; kept tensors stay', () => {
  const base = Tensor.zeros([4, 3]);
  const view = reshape(base, [12]);
  view.releaseEarly();
  assert.equal(base.released, true);
  const kept = Tensor.zeros([2]).keep();
  kept.releaseEarly();
  assert.equal(kept.released, false);
  assert.equal(kept.size, 2);
});
