/**
 * Gemma 2's soft-caps against transformers 5.17 (test/fixtures/softcap/gemma2.json, from
 * tools/fixtures/make_softcap.py): the fused attention with `softcap` against
 * modeling_gemma2.eager_attention_forward, and the fused log-prob op with `softcap` against logits
 * capped as Gemma2ForCausalLM caps them; values and gradients, in float64 (reference backend) and
 * float32 (the active backend, native when built).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { backward } from '../../src/autograd/tape.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as op from '../../src/ops/index.js';

const FIX = JSON.parse(readFileSync(join(process.cwd(), 'test/fixtures/softcap/gemma2.json'), 'utf8'));

function close(what: string, got: ArrayLike<number>, want: number[], tol: number): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let maxd = 0;
  for (let i = 0; i < want.length; i++) maxd = Math.max(maxd, Math.abs(got[i] - want[i]));
  assert.ok(maxd <= tol, `${what}: max |ours − transformers| ${maxd} > ${tol}`);
}

for (const [dtype, tol] of [['float64', 1e-12], ['float32', 2e-5]] as const) {
  test(`attention softcap equals transformers' Gemma 2 eager attention (${dtype})`, () => {
    const a = FIX.attention;
    const t = (x: number[], shape: number[]) => Tensor.from(x, shape, dtype).param();
    const q = t(a.q, [a.B, a.T, a.Hq, a.D]), k = t(a.k, [a.B, a.T, a.Hkv, a.D]), v = t(a.v, [a.B, a.T, a.Hkv, a.D]);
    const keyMask = Uint8Array.from(a.key_mask);
    const out = op.attention(q, k, v, { keyMask, softcap: a.softcap, scale: a.scale });
    // transformers' eager attention takes its softmax in float32 even for float64 inputs
    const atol = Math.max(tol, 1e-6);
    close('out', out.data, a.out, atol);
    backward(op.sum(op.mul(out, Tensor.from(a.R, out.shape, dtype))));
    close('dq', q.grad!.data, a.dq, atol);
    close('dk', k.grad!.data, a.dk, atol);
    close('dv', v.grad!.data, a.dv, atol);
    // without the cap the numbers differ: the fixture is not passed by an ignored option
    const plain = op.attention(q, k, v, { keyMask, scale: a.scale });
    assert.ok(plain.data.some((x, i) => Math.abs(x - a.out[i]) > 1e-2));
  });

  test(`tokenLogprobs softcap equals log_softmax of Gemma 2's capped logits (${dtype})`, () => {
    const f = FIX.final_logits;
    const h = Tensor.from(f.h, [f.N, f.C], dtype).param(), w = Tensor.from(f.w, [f.V, f.C], dtype).param();
    const labels = Int32Array.from(f.labels);
    const res = op.tokenLogprobs(h, w, labels, { chunk: 7, softcap: f.softcap, stats: true });
    close('logp', res.logp.data, f.logp, tol);
    backward(res.logp, Tensor.from(f.g, [f.N], dtype));
    close('dh', h.grad!.data, f.dh, tol);
    close('dw', w.grad!.data, f.dw, tol);
    // the mean-logit statistic is of the capped logits
    for (let n = 0; n < f.N; n++) {
      let s = 0;
      for (let j = 0; j < f.V; j++) s += f.logits[n * f.V + j];
      assert.ok(Math.abs(res.logitSum![n] - s) <= tol * f.V, `logitSum[${n}]`);
    }
    // generation's full logits
    close('lmLogits', op.softcap(op.linear(h, w), f.softcap).data, f.logits, tol);
    // frozen lm_head: the gradient for h alone
    const h2 = Tensor.from(f.h, [f.N, f.C], dtype).param(), w2 = Tensor.from(f.w, [f.V, f.C], dtype);
    backward(op.tokenLogprobs(h2, w2, labels, { softcap: f.softcap }).logp, Tensor.from(f.g, [f.N], dtype));
    close('dh (frozen w)', h2.grad!.data, f.dh, tol);
  });
}
