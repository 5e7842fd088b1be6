/**
 * AdamW with torch.optim.AdamW semantics over parameter Tensors, with transformers' two groups:
 * weight decay on everything except biases and norm weights.
 */
import { Tensor } from '../tensor/tensor.js';
import { kernelsFor } from '../backend/index.js';

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** transformers' get_decay_parameter_names: no decay for bias and (layer/rms) norm weights. */
export function decays(name: string): boolean {
  return !/bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)|(?:^|\.)ln_(?:1|2|f)\./i.test(name);
}

export interface AdamWState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export class AdamW {
  step = 0;
  readonly m: Float32Array[];
  readonly v: Float32Array[];
  constructor(readonly params: [string, Tensor][], readonly opts: AdamWOptions) {
    this.m = params.map(([, p]) => new Float32Array(p.size));
    this.v = params.map(([, p]) => new Float32Array(p.size));
  }

  /** One update with learning rate `lr` (the schedule's value for this step). */
  update(lr: number): void {
    this.step++;
    const o = this.opts;
    this.params.forEach(([name, p], i) => {
      if (!p.grad) return;
      kernelsFor(p.dtype).adamw({
        param: p.data, grad: p.grad.data, m: this.m[i], v: this.v[i], n: p.size, lr,
        beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: decays(name) ? o.weightDecay : 0, step: this.step,
      });
    });
  }

  zeroGrad(): void {
    for (const [, p] of this.params) {
      if (p.grad) p.grad.data.fill(0);
    }
  }

  state(): AdamWState {
    return { step: this.step, m: this.m, v: this.v };
  }

  load(s: AdamWState): void {
    this.step = s.step;
    s.m.forEach((a, i) => this.m[i].set(a));
    s.v.forEach((a, i) => this.v[i].set(a));
  }
}
