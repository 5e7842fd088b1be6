/**
 * PEFT 0.21's init_lora_weights for a LoraLinear (LoraLayer.update_layer / reset_lora_parameters /
 * pissa_init / olora_init), then DoRA's magnitude from the initialised weights:
 *  - true: A kaiming-uniform(a=√5) = U(−1/√in, 1/√in), B = 0 (the adapter starts as a no-op);
 *  - false: A and B both as nn.Linear's default, U(−1/√fan_in, 1/√fan_in) (the adapter starts non-zero);
 *  - "gaussian": A ~ N(0, 1/r), B = 0;
 *  - "pissa": W = U·S·Vᵀ; A = √(S_r/s)·V_rᵀ, B = U_r·√(S_r/s), and the base keeps W − s·B·A;
 *  - "olora": W = Q·R; A = R[:r], B = Q[:, :r], and the base keeps W − s·B·A.
 * The random draws use our generator (torch's cannot be reproduced); load a PEFT adapter for a
 * bit-exact start. pissa and olora are deterministic and match PEFT to float rounding.
 */
import { DpoError } from '../errors.js';
import type { Rng } from '../tensor/rng.js';
import type { LoraInit } from './config.js';
import type { LoraLinear } from './lora-linear.js';
import { qr, svd } from './linalg.js';

function uniform(a: Float32Array | Float64Array, bound: number, rng: Rng): void {
  for (let i = 0; i < a.length; i++) a[i] = (rng.nextFloat() * 2 - 1) * bound;
}

function normal(a: Float32Array | Float64Array, std: number, rng: Rng): void {
  for (let i = 0; i < a.length; i += 2) {
    // Box–Muller: two independent N(0, 1) per pair of uniforms.
    const u = 1 - rng.nextFloat();
    const v = rng.nextFloat();
    const rad = Math.sqrt(-2 * Math.log(u));
    a[i] = std * rad * Math.cos(2 * Math.PI * v);
    if (i + 1 < a.length) a[i + 1] = std * rad * Math.sin(2 * Math.PI * v);
  }
}

/** Initialises A, B (and, for pissa / olora, the base weight; for DoRA, the magnitude) of `l` as PEFT. */
export function initLoraLayer(l: LoraLinear, init: LoraInit, rng: Rng, name: string): void {
  const A = l.lora_A.weight.data;
  const B = l.lora_B.weight.data;
  const { inFeatures: I, outFeatures: O } = l;
  const r = l.cfg.r;
  if (init === true || init === false) {
    uniform(A, 1 / Math.sqrt(I), rng);
    if (init) B.fill(0);
    else uniform(B, 1 / Math.sqrt(r), rng);
  } else if (init === 'gaussian') {
    normal(A, 1 / r, rng);
    B.fill(0);
  } else {
    const W = l.base_layer.weight.data;
    if (r > Math.min(I, O)) throw new DpoError(`LoRA init ${init} on ${name}: r=${r} exceeds min(in, out) = ${Math.min(I, O)} of the layer; lower r (or rank_pattern for it)`);
    if (init === 'pissa') {
      const { u, s, vt, k } = svd(W, O, I);
      for (let j = 0; j < r; j++) {
        const g = Math.sqrt(s[j] / l.scaling);
        for (let i = 0; i < I; i++) A[j * I + i] = g * vt[j * I + i];
        for (let o = 0; o < O; o++) B[o * r + j] = u[o * k + j] * g;
      }
    } else {
      const { q, r: R, k } = qr(W, O, I);
      for (let j = 0; j < r; j++) for (let i = 0; i < I; i++) A[j * I + i] = R[j * I + i];
      for (let o = 0; o < O; o++) for (let j = 0; j < r; j++) B[o * r + j] = q[o * k + j];
    }
    // The base keeps the residual W − s·B·A (in float64 from the float32 factors), so the layer's output is unchanged at the start.
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < I; i++) {
        let d = 0;
        for (let j = 0; j < r; j++) d += B[o * r + j] * A[j * I + i];
        W[o * I + i] -= l.scaling * d;
      }
    }
  }
  l.initMagnitude();
}
