/** AdamW, LR schedules and gradient clipping vs torch / transformers (tools/fixtures/make_optim.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tensor } from '../../src/tensor/tensor.js';
import { AdamW, clipGradNorm, learningRateAt } from '../../src/optim/index.js';

const fx = JSON.parse(readFileSync('test/fixtures/optim/optim.json', 'utf8'));

test('AdamW with weight decay follows torch.optim.AdamW for 5 steps', () => {
  const a = fx.adamw;
  const p = Tensor.from(a.p0, [a.p0.length]).param();
  const opt = new AdamW([['w', p]], { lr: a.lr, beta1: a.betas[0], beta2: a.betas[1], eps: a.eps, weightDecay: a.weight_decay });
  a.grads.forEach((g: number[], i: number) => {
    p.grad = Tensor.from(g, [g.length]).keep();
    opt.update(a.lr);
    a.trajectory[i].forEach((v: number, j: number) => assert.ok(Math.abs(p.data[j] - v) <= 1e-6 * Math.max(1, Math.abs(v)), `step ${i + 1} [${j}]: ${p.data[j]} vs ${v}`));
  });
});

test('linear, cosine, constant, constant_with_warmup match transformers.get_scheduler', () => {
  const s = fx.schedules;
  for (const [name, lrs] of Object.entries(s.lrs as Record<string, number[]>)) {
    lrs.forEach((lr, i) => assert.ok(Math.abs(learningRateAt(s.base_lr, name, i + 1, s.warmup, s.total) - lr) < 1e-12, `${name} step ${i + 1}`));
  }
});

test('clip_grad_norm_: total norm and scaled gradients', () => {
  const c = fx.clip;
  const ps = c.grads.map((g: number[]) => {
    const t = Tensor.zeros([g.length]).param();
    t.grad = Tensor.from(g, [g.length]).keep();
    return t;
  });
  const norm = clipGradNorm(ps, c.max_norm);
  assert.ok(Math.abs(norm - c.norm) < 1e-5 * c.norm);
  ps.forEach((p: Tensor, i: number) => c.clipped[i].forEach((v: number, j: number) => assert.ok(Math.abs(p.grad!.data[j] - v) < 1e-6, `${i}[${j}]`)));
});
