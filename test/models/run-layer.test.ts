/**
 * A no-grad forward (reference model, evaluation) runs each decoder layer in its own pool scope:
 * its peak of live pool bytes does not grow with depth, and its output is the recorded forward's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { noGrad } from '../../src/autograd/tape.js';
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
