/**
 * A LoRA-wrapped linear layer with PEFT semantics:
 *   y = base(x) + lora_B(lora_A(dropout(x))) · scaling,  scaling = alpha / r (rsLoRA: alpha / √r)
 * A is (r, in) with PEFT's default kaiming-uniform(a=√5) init, i.e. U(−1/√in, 1/√in); B is (out, r), zeros.
 * Property names follow PEFT's module tree (base_layer, lora_A, lora_B) so saved keys map directly.
 */
import { add, dropout, linear, scale } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import { Module } from '../nn/module.js';
import { Linear, type LinearLike } from '../nn/linear.js';
import { kernelsFor } from '../backend/index.js';

export interface LoraLayerConfig {
  r: number;
  alpha: number;
  dropout: number;
  useRslora: boolean;
}

export class LoraLinear extends Module implements LinearLike {
  base_layer: Linear;
  lora_A: Linear;
  lora_B: Linear;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly scaling: number;
  /** When set, the layer acts as its base alone (the reference model of a fresh LoRA). */
  disabled = false;
  constructor(base: Linear, readonly cfg: LoraLayerConfig, private readonly _rng: Rng, initRng: Rng) {
    super();
    this.base_layer = base;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.lora_A = new Linear(base.inFeatures, cfg.r);
    this.lora_B = new Linear(cfg.r, base.outFeatures);
    this.scaling = cfg.useRslora ? cfg.alpha / Math.sqrt(cfg.r) : cfg.alpha / cfg.r;
    const bound = 1 / Math.sqrt(base.inFeatures);
    const a = this.lora_A.weight.data;
    for (let i = 0; i < a.length; i++) a[i] = (initRng.nextFloat() * 2 - 1) * bound;
    // Only the adapter trains; the base weight stays frozen (its gradient is never computed).
    for (const p of base.parameters()) p.requiresGrad = false;
    this.lora_A.weight.requiresGrad = true;
    this.lora_B.weight.requiresGrad = true;
  }

  forward(x: Tensor): Tensor {
    const y = this.base_layer.forward(x);
    if (this.disabled) return y;
    const d = dropout(x, this.cfg.dropout, this._rng, this.training);
    return add(y, scale(linear(linear(d, this.lora_A.weight), this.lora_B.weight), this.scaling));
  }

  /** W ← W + scaling · B·A (in place), as PEFT's merge(). */
  mergedWeight(): Float32Array {
    const { inFeatures: I, outFeatures: O } = this;
    const r = this.cfg.r;
    const w = new Float32Array(this.base_layer.weight.data);
    kernelsFor('float32').matmul({
      a: this.lora_B.weight.data, b: this.lora_A.weight.data, c: w, batch: 1, m: O, n: I, k: r,
      transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: this.scaling, beta: 1,
    });
    return w;
  }
}
