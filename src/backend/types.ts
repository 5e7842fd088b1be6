/**
 * The kernel interface. Every kernel operates on caller-owned, contiguous, row-major typed arrays
 * and writes into caller-provided outputs; kernels never allocate tensors and never hold model logic.
 * The `ref` backend implements this in plain TypeScript for Float32Array and Float64Array (float64
 * serves finite-difference gradient checks); the `native` backend implements it in C++ (oneDNN for
 * matmul, OpenMP for the rest) for Float32Array only. `KernelTable` is a mapped type so a backend
 * that misses a kernel fails `tsc`.
 *
 * Conventions: shape letters B (batch), T (time), H (heads), D (head dim), C (channels),
 * V (vocab), N (rows = B·T). "accumulate" outputs are added to (+=), others overwritten.
 * NaN inputs must propagate to the outputs they touch (as PyTorch does); softmax-like kernels
 * subtract the row max so large magnitudes (±1e4·) do not overflow.
 */

import type { WeightStorage } from '../quant/storage.js';

export type F = Float32Array | Float64Array;
export type Idx = Int32Array;
/** 1 = position is a real token, 0 = padding. */
export type Mask = Uint8Array;

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';
export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'square'
  | 'sigmoid'
  | 'logsigmoid'
  | 'tanh'
  | 'relu'
  | 'silu'
  | 'gelu_tanh'
  | 'scale'
  | 'abs';

/** The activation of a gated MLP (the swiglu kernels). */
export type GatedAct = 'silu' | 'gelu_tanh';

/** What float32 GEMMs multiply in: float32, or bf16-rounded operands with float32 accumulation (`--bf16`). */
export type MatmulPrecision = 'float32' | 'bfloat16';

export interface MatmulArgs {
  /** A: batch × (M×K), or (K×M) when transA. */
  a: F;
  /** B: batch × (K×N), or (N×K) when transB; or its bf16 bits (a frozen weight stored in bf16: a bf16 GEMM). */
  b: F | Uint16Array;
  /** C: batch × (M×N). */
  c: F;
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Element offsets between consecutive batch matrices; 0 broadcasts one matrix to every batch. */
  strideA: number;
  strideB: number;
  strideC: number;
  /** C = alpha·op(A)·op(B) + beta·C (beta 0 ignores C's old contents, even NaN). */
  alpha: number;
  beta: number;
}

/**
 * A GEMM with a frozen weight W (rows × cols) in any storage (quant/storage.ts), dequantized a tile
 * of rows at a time (no float32 copy of W is made): `xWt` C (M × rows) = A (M × cols) · Wᵀ + beta·C;
 * otherwise C (M × cols) = A (M × rows) · W + beta·C. Float32 storage, and bf16 storage under
 * bf16 precision, multiply in place. bf16 storage is a bf16 GEMM (A rounded too), as `matmul`
 * with bf16 bits; the other kinds multiply their float32 values as a float32 weight would be.
 */
export interface StoredMatmulArgs {
  a: F;
  w: WeightStorage;
  c: F;
  m: number;
  xWt: boolean;
  beta: number;
  /**
   * bf16 storage multiplied as the float32 values it widens to, like the other kinds (the compute
   * precision alone decides rounding): a frozen lm_head kept in bf16 gives the float32 head's logits.
   */
  widen?: boolean;
}

export interface AttentionArgs {
  /** q: (B, T, Hq, D); k, v: (B, T, Hkv, D); out: (B, T, Hq, D). Hq is a multiple of Hkv (GQA). */
  q: F;
  k: F;
  v: F;
  out: F;
  /** Row log-sum-exp of the scaled, masked scores, (B, Hq, T); saved for backward. */
  lse: F;
  B: number;
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  /** Usually 1/sqrt(D). */
  scale: number;
  causal: boolean;
  /** (B, T) key validity; null = all valid. A query attends key j only if keyMask[b, j] = 1. */
  keyMask: Mask | null;
  /**
   * (B, T) sequence ids for padding-free packing; null = one sequence per row. A query attends key j
   * only if segIds are equal. Combined with causal and keyMask.
   */
  segIds: Idx | null;
  /**
   * (B, T) with segIds: per token, the id of an earlier segment whose keys it also attends (the
   * prompt a chosen and a rejected completion share when packed once), −1 for none; null = none.
   */
  segParents?: Idx | null;
  /** Sliding window (Mistral): a query at t attends keys in (t - window, t]; 0 = unlimited. */
  window: number;
  /**
   * Attention-logit soft-capping (Gemma 2): scores become cap·tanh(scores / cap) after scaling and
   * before masking and softmax; 0 or absent = none.
   */
  softcap?: number;
}

export interface AttentionBackwardArgs extends AttentionArgs {
  /** Gradient of out, (B, T, Hq, D). */
  gOut: F;
  /** Outputs, overwritten: gq (B, T, Hq, D), gk, gv (B, T, Hkv, D). */
  gq: F;
  gk: F;
  gv: F;
}

export interface TokenLogprobArgs {
  /** hidden (N, C) */
  h: F;
  /**
   * lm_head weight (V, C): values, or a frozen stored matrix (the bf16 embedding of a LoRA run)
   * whose rows are widened one vocabulary chunk at a time, multiplied as float32 values would be.
   */
  w: F | WeightStorage;
  /** (N) target ids; a negative id means "no target": logp = 0, and no gradient flows from that row. */
  targets: Idx;
  N: number;
  C: number;
  V: number;
  /** Vocab chunk size: at most N·chunk logits exist at any time. */
  chunk: number;
  /** out (N): log_softmax(h·wᵀ)[n, targets[n]] */
  logp: F;
  /** out (N): logsumexp over the vocab of each row; saved for backward. */
  lse: F;
  /**
   * Optional statistics (null = skip): entropy (N) = −Σ p·log p; logitSum (N) = Σ_v logits[n, v];
   * argmax (N) = index of the largest logit (first one on ties), computed for every row.
   */
  entropy: F | null;
  logitSum: F | null;
  argmax: Idx | null;
  /** Optional (N): logsumexp over the vocab of 2·logits (WPO's weight denominator); null = skip. */
  lse2: F | null;
  /**
   * Optional out (N, C): softmax(h·wᵀ)·w, each row's expected output embedding. With a frozen w the
   * gradient for h is then g·(w[target] − expected), with no second pass over the vocabulary.
   * Not with softcap (the kernels refuse both).
   */
  expected?: F | null;
  /**
   * Final-logit soft-capping (Gemma 2): logits → cap·tanh(logits / cap) before everything else
   * (log-softmax, entropy, logit sum, argmax); 0 or absent = none.
   */
  softcap?: number;
}

export interface TokenLogprobBackwardArgs {
  h: F;
  /** As the forward's; a stored w is frozen (gw must be null). */
  w: F | WeightStorage;
  targets: Idx;
  N: number;
  C: number;
  V: number;
  chunk: number;
  lse: F;
  /** Gradient of logp, (N). */
  gLogp: F;
  /** d/dlogits = gLogp[n]·(onehot − softmax); gh (N, C) overwritten; gw (V, C) overwritten, or added to with accumulateGw. Null skips it. */
  gh: F | null;
  gw: F | null;
  accumulateGw?: boolean;
  /** The forward's softcap: dlogits is multiplied by 1 − tanh²(logits / cap). */
  softcap?: number;
}

export interface AdamWArgs {
  param: F;
  grad: F;
  m: F;
  v: F;
  n: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count after increment (for bias correction). */
  step: number;
}

/** The kernels every backend provides. */
export interface Kernels {
  /** Batched strided GEMM; see MatmulArgs. */
  matmul(p: MatmulArgs): void;
  /** GEMM with a stored (bf16, f16, 4-bit, int8) frozen weight, dequantized per tile; see StoredMatmulArgs. */
  storedMatmul(p: StoredMatmulArgs): void;

  /**
   * out = a ∘ b with broadcasting. `shape` is out's shape (rank ≤ 6); aStrides/bStrides give each
   * operand's element stride per out-dimension (0 on broadcast dims).
   */
  binary(op: BinaryOp, a: F, b: F, out: F, shape: readonly number[], aStrides: readonly number[], bStrides: readonly number[]): void;

  /** out[i] = f(x[i]) for n elements; `alpha` is the factor of 'scale'. out may alias x. */
  unary(op: UnaryOp, x: F, out: F, n: number, alpha: number): void;

  /**
   * gx[i] = gy[i]·f'(x[i]); y = f(x) is the saved forward output (kernels may use either).
   * gx is overwritten and may alias gy.
   */
  unaryBackward(op: UnaryOp, x: F, y: F, gy: F, gx: F, n: number, alpha: number): void;

  /**
   * Gated activation: out[i] = act(g[i])·u[i]; act = silu (SwiGLU, the default: g·σ(g)·u) or
   * gelu_tanh (GeGLU, Gemma's gelu_pytorch_tanh: 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))).
   */
  swiglu(g: F, u: F, out: F, n: number, act?: GatedAct): void;

  /**
   * Its backward from the inputs alone: gg = gy·u·act'(g), gu = gy·act(g) (SwiGLU: act' =
   * σ(g)·(1 + g·(1 − σ(g)))); a null gradient buffer is skipped.
   */
  swigluBackward(g: F, u: F, gy: F, gg: F | null, gu: F | null, n: number, act?: GatedAct): void;

  /** y[i] += alpha·x[i] */
  axpy(y: F, x: F, n: number, alpha: number): void;

  /** out (outer, inner) = Σ_d x (outer, dim, inner) */
  sumAxis(x: F, out: F, outer: number, dim: number, inner: number): void;

  /** Σ x[i]² in float64 accumulation (gradient norms). */
  sumSquares(x: F, n: number): number;

  /** out (rows, cols) = softmax or log_softmax over the last axis of x. */
  softmax(x: F, out: F, rows: number, cols: number, log: boolean): void;
  /**
   * gx from y = softmax(x) (gx = y·(gy − Σ gy·y)) or y = log_softmax(x) (gx = gy − exp(y)·Σ gy).
   * gx overwritten.
   */
  softmaxBackward(y: F, gy: F, gx: F, rows: number, cols: number, log: boolean): void;

  /** out (N, C) = weight[ids[n]] for weight (V, C); ids must lie in [0, V) (checked by the op). */
  embedding(weight: F, ids: Idx, out: F, n: number, c: number): void;
  /** gWeight[ids[n]] += gOut[n] (scatter-add; repeated ids accumulate). */
  embeddingBackward(gOut: F, ids: Idx, gWeight: F, n: number, c: number): void;
  /** out (N, cols) = the float32 values of row ids[n] of a stored matrix (a frozen bf16 embedding); ids in [0, rows). */
  storedEmbedding(w: WeightStorage, ids: Idx, out: F, n: number): void;

  /** y = x / sqrt(mean(x²) + eps) · w per row of x (rows, dim); rstd (rows) saved. */
  rmsnorm(x: F, w: F, out: F, rstd: F, rows: number, dim: number, eps: number): void;
  /** gx overwritten; gw accumulated (+=) when not null. */
  rmsnormBackward(x: F, w: F, rstd: F, gy: F, gx: F, gw: F | null, rows: number, dim: number): void;

  /** y = (x − mean) / sqrt(var + eps) · w + b (biased var) per row; mean, rstd (rows) saved. */
  layernorm(x: F, w: F, b: F, out: F, mean: F, rstd: F, rows: number, dim: number, eps: number): void;
  /** gx overwritten; gw, gb accumulated (+=) when not null. */
  layernormBackward(x: F, w: F, mean: F, rstd: F, gy: F, gx: F, gw: F | null, gb: F | null, rows: number, dim: number): void;

  /**
   * Rotary embedding, HF rotate_half convention, on x (rows, H, D) with rows = B·T:
   * out = x·cos[pos] + rotate_half(x)·sin[pos], rotate_half(x) = concat(−x[D/2:], x[:D/2]).
   * cos/sin: (maxPos, R) tables; pos (rows). `inverse` uses −sin (the transpose: the backward).
   * Partial rotary (Phi-3): only the first R = rotaryDim (even, ≤ D; default D) dims of each head
   * are rotated, in pairs (i, i + R/2); dims R.. are copied. out may alias x.
   */
  rope(x: F, out: F, cos: F, sin: F, pos: Idx, rows: number, heads: number, dim: number, inverse: boolean, rotaryDim?: number): void;

  /** Fused scaled-dot-product attention; see AttentionArgs. Never materialises (B, H, T, T) beyond one row block. */
  attention(p: AttentionArgs): void;
  attentionBackward(p: AttentionBackwardArgs): void;

  /** Fused lm_head + log_softmax + gather in vocab chunks; see TokenLogprobArgs. */
  tokenLogprobs(p: TokenLogprobArgs): void;
  tokenLogprobsBackward(p: TokenLogprobBackwardArgs): void;

  /** out = permute(x, perm) for x of shape `shape` (rank ≤ 6). */
  permute(x: F, out: F, shape: readonly number[], perm: readonly number[]): void;

  /** out[i] = x[i]·mask[i]·scale (dropout with a precomputed keep-mask). */
  maskScale(x: F, mask: Uint8Array, out: F, n: number, scale: number): void;

  /** One AdamW step in place, PyTorch semantics (decoupled weight decay, bias correction). */
  adamw(p: AdamWArgs): void;
}

/** A backend: its name, its kernels, and the dtypes it runs. */
export interface Backend {
  readonly name: 'ref' | 'native';
  readonly kernels: Kernels;
  readonly dtypes: readonly ('float32' | 'float64')[];
  /** Threads used by the backend's pool (1 for ref). */
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** Switches every float32 GEMM (linear layers and the fused log-prob) to bf16 operands or back. */
  setMatmulPrecision(p: MatmulPrecision): void;
  /** What runs the math on this CPU (decided once at start-up). */
  describe(): BackendInfo;
  /** The whole file mapped read-only as an ArrayBuffer (unmapped on GC); native only (io/mmap.ts). */
  mapFile?(path: string, offset?: number, length?: number): ArrayBuffer;
  /** Zero-filled memory on huge pages where the kernel allows (unmapped on GC); native only (tensor/large-buffer.ts). */
  allocLarge?(bytes: number): ArrayBuffer;
  /** Returns an allocLarge block's pages to the kernel now, before the GC unmaps it; native only (tensor/large-buffer.ts). */
  discardLarge?(buffer: ArrayBuffer): void;
  /** Load-time weight conversions, bit-identical to quant/storage.ts (native only; quant/load-kernels.ts). */
  loadKernels?: LoadKernels;
}

/** Native twins of quant/storage.ts's quantizers and io/half.ts's bf16 widening (reading the file), outputs caller-owned. */
export interface LoadKernels {
  /** packed ⌈n/2⌉ bytes, absmax ⌈n/64⌉ floats (quantize4bit); `w` float32 values or bf16 bits (a Uint16Array, widened exactly). */
  quantize4bit(w: Float32Array | Uint16Array, kind: 'nf4' | 'fp4', packed: Uint8Array, absmax: Float32Array): void;
  /** q one per absmax, absmax2 ⌈n/256⌉; returns the offset (quantizeNested). */
  quantizeNested(absmax: Float32Array, q: Uint8Array, absmax2: Float32Array): number;
  /** cb rows·cols, scb rows (quantizeInt8Rows); `w` float32 values or bf16 bits. */
  quantizeInt8Rows(w: Float32Array | Uint16Array, rows: number, cols: number, cb: Int8Array, scb: Float32Array): void;
  /** out[i] = the bf16 value at byte offset + 2i of the open file fd, widened exactly (decodeBf16); every thread reads its own slice. */
  readBf16AsF32(fd: number, offset: number, out: Float32Array): void;
  /** out ← the bytes at `offset` of the open file fd; every thread reads its own slice. */
  readParallel(fd: number, offset: number, out: Uint8Array): void;
}

export interface BackendInfo {
  name: 'ref' | 'native';
  threads: number;
  /** The vector ISA of the project's own kernels (after DPO_MAX_CPU_ISA): avx512 | avx2 | generic | ts. */
  kernelIsa: string;
  /** oneDNN's effective ISA (after ONEDNN_MAX_CPU_ISA), or 'none' on the reference backend. */
  onednnIsa: string;
  /** Whether bf16 GEMMs run on bf16 units; otherwise bf16-rounded operands go through float32 GEMMs. */
  bf16Units: boolean;
}

/** Mapped type: a record with exactly one implementation per kernel name. */
export type KernelTable = { [K in keyof Kernels]: Kernels[K] };
