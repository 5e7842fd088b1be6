/**
 * What a training run will need, estimated from the architecture before anything is built, and a
 * one-line stop with what to try when it cannot fit in the memory this process may use. The
 * figures aim at the measured peak RSS (within 15% on the calibration runs below: weights by
 * storage, trainable state, the runtime, working buffers and activations of the longest batch, with
 * or without gradient checkpointing); a refusal compares the whole estimate with the memory available.
 *
 * @example
 * assertRunFits(estimateRunMemory({ arch, lora: null, bf16: false, gradientCheckpointing: false, refCopy: true, rows: 16, seqLen: 1024 }));
 */
import { existsSync, readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { DpoError } from '../errors.js';
import { targetMatches } from '../lora/apply.js';
import type { ArchConfig } from './arch.js';
import { architectureFor, defaultLoraTargets } from './registry.js';
import type { ExpectedWeight } from './weight-shapes.js';
import { bytesPerWeight } from '../quant/storage.js';
import { DEFAULT_VOCAB_CHUNK } from '../ops/logprob.js';
import { embeddingStorageKind, type StorageSpec } from '../quant/load-stored.js';

export interface RunShape {
  arch: ArchConfig;
  /** LoRA (new or continued adapter): rank, target_modules and the dropout that stays on (absent: counted as on); null = full fine-tuning. */
  lora: { r: number; targetModules: string[] | string | null; dropout?: number } | null;
  bf16: boolean;
  gradientCheckpointing: boolean;
  /** A frozen copy of the model is the reference (full fine-tuning, reference not precomputed). */
  refCopy: boolean;
  /** Rows of the largest micro-batch (2 × per_device_train_batch_size: chosen and rejected). */
  rows: number;
  /** Tokens of its longest row (after truncation). */
  seqLen: number;
  /** Tokens of the largest micro-batch as the trainer packs it (dpo/memory-check.ts largestBatch); absent: rows × seqLen. */
  tokens?: number;
  /** How the frozen base linears of a LoRA run are stored (quant/load-stored.ts); absent = float32. */
  storage?: StorageSpec | null;
}

export interface MemoryEstimate {
  bytes: number;
  /** [what, bytes], for the message. */
  parts: [string, number][];
  shape: RunShape;
  /** The activations with gradient checkpointing the other way round (for the printed estimate). */
  activationsOther: number;
}

const numel = (e: ExpectedWeight) => e.shape.reduce((a, d) => a * d.size, 1);

/*
 * Calibration (peak RSS = getrusage's maxrss, as `dpo train` reports it; bench/quant-scaling.ts
 * --steps 2 --grad_accum 1, its data: prompts ~200 and completions ~300 tokens, the largest pair
 * 837 packed tokens (rows of up to 527), max_length 1024, batch 1, LoRA r=16 all-linear, bf16
 * compute, dropout off (TRL's disable_dropout); the random bf16 Qwen2.5-shaped checkpoints; GB to
 * 0.1, measured / estimated; test/models/memory-estimate.test.ts holds every row):
 *
 *   storage  0.5B gc on  0.5B off   1.5B on    1.5B off   3B on      3B off
 *   float32  2.6 / 2.5   3.9 / 4.0  7.2 / 7.2  10.2/10.2
 *   bf16     1.6 / 1.6   3.0 / 3.0  4.1 / 4.1  7.1 / 7.2  7.6 / 7.6  12.5/12.7
 *   int8     1.2 / 1.2   2.6 / 2.6  2.8 / 2.8  5.8 / 5.9
 *   nf4      1.1 / 1.0   2.4 / 2.4  2.2 / 2.2  5.2 / 5.2  3.5 / 3.5  8.3 / 8.6
 *   0.5B nf4, max_length 512 / 1024 / 2048 (817 / 1598 / 3170 tokens): on 1.1/1.0, 1.4/1.3, 2.0/2.0; off 2.4/2.4, 4.1/4.0, 7.4/7.3
 *   workload A (bench/workload.ts, full fine-tuning, float32, no checkpointing): 5.1 measured, 5.1 estimated
 *
 * A LoRA run's layers keep more than the tensors named below (LORA_ACT_FACTOR, fitted to the 0.5B
 * runs without checkpointing) and a checkpointed layer's backward holds its recomputed graph and
 * its gradients (GC_LAYER_FACTOR, fitted to the sweep with checkpointing); RUNTIME_BYTES from a
 * bare process with the native core and tokenizer loaded (~60 MB) and what loading leaves behind.
 */
/** Node/V8, the native core (oneDNN, OpenMP), the tokenizer and the tokenized data once loaded. */
export const RUNTIME_BYTES = 80e6;
/**
 * What a decoder layer of a LoRA run keeps for backward per token, in units of the tensors named
 * in perTokenLayer (the residual sums, the rotated q/k, attention and o_proj outputs come on top);
 * fitted to the 0.5B runs without checkpointing, it holds at 1.5B; full fine-tuning (workload A) fits 1.
 */
export const LORA_ACT_FACTOR = 1.6;
/** Under gradient checkpointing, the recomputed layer's graph and the gradients its backward makes, in units of one layer's activations. */
export const GC_LAYER_FACTOR = 3.5;
/** The stored GEMM's dequantization tile (native/src/stored-gemm.cc: 4M float32 values). */
const TILE_BYTES = 4 * (1 << 22);

/** Bytes the run needs: weights, gradients and AdamW state of what trains, reference copy, activations. */
export function estimateRunMemory(s: RunShape): MemoryEstimate {
  const a = s.arch;
  const table = architectureFor(a).weightShapes(a);
  // Layers are alike: one layer's table times the count (never a list of numLayers entries).
  const layer = table.layer(0);
  const globalParams = table.global.reduce((n, e) => n + numel(e), 0);
  const layerParams = layer.reduce((n, e) => n + numel(e), 0) * a.numLayers;
  const params = globalParams + layerParams;
  let trainable = params;
  // Per token and layer, the LoRA branches keep their dropout masks, a byte per input element (lora/lora-branch.ts), while dropout is on.
  let maskBytes = 0;
  if (s.lora) {
    const targets = s.lora.targetModules ?? [...(defaultLoraTargets(a.modelType) ?? [])];
    const all = typeof targets === 'string' && targets.toLowerCase() === 'all-linear';
    let perLayer = 0;
    for (const e of layer) {
      if (e.shape.length !== 2 || !e.name.endsWith('.weight')) continue;
      const module = e.name.slice(0, -'.weight'.length);
      if (all || safeMatches(targets, module)) {
        perLayer += s.lora.r * (e.shape[0].size + e.shape[1].size);
        if ((s.lora.dropout ?? 1) > 0) maskBytes += e.shape[1].size;
      }
    }
    trainable = perLayer * a.numLayers;
  }
  // Per token and layer, what backward keeps (float32): norm inputs/outputs, q/k/v, attention out, the MLP's gate and up (LORA_ACT_FACTOR of them under LoRA), and the masks.
  const C = a.hiddenSize;
  const qkv = (a.numHeads + 2 * a.numKvHeads) * a.headDim;
  const perTokenLayer = 4 * (s.lora ? LORA_ACT_FACTOR : 1) * (a.family === 'gpt2' ? 7 * C + 2 * a.intermediateSize : 3 * C + qkv + 2 * a.intermediateSize) + maskBytes;
  const tokens = s.tokens ?? s.rows * s.seqLen;
  // Gradient checkpointing keeps each layer's input; backward then holds one recomputed layer and its gradients (GC_LAYER_FACTOR of its graph).
  const withGc = tokens * (4 * C * a.numLayers + GC_LAYER_FACTOR * perTokenLayer), withoutGc = tokens * perTokenLayer * a.numLayers;
  const activations = s.gradientCheckpointing ? withGc : withoutGc;
  // Stored base linears (LoRA only): every 2-D decoder weight at its storage's bytes per weight.
  let storedSaving = 0;
  if (s.lora && s.storage && s.storage.kind !== 'f32') {
    for (const e of layer) {
      if (e.shape.length !== 2 || !e.name.endsWith('.weight')) continue;
      storedSaving += numel(e) * (4 - bytesPerWeight(s.storage.kind, e.shape[1].size, s.storage.nested)) * a.numLayers;
    }
    // The frozen embedding and lm_head in half precision (quant/load-stored.ts), as config.json's dtype says the file holds them.
    if (embeddingStorageKind(s.storage, checkpointHalf(a))) {
      for (const e of table.global) if (e.shape.length === 2 && /embed_tokens|wte|lm_head/.test(e.name)) storedSaving += 2 * numel(e);
    }
  }
  // The reference copy under bf16 keeps its decoder linears as bf16 bits.
  const ref = !s.refCopy ? 0 : s.bf16 ? 4 * globalParams + 2 * layerParams : 4 * params;
  // Working buffers: the fused log-prob's logits chunk (forward and backward) and expected embedding, a dequantization tile.
  const buffers = tokens * (2 * 4 * Math.min(DEFAULT_VOCAB_CHUNK, a.vocabSize) + 4 * C) + (s.lora && s.storage && s.storage.kind !== 'f32' ? TILE_BYTES : 0);
  const parts: [string, number][] = [
    [s.lora && s.storage && s.storage.kind !== 'f32' ? `weights (base linears ${s.storage.kind})` : 'weights', 4 * params - storedSaving + (s.lora ? 4 * trainable : 0)],
    ['gradients', 4 * trainable],
    ['AdamW state', 8 * trainable],
    ['reference copy', ref],
    ['runtime and working buffers', RUNTIME_BYTES + buffers],
    [`activations for ${tokens} tokens (${s.rows} rows, the longest ${s.seqLen})`, activations],
  ];
  return { bytes: parts.reduce((n, [, b]) => n + b, 0), parts, shape: s, activationsOther: s.gradientCheckpointing ? withoutGc : withGc };
}

/** The tensor dtype config.json says the checkpoint holds, as a safetensors dtype name. */
function checkpointHalf(a: ArchConfig): string {
  const d = a.raw.dtype ?? a.raw.torch_dtype;
  return d === 'bfloat16' ? 'BF16' : d === 'float16' ? 'F16' : 'F32';
}

/** The trainer's options that size a run (DPOConfig's fields). */
export interface TrainingOptions {
  perDeviceTrainBatchSize: number;
  bf16: boolean;
  gradientCheckpointing: boolean;
  precomputeRefLogProbs: boolean;
  maxLength: number | null;
}

/**
 * The estimate for training `arch` with these options: `lora` for a new or continued adapter,
 * `refModelGiven` when an explicit reference model exists already, `seqLen` the longest row once
 * the data is tokenized (0 before: weights and optimizer state only).
 */
export function estimateTraining(arch: ArchConfig, o: TrainingOptions, opts: { lora: RunShape['lora']; seqLen: number; tokens?: number; rows?: number; refModelGiven?: boolean; storage?: StorageSpec | null }): MemoryEstimate {
  const seqLen = o.maxLength === null ? opts.seqLen : Math.min(opts.seqLen, o.maxLength);
  const rows = 2 * Math.max(1, opts.rows ?? o.perDeviceTrainBatchSize);
  return estimateRunMemory({
    arch, lora: opts.lora, bf16: o.bf16, gradientCheckpointing: o.gradientCheckpointing,
    refCopy: !opts.lora && !opts.refModelGiven && !o.precomputeRefLogProbs,
    rows, seqLen, tokens: opts.tokens === undefined ? undefined : Math.min(opts.tokens, rows * seqLen), storage: opts.storage ?? null,
  });
}

function safeMatches(target: string | string[], name: string): boolean {
  try {
    return targetMatches(target, name);
  } catch {
    return false; // a bad regex is reported where LoRA is applied
  }
}

const readNum = (path: string): number | null => {
  try {
    const t = readFileSync(path, 'utf8').trim();
    return /^\d+$/.test(t) ? Number(t) : null;
  } catch {
    return null;
  }
};

/** The cgroup (v2, else v1) memory limit and usage of this process, if a limit is set. */
function cgroupRoom(): number | null {
  let rel = '/';
  try {
    const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
    rel = lines.find((l) => l.startsWith('0::'))?.slice(3) ?? lines.find((l) => /^\d+:memory:/.test(l))?.split(':')[2] ?? '/';
  } catch { /* not Linux */ }
  const candidates: [string, string, string][] = [];
  for (const base of [`/sys/fs/cgroup${rel}`, '/sys/fs/cgroup']) candidates.push([`${base}/memory.max`, `${base}/memory.current`, `${base}/memory.stat`]);
  for (const base of [`/sys/fs/cgroup/memory${rel}`, '/sys/fs/cgroup/memory']) candidates.push([`${base}/memory.limit_in_bytes`, `${base}/memory.usage_in_bytes`, `${base}/memory.stat`]);
  for (const [maxP, curP, statP] of candidates) {
    if (!existsSync(maxP)) continue;
    const max = readNum(maxP);
    if (max === null || max >= 2 ** 60) return null; // "max" or v1's "unlimited"
    const cur = readNum(curP) ?? 0;
    // Page cache the kernel can drop does not count as used.
    let reclaimable = 0;
    try {
      const m = /^(?:total_)?inactive_file (\d+)$/m.exec(readFileSync(statP, 'utf8'));
      if (m) reclaimable = Number(m[1]);
    } catch { /* no stat */ }
    return Math.max(0, max - Math.max(0, cur - reclaimable));
  }
  return null;
}

/** Memory this run may use in all: DPO_MEMORY_LIMIT, else what is available plus what it already holds. */
export function availableMemory(env: NodeJS.ProcessEnv = process.env): { bytes: number; source: string } {
  const o = env.DPO_MEMORY_LIMIT;
  if (o !== undefined && o !== '') {
    const n = Number(o);
    if (!Number.isFinite(n) || n <= 0) throw new DpoError(`DPO_MEMORY_LIMIT must be a number of bytes, got "${o}"`);
    return { bytes: n, source: 'DPO_MEMORY_LIMIT' };
  }
  let avail = freemem();
  let source = 'free memory';
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) {
      avail = Number(m[1]) * 1024;
      source = 'MemAvailable';
    }
  } catch { /* not Linux */ }
  const cg = cgroupRoom();
  if (cg !== null && cg < avail) {
    avail = cg;
    source = 'the cgroup memory limit';
  }
  const rss = process.memoryUsage.rss();
  return { bytes: avail + rss, source: `${source} ${gb(avail)} + this process ${gb(rss)}` };
}

const gb = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(1)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`);

/** Throws a DpoError (exit code 2) saying what the run needs, what is available and what to try. */
export function assertRunFits(est: MemoryEstimate, env: NodeJS.ProcessEnv = process.env): void {
  const avail = availableMemory(env);
  if (est.bytes <= avail.bytes) return;
  const s = est.shape;
  const tries: string[] = [];
  if (!s.lora) tries.push('LoRA (--use_peft)');
  if (!s.bf16 && s.refCopy) tries.push('--bf16');
  if (s.lora && (!s.storage || s.storage.kind === 'f32')) tries.push('--dtype bfloat16 or --load_in_4bit (the frozen base in bf16 / 4-bit)');
  const acts = est.parts[est.parts.length - 1][1];
  // Measured against what the run itself adds, so a tiny model's fixed runtime does not hide its activations.
  if (acts > (est.bytes - RUNTIME_BYTES) / 10) {
    tries.push('a shorter --max_length');
    if (!s.gradientCheckpointing) tries.push('--gradient_checkpointing');
    if (s.rows > 2) tries.push('a smaller --per_device_train_batch_size (with --gradient_accumulation_steps)');
  }
  const parts = est.parts.filter(([, b]) => b > 0).map(([w, b]) => `${w} ${gb(b)}`).join(', ');
  throw new DpoError(`this run needs about ${gb(est.bytes)} of memory (${parts}) but ${gb(avail.bytes)} is available (${avail.source}); ${tries.length ? `try ${tries.join(', ')}` : 'the model alone does not fit; use a machine with more memory'}`);
}

/** The estimate as one line for `dpo train` before its first step. */
export function describeEstimate(e: MemoryEstimate): string {
  const parts = e.parts.filter(([, b]) => b > 0).map(([w, b]) => `${w} ${gb(b)}`).join(', ');
  const gc = e.shape.gradientCheckpointing;
  return `memory: estimated peak ${gb(e.bytes)} (${parts}); activations with gradient checkpointing ${gc ? 'off' : 'on'} would be ${gb(e.activationsOther)}`;
}

/** This process's peak resident memory so far (bytes; getrusage's maxrss). */
export function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** The measured peak against the estimate, for the end of a run. */
export function describePeak(e: MemoryEstimate | null, peak = peakRss()): string {
  return `memory: measured peak RSS ${gb(peak)}${e ? ` (estimated ${gb(e.bytes)}, ${((peak / e.bytes - 1) * 100).toFixed(0)}% off)` : ''}`;
}
