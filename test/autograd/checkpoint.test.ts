/**
 * Gradient checkpointing: every parameter gradient equals the plain backward (full fine-tuning,
 * LoRA, dropout replayed with the same mask), on every backend; the peak of live pool bytes of a
 * forward + backward falls; fn may not close over an outer tensor that needs a gradient.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { backward } from '../../src/autograd/tape.js';
import { checkpoint } from '../../src/autograd/checkpoint.js';
import { poolStats, resetPeakBytes, scope } from '../../src/tensor/pool.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { Module } from '../../src/nn/module.js';
import { headWeight, type Linear } from '../../src/nn/linear.js';
import { isStorage } from '../../src/quant/storage.js';
import { Rng } from '../../src/tensor/rng.js';
import { loadCausalLM } from '../../src/models/load.js';
import { LlamaForCausalLM } from '../../src/models/llama.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { applyLora, loraLayers, resolveTargets } from '../../src/lora/apply.js';
import { add, mul, scale, sum, tokenLogprobs } from '../../src/ops/index.js';
import { getBackend, nativeAvailable, setBackend } from '../../src/backend/index.js';
import type { StorageSpec } from '../../src/quant/load-stored.js';

const MODELS = join(process.cwd(), 'test', 'fixtures', 'models');
const B = 3, T = 11;

function batch(vocab: number): { ids: Int32Array; attentionMask: Uint8Array; targets: Int32Array; wts: Tensor } {
  const rng = new Rng(7);
  const ids = new Int32Array(B * T).map(() => rng.nextInt(vocab));
  const attentionMask = new Uint8Array(B * T).fill(1);
  for (let t = 0; t < 3; t++) attentionMask[t] = 0; // row 0 left-padded
  const targets = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) for (let s = 0; s + 1 < T; s++) if (attentionMask[b * T + s + 1]) targets[b * T + s] = ids[b * T + s + 1];
  const wts = Tensor.from(Array.from({ length: B * T }, () => rng.nextFloat() - 0.5), [B * T]).keep();
  return { ids, attentionMask, targets, wts };
}

/** Σ w·logp(next token) through the trainer's fused log-prob op, plus a logits term. */
function loss(model: CausalLM, x: ReturnType<typeof batch>): Tensor {
  const h = model.hidden({ ids: x.ids, B, T, attentionMask: x.attentionMask });
  const { logp } = tokenLogprobs(h, model.lmHeadWeight(), x.targets, { chunk: 100 });
  const logits = model.logits({ ids: x.ids, B, T, attentionMask: x.attentionMask });
  return add(sum(mul(logp, x.wts)), scale(sum(mul(logits, logits)), 1e-3));
}

type Setup = { name: string; lora: boolean; dropout: number; dora?: boolean; storage?: StorageSpec };

function build(s: Setup): CausalLM {
  const { model } = loadCausalLM(join(MODELS, s.name), { storage: s.storage ?? null });
  if (s.name === 'gpt2') {
    model.arch.residDropout = s.dropout;
    model.arch.embdDropout = s.dropout;
  }
  if (s.lora) {
    applyLora(model, { r: 4, alpha: 8, dropout: s.dropout, useRslora: false, useDora: !!s.dora }, resolveTargets(model, 'all-linear'), 3);
    if (s.dora) for (const [, l] of loraLayers(model)) l.initMagnitude();
    // B starts at zero, which would leave A's gradient zero: give it values.
    const r = new Rng(11);
    for (const [, l] of loraLayers(model)) l.lora_B.weight.data.forEach((_, i, a) => (a[i] = (r.nextFloat() - 0.5) * 0.2));
  } else for (const p of model.parameters()) p.requiresGrad = true;
  return model.train(s.dropout > 0);
}

/** Two forward + backward passes (the second continues the dropout streams); grads by name. */
function grads(s: Setup, ckpt: boolean): { g: Map<string, Float32Array | null>; losses: number[] } {
  const model = build(s);
  model.gradientCheckpointing = ckpt;
  const x = batch(model.arch.vocabSize);
  const losses: number[] = [];
  for (let k = 0; k < 2; k++) scope(() => {
    const l = loss(model, x);
    losses.push(l.item());
    backward(l, undefined, { releaseActivations: true });
  });
  return { g: new Map(model.namedParameters().map(([n, p]) => [n, p.grad ? Float32Array.from(p.grad.data) : null])), losses };
}

const backends = nativeAvailable() ? (['ref', 'native'] as const) : (['ref'] as const);
const setups: Setup[] = [
  { name: 'llama', lora: false, dropout: 0 },
  { name: 'qwen3', lora: false, dropout: 0 },
  { name: 'gpt2', lora: false, dropout: 0.1 },
  { name: 'llama', lora: true, dropout: 0.1 },
  { name: 'gpt2', lora: true, dropout: 0 },
  // The recompute's skipped down projection (valuesUnread) against the cases where its values are read:
  // a post-MLP norm (Gemma 3, OLMo 2), a residual multiplier (Granite), DoRA, a fused gate_up (Phi-3), a 4-bit base.
  { name: 'gemma3', lora: true, dropout: 0 },
  { name: 'olmo2', lora: false, dropout: 0 },
  { name: 'granite', lora: true, dropout: 0 },
  { name: 'phi3', lora: true, dropout: 0.1 },
  { name: 'llama', lora: true, dropout: 0, dora: true },
  { name: 'qwen2', lora: true, dropout: 0, storage: { kind: 'nf4', nested: true } },
];
for (const backend of backends) for (const s of setups) {
  const label = `${s.name}${s.storage ? ` ${s.storage.kind}` : ''}${s.lora ? (s.dora ? ' + DoRA' : ' + LoRA') : ''}`;
  test(`checkpointed gradients equal plain ones: ${label}, dropout ${s.dropout} (${backend})`, () => {
    const prev = getBackend().name;
    setBackend(backend);
    try {
      const a = grads(s, false), b = grads(s, true);
      assert.deepEqual(b.losses, a.losses);
      let worst = { name: '', rel: 0 }, exact = true, trained = 0;
      for (const [n, ga] of a.g) {
        const gb = b.g.get(n)!;
        if (!ga || !gb) {
          assert.equal(gb, ga, `${n}: gradient present in only one run`);
          assert.ok(s.lora && !n.includes('lora_'), `${n} got no gradient`);
          continue;
        }
        trained++;
        let num = 0, den = 0;
        for (let i = 0; i < ga.length; i++) {
          num = Math.max(num, Math.abs(ga[i] - gb[i]));
          den = Math.max(den, Math.abs(ga[i]));
          if (ga[i] !== gb[i]) exact = false;
        }
        const rel = num / Math.max(den, 1e-12);
        if (rel > worst.rel) worst = { name: n, rel };
      }
      console.log(`# ${label} p=${s.dropout} (${backend}): ${trained} grads, ${exact ? 'bit-identical' : `worst ${worst.name} rel ${worst.rel.toExponential(2)}`}`);
      assert.ok(worst.rel <= 1e-6, `${worst.name}: checkpointed gradient off by ${worst.rel}`);
      assert.ok(trained > 0);
    } finally {
      setBackend(prev);
    }
  });
}

/** Runs fn on the reference backend (these checks do not depend on kernels, and it is the quick one here). */
function onRef<T>(fn: () => T): T {
  const prev = getBackend().name;
  setBackend('ref');
  try {
    return fn();
  } finally {
    setBackend(prev);
  }
}

test('dropout under checkpointing: same mask in the recompute, rng streams end where they would', () => onRef(() => {
  const s: Setup = { name: 'llama', lora: true, dropout: 0.5 };
  const states = [false, true].map((ckpt) => {
    const model = build(s);
    model.gradientCheckpointing = ckpt;
    const x = batch(model.arch.vocabSize);
    scope(() => backward(loss(model, x)));
    const rng = (loraLayers(model)[0][1] as unknown as { _rng: Rng })._rng;
    return rng.getState();
  });
  assert.deepEqual(states[1], states[0]);
  assert.notDeepEqual(states[0], new Rng(4).getState());
}));

test('checkpointing lowers the peak of live pool bytes of a 6-layer forward + backward', () => onRef(() => {
  const { model: small } = loadCausalLM(join(MODELS, 'llama'));
  const peaks = [false, true].map((ckpt) => {
    const model = new LlamaForCausalLM({ ...small.arch, numLayers: 6 });
    const r = new Rng(5);
    for (const p of model.parameters()) {
      p.data.forEach((_, i, a) => (a[i] = (r.nextFloat() - 0.5) * 0.2));
      p.requiresGrad = true;
    }
    model.gradientCheckpointing = ckpt;
    const Bm = 4, Tm = 48;
    const ids = new Int32Array(Bm * Tm).map(() => r.nextInt(model.arch.vocabSize));
    const targets = ids.map((_, i) => ((i + 1) % Tm ? ids[i + 1] : -1));
    // Warm the rope cache and the gradient buffers so both runs start from the same live set.
    const step = () => scope(() => {
      const h = model.hidden({ ids, B: Bm, T: Tm });
      backward(sum(tokenLogprobs(h, model.lmHeadWeight(), targets, { chunk: 64 }).logp), undefined, { releaseActivations: true });
    });
    step();
    const before = poolStats().liveBytes;
    resetPeakBytes();
    step();
    return poolStats().peakBytes - before;
  });
  const [plain, ckpt] = peaks;
  console.log(`# peak live bytes: plain ${plain}, checkpointed ${ckpt} (${((1 - ckpt / plain) * 100).toFixed(0)}% lower)`);
  assert.ok(ckpt < 0.6 * plain, `checkpointed peak ${ckpt} is not well below plain ${plain}`);
}));

test('checkpoint: plain call under noGrad; a captured outer tensor that needs grad is refused', () => {
  const w = Tensor.from([1, 2, 3], [3]).param();
  const x = Tensor.from([0.5, -1, 2], [3]).param();
  const y = checkpoint((t) => mul(t, w), x, [w]);
  backward(sum(mul(y, y)));
  // d/dx Σ(x·w)² = 2·x·w², d/dw = 2·x²·w
  assert.deepEqual(x.grad!.toArray(), [1, -8, 36]);
  assert.deepEqual(w.grad!.toArray(), [0.5, 4, 24]);
  const outer = mul(x, w); // a recorded tensor from outside fn
  const z = checkpoint((t) => mul(t, outer), x, [w]);
  assert.throws(() => backward(sum(z)), /checkpoint: fn uses a tensor that requires grad from outside it/);
});

/** Forward GEMMs (x·Wᵀ) during fn, by the weight they read: a float32 buffer or a stored weight. */
function forwardGemms(fn: () => void): Map<unknown, number> {
  const k = getBackend().kernels as unknown as Record<string, (p: { b?: unknown; transB?: boolean; w?: unknown; xWt?: boolean }) => void>;
  const saved = { matmul: k.matmul, storedMatmul: k.storedMatmul };
  const n = new Map<unknown, number>();
  const bump = (w: unknown) => n.set(w, (n.get(w) ?? 0) + 1);
  k.matmul = (p) => (p.transB && bump(p.b), saved.matmul(p));
  k.storedMatmul = (p) => (p.xWt && bump(p.w), saved.storedMatmul(p));
  try {
    fn();
  } finally {
    Object.assign(k, saved);
  }
  return n;
}

/** The weight a linear layer's forward GEMM reads: a LoRA layer's base, a stored one's storage. */
function gemmWeight(m: Module): unknown {
  const w = headWeight(((m as { base_layer?: Module }).base_layer ?? m) as Linear);
  return isStorage(w) ? w : w.data;
}

test('the recompute skips the down projection\'s forward GEMM (its output goes unread), and only there', () => onRef(() => {
  const cases = [['llama', undefined, true], ['qwen2', { kind: 'nf4' } as StorageSpec, true], ['gpt2', undefined, true], ['gemma3', undefined, false], ['granite', undefined, false]] as const;
  for (const [name, storage, skips] of cases) {
    for (const lora of [false, true]) {
      const counts = [false, true].map((ckpt) => {
        const model = build({ name, lora: lora || !!storage, dropout: 0, storage });
        model.gradientCheckpointing = ckpt;
        const mods = new Map(model.namedModules());
        const of = (suffix: string) => [...mods].filter(([n]) => n.endsWith(suffix)).map(([, m]) => gemmWeight(m));
        const down = of(name === 'gpt2' ? 'mlp.c_proj' : 'mlp.down_proj'), o = of(name === 'gpt2' ? 'attn.c_proj' : 'self_attn.o_proj');
        assert.equal(down.length, model.arch.numLayers);
        const x = batch(model.arch.vocabSize);
        const n = forwardGemms(() => scope(() => backward(loss(model, x), undefined, { releaseActivations: true })));
        const total = (ws: unknown[]) => ws.reduce<number>((s, w) => s + (n.get(w) ?? 0), 0);
        return { down: total(down), o: total(o) };
      });
      const [plain, ckpt] = counts;
      // The attention output projection is recomputed (its output is read): the control.
      assert.ok(ckpt.o > plain.o, `${name}: no recompute ran`);
      assert.equal(ckpt.down - plain.down, skips ? 0 : ckpt.o - plain.o, `${name}${lora ? ' + LoRA' : ''}: down projection forwards ${plain.down} plain, ${ckpt.down} checkpointed`);
    }
  }
}));
