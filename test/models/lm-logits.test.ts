/** lmLogits: the full logits generation samples from, soft-capped like the fused log-prob op. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { lmLogits } from '../../src/models/causal-lm.js';
import * as op from '../../src/ops/index.js';

test('lmLogits: h·wᵀ, capped as cap·tanh(· / cap) when the model has a final-logit soft-cap, matching tokenLogprobs', () => {
  const h = Tensor.from([3, -1, 2, 0.5, -4, 1], [2, 3], 'float64');
  const w = Tensor.from([1, 2, 0, -1, 3, 1, 2, 2, 2, 0, -3, 1], [4, 3], 'float64');
  const plain = lmLogits({ lmHeadWeight: () => w }, h);
  const capped = lmLogits({ lmHeadWeight: () => w, finalLogitSoftcap: 4 }, h);
  plain.data.forEach((l, i) => assert.ok(Math.abs(capped.data[i] - 4 * Math.tanh(l / 4)) < 1e-15));
  // log_softmax of the capped logits is what the fused op gives with the same cap
  const lp = op.tokenLogprobs(h, w, Int32Array.from([2, 0]), { softcap: 4 }).logp;
  const lsm = op.logSoftmax(capped);
  assert.ok(Math.abs(lp.data[0] - lsm.data[2]) < 1e-12 && Math.abs(lp.data[1] - lsm.data[4]) < 1e-12);
});
