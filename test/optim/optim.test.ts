/** AdamW, LR schedules, warmup and gradient clipping vs torch / transformers (tools/fixtures/make_optim.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tensor } from '../../src/tensor/tensor.js';
import { DpoError } from '../../src/errors.js';
import { DPOConfig } from '../../src/dpo/config.js';
import { AdamW, LrSchedule, clipGradNorm, decays, learningRateAt, lrLambda, validateLrSchedule, warmupSteps, type LrSchedulerKwargs } from '../../src/optim/index.js';

const fx = JSON.parse(readFileSync('test/fixtures/optim/optim.json', 'utf8'));

/** |got − want| ≤ rtol·max(floor, |want|) elementwise. */
function close(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, what: string, floor = 1e-3): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    assert.ok(err <= rtol * Math.max(floor, Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]} (err ${err.toExponential(2)})`);
  }
}

interface AdamWFixture {
  names: string[]; shapes: number[][]; decays: boolean[]; p0: number[][]; grads: (number[] | null)[][]; lrs: number[];
  betas: [number, number]; eps: number; weight_decay: number;
  runs: Record<string, { trajectory: number[][][]; state: { step: number; exp_avg: number[]; exp_avg_sq: number[] }[] }>;
  decay_by_name: Record<string, boolean>;
}
const A = fx.adamw as AdamWFixture;

function makeOpt() {
  const params = A.p0.map((v, i) => [A.names[i], Tensor.from(v, A.shapes[i]).param()] as [string, Tensor]);
  const opt = new AdamW(params, { lr: A.lrs[0], beta1: A.betas[0], beta2: A.betas[1], eps: A.eps, weightDecay: A.weight_decay });
  return { params, opt };
}

function runSteps(opt: AdamW, params: [string, Tensor][], from: number, to: number, check?: (i: number) => void) {
  for (let i = from; i < to; i++) {
    params.forEach(([, p], j) => {
      const g = A.grads[i][j];
      p.grad = g ? Tensor.from(g, A.shapes[j]).keep() : null;
    });
    opt.update(A.lrs[i]);
    check?.(i);
  }
}

for (const variant of ['single_tensor', 'fused']) {
  test(`AdamW follows torch.optim.AdamW (${variant}) for 5 steps: two decay groups, changing lr, a missing grad`, () => {
    const run = A.runs[variant];
    const { params, opt } = makeOpt();
    assert.deepEqual(params.map((_, i) => opt.decays(i)), A.decays);
    runSteps(opt, params, 0, A.lrs.length, (i) => params.forEach(([name, p], j) => close(p.data, run.trajectory[i][j], 1e-6, `step ${i + 1} ${name}`)));
    const sd = opt.stateDict();
    run.state.forEach((s, j) => {
      assert.equal(sd.steps[j], s.step, `${A.names[j]} step count`);
      close(sd.expAvg[j], s.exp_avg, 1e-6, `${A.names[j]} exp_avg`);
      close(sd.expAvgSq[j], s.exp_avg_sq, 1e-6, `${A.names[j]} exp_avg_sq`, 1e-6);
    });
    assert.equal(opt.step, 5);
  });
}

test('AdamW stateDict / loadStateDict: resuming mid-run gives the uninterrupted trajectory', () => {
  const a = makeOpt();
  runSteps(a.opt, a.params, 0, 5);
  const b = makeOpt();
  runSteps(b.opt, b.params, 0, 2);
  const sd = b.opt.stateDict();
  const weights = b.params.map(([, p]) => p.data.slice());
  runSteps(b.opt, b.params, 2, 3); // the snapshot is a copy: later updates must not leak into it
  const c = makeOpt();
  c.params.forEach(([, p], i) => p.data.set(weights[i]));
  c.opt.loadStateDict(sd);
  assert.deepEqual(c.opt.steps, [2, 2, 2, 2]);
  runSteps(c.opt, c.params, 2, 5);
  a.params.forEach(([name, p], i) => assert.deepEqual(Array.from(c.params[i][1].data), Array.from(p.data), name));
});

test('AdamW loadStateDict rejects a state for other parameters with a one-line error', () => {
  const { opt } = makeOpt();
  const sd = opt.stateDict();
  const other = new AdamW([['w', Tensor.zeros([3]).param()]]);
  assert.throws(() => other.loadStateDict(sd), (e: unknown) => e instanceof DpoError && /4 parameters, the optimizer 1/.test(e.message));
  const renamed = { ...sd, names: ['x', ...sd.names.slice(1)] };
  assert.throws(() => opt.loadStateDict(renamed), /parameter 0 is model\.layers\.0\.mlp\.down_proj\.weight but the state is for x/);
  const resized = { ...sd, expAvg: [new Float32Array(2), ...sd.expAvg.slice(1)] };
  assert.throws(() => opt.loadStateDict(resized), /has 2 values, the parameter 12/);
});

test('AdamW over bare tensors decays all, as one torch param group; zeroGrad keeps buffers', () => {
  const p = Tensor.from([1, -2, 3]).param();
  const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.5 });
  assert.equal(opt.decays(0), true);
  p.grad = Tensor.from([0, 0, 0]).keep();
  opt.update();
  // zero gradient: only the decoupled decay moves the weights, p·(1 − lr·wd)
  close(p.data, [0.95, -1.9, 2.85], 1e-7, 'decayed');
  const g = p.grad;
  opt.zeroGrad();
  assert.equal(p.grad, g);
  assert.deepEqual(Array.from(p.grad!.data), [0, 0, 0]);
});

test('weight decay groups: transformers.Trainer.get_decay_parameter_names on Llama / Qwen3 / GPT-2 / LoRA names', () => {
  for (const [name, want] of Object.entries(A.decay_by_name)) assert.equal(decays(name), want, name);
});

interface Sched { name: string; warmup: number; kwargs: LrSchedulerKwargs; lrs: number[] }

test('every LR schedule matches transformers.get_scheduler, past the end of training', () => {
  const s = fx.schedules as { base_lr: number; total: number; lrs: Sched[] };
  for (const c of s.lrs) {
    const what = `${c.name} warmup=${c.warmup} ${JSON.stringify(c.kwargs)}`;
    const ours = c.lrs.map((_, i) => learningRateAt(s.base_lr, c.name, i + 1, c.warmup, s.total, c.kwargs));
    close(ours, c.lrs, 1e-12, what, 1e-12);
    const sched = new LrSchedule({ type: c.name, baseLr: s.base_lr, warmup: c.warmup, total: s.total, kwargs: c.kwargs });
    const stateful = c.lrs.map(() => {
      const lr = sched.lr();
      sched.step();
      return lr;
    });
    assert.deepEqual(stateful, ours, what);
  }
});

test('schedule misconfigurations are one-line errors', () => {
  assert.throws(() => lrLambda('cosine_with_min_lr', 0, 1, 10), /needs min_lr or min_lr_rate/);
  assert.throws(() => lrLambda('cosine_with_min_lr', 0, 1, 10, { min_lr: 0.1, min_lr_rate: 0.1 }, 1), /only one of min_lr or min_lr_rate/);
  assert.throws(() => lrLambda('warmup_stable_decay', 0, 1, 10), /needs num_decay_steps/);
  assert.throws(() => lrLambda('polynomial', 0, 1, 10, { lr_end: 2 }, 1), /lr_end \(2\) must be smaller/);
  assert.throws(() => new LrSchedule({ type: 'reduce_lr_on_plateau', baseLr: 1, warmup: 0, total: 1 }), (e: unknown) => e instanceof DpoError && /not supported/.test(e.message));
});

test('lr_scheduler_kwargs are checked when the config is made, not at step 1', () => {
  assert.throws(() => validateLrSchedule('cosine', { min_lr: 1 }, 1e-3, 'DPOConfig'), /DPOConfig: lr_scheduler_kwargs key "min_lr" does not apply to lr_scheduler_type cosine; it takes num_cycles/);
  assert.throws(() => validateLrSchedule('cosine', { num_cycles: '2' as unknown as number }, 1e-3, 'X'), /lr_scheduler_kwargs.num_cycles must be a number, got "2"/);
  assert.throws(() => new DPOConfig({ lr_scheduler_type: 'warmup_stable_decay' }), /DPOConfig: lr_scheduler_type warmup_stable_decay needs num_decay_steps/);
  assert.throws(() => new DPOConfig({ lr_scheduler_type: 'warmup_stable_decay', lr_scheduler_kwargs: { num_decay_steps: 2, decay_type: 'exp' } }), /decay_type "exp" is not one of linear, cosine, 1-sqrt/);
  assert.throws(() => new DPOConfig({ lr_scheduler_kwargs: '[1]' }), /lr_scheduler_kwargs must be a JSON object/);
  const c = new DPOConfig({ lr_scheduler_type: 'cosine_with_min_lr', lr_scheduler_kwargs: '{"min_lr": 1e-7}' });
  assert.deepEqual(c.lrSchedulerKwargs, { min_lr: 1e-7 });
  assert.deepEqual(new DPOConfig({}).lrSchedulerKwargs, {});
});

test('warmup steps: TrainingArguments.get_warmup_steps (count, or ratio rounded up)', () => {
  for (const c of fx.warmup_steps as { total: number; warmup_steps: number; steps: number }[]) {
    assert.equal(warmupSteps(c.total, c.warmup_steps), c.steps, `total ${c.total} warmup_steps ${c.warmup_steps}`);
  }
  assert.throws(() => warmupSteps(10, -1), /warmup_steps must be ≥ 0/);
});

test('clip_grad_norm_: total norm and scaled gradients (clipping, not clipping, max_norm = inf)', () => {
  const c = fx.clip as { grads: number[][]; shapes: number[][]; cases: { max_norm: number | null; norm: number; clipped: number[][] }[]; zero_norm: number };
  for (const k of c.cases) {
    const ps = c.grads.map((g, i) => {
      const t = Tensor.zeros(c.shapes[i]).param();
      t.grad = Tensor.from(g, c.shapes[i]).keep();
      return t;
    });
    const norm = clipGradNorm(ps, k.max_norm ?? Infinity);
    close([norm], [k.norm], 1e-6, `norm (max_norm ${k.max_norm})`);
    ps.forEach((p, i) => close(p.grad!.data, k.clipped[i], 1e-6, `max_norm ${k.max_norm}: grad ${i}`, 1e-6));
  }
  const z = Tensor.zeros([3]).param();
  z.grad = Tensor.zeros([3]).keep();
  assert.equal(clipGradNorm([z], 1), c.zero_norm);
  assert.deepEqual(Array.from(z.grad.data), [0, 0, 0]);
});
