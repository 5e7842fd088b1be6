/**
 * A LoRA-wrapped linear layer with PEFT 0.21 semantics:
 *   y = base(x) + lora_B(lora_A(dropout(x))) · scaling,  scaling = alpha / r (rsLoRA: alpha / √r)
 * (one graph node that keeps only the dropout mask: lora-branch.ts)
 * DoRA (PEFT's DoraLinearLayer): with m the trained magnitude per output feature and
 *   n = ‖W + scaling·B·A‖ per row, computed from the current weights and detached (no gradient, as PEFT),
 *   y = base(x) + (m/n − 1) · x_d·Wᵀ + (m/n) · scaling · B(A(x_d)),  x_d = dropout(x)
 * Initialisation lives in init.ts (A kaiming-uniform, B zeros by default).
 * Property names follow PEFT's module tree (base_layer, lora_A, lora_B, lora_magnitude_vector)
 * so saved keys map directly.
 */
import { add, addScalar, dropout, linear, matmul, mul, reshape, scale, sub } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import { Module } from '../nn/module.js';
import { Linear, type LinearForwardOpts, type LinearLike } from '../nn/linear.js';
import { kernelsFor } from '../backend/index.js';
import { addLoraBranch } from './lora-branch.js';

export interface LoraLayerConfig {
  r: number;
  alpha: number;
  dropout: number;
  useRslora: boolean;
  useDora?: boolean;
}

export class LoraLinear extends Module implements LinearLike {
  base_layer: Linear;
  lora_A: Linear;
  lora_B: Linear;
  /** DoRA's magnitude (out), or null for plain LoRA. Saved as `<name>.lora_magnitude_vector`. */
  lora_magnitude_vector: Tensor | null = null;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly scaling: number;
  /** When set, the layer acts as its base alone (the reference model of a fresh LoRA). */
  disabled = false;
  constructor(base: Linear, readonly cfg: LoraLayerConfig, private readonly _rng: Rng) {
    super();
    this.base_layer = base;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.lora_A = new Linear(base.inFeatures, cfg.r);
    this.lora_B = new Linear(cfg.r, base.outFeatures);
    this.scaling = cfg.useRslora ? cfg.alpha / Math.sqrt(cfg.r) : cfg.alpha / cfg.r;
    // Only the adapter trains; the base weight stays frozen (its gradient is never computed).
    for (const p of base.parameters()) p.requiresGrad = false;
    this.lora_A.weight.requiresGrad = true;
    this.lora_B.weight.requiresGrad = true;
    if (cfg.useDora) {
      this.lora_magnitude_vector = Tensor.zeros([base.outFeatures]).keep();
      this.lora_magnitude_vector.requiresGrad = true;
    }
  }

  /** DoRA's magnitude from the current weights: ‖W + scaling·B·A‖ per row (PEFT's update_layer). */
  initMagnitude(): void {
    if (this.lora_magnitude_vector) this.lora_magnitude_vector.data.set(this.weightNorm());
  }

  /** ‖W + scaling·B·A‖ of each output row, in float64 from the float32 merged weight. */
  weightNorm(): Float32Array {
    const w = this.deltaMerged();
    const I = this.inFeatures;
    const out = new Float32Array(this.outFeatures);
    for (let o = 0; o < out.length; o++) {
      let s = 0;
      for (let i = o * I; i < (o + 1) * I; i++) s += w[i] * w[i];
      out[o] = Math.sqrt(s);
    }
    return out;
  }

  forward(x: Tensor, opts?: LinearForwardOpts): Tensor {
    const m = this.lora_magnitude_vector;
    // The branch's backward reads no base output; DoRA's scales it (bres), so it needs the values.
    const y = this.base_layer.forward(x, m && !this.disabled ? undefined : opts);
    if (this.disabled) return y;
    if (!m) return addLoraBranch(y, x, this.lora_A.weight, this.lora_B.weight, this.scaling, this.cfg.dropout, this._rng, this.training);
    const d = dropout(x, this.cfg.dropout, this._rng, this.training);
    const lora = scale(linear(linear(d, this.lora_A.weight), this.lora_B.weight), this.scaling);
    const mn = this.magnitudeScale(m); // (out) m / ‖W + s·B·A‖, the norm a constant
    // x_d·Wᵀ: the base output without its bias when no dropout ran, recomputed on x_d otherwise (as PEFT).
    const bres = d !== x ? linear(d, this.base_layer.weight) : this.base_layer.bias ? sub(y, this.base_layer.bias) : y;
    return add(add(y, mul(bres, addScalar(mn, -1))), mul(lora, mn));
  }

  private magnitudeScale(m: Tensor): Tensor {
    const n = this.weightNorm();
    const inv = Tensor.empty([n.length], m.dtype);
    for (let i = 0; i < n.length; i++) inv.data[i] = 1 / n[i];
    return mul(m, inv);
  }

  /**
   * The layer as one weight (out, in), differentiable in A, B (and m): W + s·B·A, DoRA m/n·(W + s·B·A).
   * For a LoRA lm_head, whose weight the fused log-prob op reads directly (no dropout there).
   */
  effectiveWeight(): Tensor {
    const W = this.base_layer.weight;
    if (this.disabled) return W;
    const w = add(W, scale(matmul(this.lora_B.weight, this.lora_A.weight), this.scaling));
    const m = this.lora_magnitude_vector;
    return m ? mul(w, reshape(this.magnitudeScale(m), [-1, 1])) : w;
  }

  /** W + scaling · B·A (float32, a new array). */
  private deltaMerged(): Float32Array {
    const { inFeatures: I, outFeatures: O } = this;
    const w = new Float32Array(this.base_layer.weight.data);
    kernelsFor('float32').matmul({
      a: this.lora_B.weight.data, b: this.lora_A.weight.data, c: w, batch: 1, m: O, n: I, k: this.cfg.r,
      transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: this.scaling, beta: 1,
    });
    return w;
  }

  /** The merged weight, as PEFT's merge(): W + s·B·A, for DoRA scaled per row by m / ‖W + s·B·A‖. */
  mergedWeight(): Float32Array {
    const w = this.deltaMerged();
    const m = this.lora_magnitude_vector;
    if (!m) return w;
    const n = this.weightNorm();
    const I = this.inFeatures;
    for (let o = 0; o < this.outFeatures; o++) {
      const f = m.data[o] / n[o];
      for (let i = o * I; i < (o + 1) * I; i++) w[i] *= f;
    }
    return w;
  }
}
