/**
 * AdamW with torch.optim.AdamW semantics over parameter Tensors, grouped as transformers' Trainer
 * does: weight decay on everything except biases and norm weights (named parameters).
 *
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
 *
 * A parameter whose grad is null is skipped entirely (no decay, no moment update, its step count
 * stays), as torch does. Moments are float32 (the dtype training parameters have).
 *
 * @example
 *   const opt = new AdamW(model.namedParameters(), { lr: 5e-7, weightDecay: 0.01 });
 *   backward(loss); clipGradNorm(opt.tensors(), 1.0); opt.update(lrNow); opt.zeroGrad();
 */
import { Tensor } from '../tensor/tensor.js';
import { kernelsFor } from '../backend/index.js';
import { DpoError } from '../errors.js';

export interface AdamWOptions {
  /** Default learning rate of update() (torch default 1e-3). */
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** torch.optim.AdamW's defaults (transformers passes its own: weight_decay 0, lr from the config). */
export const ADAMW_DEFAULTS: Readonly<AdamWOptions> = Object.freeze({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2 });

/**
 * transformers' Trainer.get_decay_parameter_names for a name: no decay for biases and norm weights
 * (its patterns bias, layernorm, rmsnorm, (^|.)norm($|.), _norm($|.) on the lower-cased name, plus
 * nn.LayerNorm modules, which are GPT-2's ln_1 / ln_2 / ln_f here).
 */
export function decays(name: string): boolean {
  return !/bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)|(?:^|\.)ln_(?:1|2|f)\./i.test(name);
}

/** Live state (references to the moment buffers), as checkpoint code reads and fills it. */
export interface AdamWState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

/** A detached copy of the optimizer state, for checkpoints (torch's optimizer.state_dict()). */
export interface AdamWStateDict {
  /** Updates taken (the largest per-parameter step). */
  step: number;
  names: string[];
  /** Per-parameter step counts (they differ only if some parameter missed a gradient). */
  steps: number[];
  expAvg: Float32Array[];
  expAvgSq: Float32Array[];
  options: AdamWOptions;
}

export interface AdamWConfig extends Partial<AdamWOptions> {
  /** Which named parameters get weight decay; default `decays` (transformers' rule). Unnamed tensors always do. */
  decayFilter?: (name: string) => boolean;
}

export class AdamW {
  readonly params: [string, Tensor][];
  readonly opts: AdamWOptions;
  readonly m: Float32Array[];
  readonly v: Float32Array[];
  /** Per-parameter step counts, for bias correction. */
  readonly steps: number[];
  private readonly decay: boolean[];

  /**
   * @param params named parameters ([name, tensor], e.g. model.namedParameters()) or bare tensors
   *   (named param.0, param.1, …, all decayed, as a single torch param group).
   */
  constructor(params: readonly (Tensor | readonly [string, Tensor])[], opts: AdamWConfig = {}) {
    this.params = params.map((p, i) => (p instanceof Tensor ? [p.name ?? `param.${i}`, p] : [p[0], p[1]]));
    const { decayFilter, ...o } = opts;
    this.opts = { ...ADAMW_DEFAULTS, ...o };
    this.decay = params.map((p) => (p instanceof Tensor ? true : (decayFilter ?? decays)(p[0])));
    this.m = this.params.map(([, p]) => new Float32Array(p.size));
    this.v = this.params.map(([, p]) => new Float32Array(p.size));
    this.steps = this.params.map(() => 0);
  }

  /** Updates taken so far. Setting it (checkpoint restore) sets every parameter's count. */
  get step(): number {
    return this.steps.reduce((a, b) => Math.max(a, b), 0);
  }
  set step(n: number) {
    this.steps.fill(n);
  }

  /** The parameter tensors, in order. */
  tensors(): Tensor[] {
    return this.params.map(([, p]) => p);
  }

  /** Whether parameter i is weight-decayed. */
  decays(i: number): boolean {
    return this.decay[i];
  }

  /** One AdamW step with learning rate `lr` (the schedule's value for this step). */
  update(lr: number = this.opts.lr): void {
    const o = this.opts;
    this.params.forEach(([, p], i) => {
      if (!p.grad) return;
      if (p.grad.size !== p.size) throw new DpoError(`AdamW: gradient of ${this.params[i][0]} has ${p.grad.size} values for ${p.size} parameters`);
      const step = ++this.steps[i];
      kernelsFor(p.dtype).adamw({
        param: p.data, grad: p.grad.data, m: this.m[i], v: this.v[i], n: p.size, lr,
        beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: this.decay[i] ? o.weightDecay : 0, step,
      });
    });
  }

  /** Zeroes every gradient in place (buffers are kept for the next accumulation). */
  zeroGrad(): void {
    for (const [, p] of this.params) {
      if (p.grad) p.grad.data.fill(0);
    }
  }

  state(): AdamWState {
    return { step: this.step, m: this.m, v: this.v };
  }

  load(s: AdamWState): void {
    this.loadMoments(s.m, s.v, this.params.map(() => s.step));
  }

  /** A copy of the state (moments, step counts, hyper-parameters) for a checkpoint. */
  stateDict(): AdamWStateDict {
    return {
      step: this.step, names: this.params.map(([n]) => n), steps: this.steps.slice(),
      expAvg: this.m.map((a) => a.slice()), expAvgSq: this.v.map((a) => a.slice()), options: { ...this.opts },
    };
  }

  /** Restores stateDict() output; the parameters must be the same (names and sizes) in the same order. */
  loadStateDict(sd: AdamWStateDict): void {
    const names = this.params.map(([n]) => n);
    if (sd.names.length !== names.length) throw new DpoError(`AdamW.loadStateDict: state has ${sd.names.length} parameters, the optimizer ${names.length}; resume with the same trainable parameters`);
    sd.names.forEach((n, i) => {
      if (n !== names[i]) throw new DpoError(`AdamW.loadStateDict: parameter ${i} is ${names[i]} but the state is for ${n}; resume with the same model and adapter settings`);
    });
    this.loadMoments(sd.expAvg, sd.expAvgSq, sd.steps);
    Object.assign(this.opts, sd.options);
  }

  private loadMoments(m: readonly ArrayLike<number>[], v: readonly ArrayLike<number>[], steps: readonly number[]): void {
    if (m.length !== this.m.length || v.length !== this.v.length || steps.length !== this.steps.length) {
      throw new DpoError(`AdamW: state for ${m.length} parameters, the optimizer has ${this.m.length}`);
    }
    this.params.forEach(([name], i) => {
      if (m[i].length !== this.m[i].length || v[i].length !== this.v[i].length) {
        throw new DpoError(`AdamW: state of ${name} has ${m[i].length} values, the parameter ${this.m[i].length}; resume with the same model`);
      }
      this.m[i].set(m[i]);
      this.v[i].set(v[i]);
      this.steps[i] = steps[i];
    });
  }
}
