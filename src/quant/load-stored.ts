/**
 * Building a model whose frozen base linear layers keep a storage other than float32 (`dtype
 * bfloat16` / `float16`, `load_in_8bit`, `load_in_4bit`), straight from the checkpoint, one tensor
 * at a time: every linear layer of the decoder (all but lm_head, as bitsandbytes leaves the head)
 * becomes a FrozenLinear. A BF16/F16 tensor stored in the requested dtype is a view of the
 * memory-mapped file (no copy); other BF16 ones are quantized from their bits, the rest read as
 * float32; one tensor at a time, through one reused buffer, then rounded or quantized. Embeddings,
 * norms, biases and lm_head load as float32 as before (read straight into their parameters).
 */
import { DpoError, fmtShape } from '../errors.js';
import type { CheckpointWeights } from '../io/checkpoint-files.js';
import type { ArchConfig } from '../models/arch.js';
import type { CausalLM } from '../models/causal-lm.js';
import { architectureFor, loadWeightsInto, type TensorLoader } from '../models/registry.js';
import { FrozenEmbedding } from '../nn/frozen-embedding.js';
import { FrozenLinear } from '../nn/frozen-linear.js';
import { Embedding } from '../nn/embedding.js';
import { Linear } from '../nn/linear.js';
import type { Module } from '../nn/module.js';
import { plainStorage, quantizeWeight, type StorageKind, type WeightStorage } from './storage.js';

/** How the frozen base linears are stored; `nested` = double quantization of 4-bit absmax. */
export interface StorageSpec {
  kind: StorageKind;
  nested?: boolean;
  /** The adapter trains the embedding or lm_head (target_modules / modules_to_save): both stay float32. */
  trainedEmbeddings?: boolean;
}

/** Whether LoRA options train the token embedding or lm_head (PEFT target_modules / modules_to_save naming them). */
export function trainsEmbeddings(targetModules: string[] | string | null | undefined, modulesToSave: string[] | null | undefined): boolean {
  const names = [...(typeof targetModules === 'string' ? [targetModules] : targetModules ?? []), ...(modulesToSave ?? [])];
  return names.some((n) => n.toLowerCase() !== 'all-linear' && /embed|wte|lm_head/.test(n));
}

/** The half storage the frozen embedding / lm_head keep under `spec` for a tensor stored as `fileDtype`; null = float32. */
export function embeddingStorageKind(spec: StorageSpec, fileDtype: string): 'bf16' | 'f16' | null {
  if (spec.trainedEmbeddings) return null;
  if (spec.kind === 'bf16' || spec.kind === 'f16') return spec.kind;
  if (spec.kind === 'f32') return null;
  return fileDtype === 'BF16' ? 'bf16' : fileDtype === 'F16' ? 'f16' : null;
}

/** The token embedding (embed_tokens / wte) and an untied lm_head: module name + '.weight' → parent, key and module. */
function embeddingTargets(model: Module): Map<string, { parent: Record<string, unknown>; key: string; module: Embedding | Linear }> {
  const out = new Map<string, { parent: Record<string, unknown>; key: string; module: Embedding | Linear }>();
  for (const [name, m] of model.namedModules()) {
    for (const [key, child] of Object.entries(m)) {
      const hit = (child instanceof Embedding && (key === 'embed_tokens' || key === 'wte')) || (child instanceof Linear && key === 'lm_head');
      if (hit) out.set(`${name ? `${name}.` : ''}${key}.weight`, { parent: m as unknown as Record<string, unknown>, key, module: child as Embedding | Linear });
    }
  }
  return out;
}

/** The linear layers a stored load replaces: module name + '.weight' → parent, key and layer. */
export function storedLinearTargets(model: Module): Map<string, { parent: Record<string, unknown>; key: string; layer: Linear }> {
  const out = new Map<string, { parent: Record<string, unknown>; key: string; layer: Linear }>();
  for (const [name, m] of model.namedModules()) {
    for (const [key, child] of Object.entries(m)) {
      if (!(child instanceof Linear) || child instanceof FrozenLinear || key === 'lm_head') continue;
      out.set(`${name ? `${name}.` : ''}${key}.weight`, { parent: m as unknown as Record<string, unknown>, key, layer: child });
    }
  }
  return out;
}

/** Builds `arch` from checkpoint weights `w` with its base linears stored as `spec` says. */
export function buildStoredModel(arch: ArchConfig, w: CheckpointWeights, where: string, spec: StorageSpec): CausalLM {
  const A = architectureFor(arch);
  // Linear weights are allocated lazily by the OS (zero pages): those replaced here are never touched.
  const model = A.build(arch);
  const targets = storedLinearTargets(model);
  const embeds = embeddingTargets(model);
  const rest: [string, TensorLoader][] = [];
  // Reused read buffers: quantizeWeight keeps no reference to its input (but for f32, not stored here).
  const bufs: ReadBuffers = { bits: reusable((n) => new Uint16Array(n)), vals: reusable((n) => new Float32Array(n)) };
  for (const [rawName, info, load] of w.entries) {
    const name = rawName.includes('rotary_emb.inv_freq') ? null : A.rename(rawName, arch);
    const e = name ? embeds.get(name) : undefined;
    const eKind = e ? embeddingStorageKind(spec, info.dtype) : null;
    if (e && eKind) {
      const m = e.module;
      const expected = m instanceof Embedding ? [m.num, m.dim] : [m.outFeatures, m.inFeatures];
      const ws = storedMatrix(A, arch, w, rawName, name!, info, load, expected, eKind, {}, where, FRESH);
      e.parent[e.key] = m instanceof Embedding ? new FrozenEmbedding(ws) : new FrozenLinear(ws, m.bias);
      continue;
    }
    const t = name ? targets.get(name) : undefined;
    if (!name || !t) {
      rest.push([rawName, (into) => ({ shape: info.shape, data: load(into) })]);
      continue;
    }
    const { layer } = t;
    const storage = storedMatrix(A, arch, w, rawName, name, info, load, [layer.outFeatures, layer.inFeatures], spec.kind, { nested: spec.nested }, where, bufs);
    t.parent[t.key] = new FrozenLinear(storage, layer.bias);
    targets.delete(name);
  }
  if (targets.size) {
    const names = [...targets.keys()];
    throw new DpoError(`${where}: missing weight${names.length > 1 ? 's' : ''} ${names.slice(0, 5).map((n) => `"${n}"`).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''}; the checkpoint is incomplete or for another architecture`);
  }
  loadWeightsInto(model, rest, where);
  return model;
}

/** A buffer reused from tensor to tensor (grown when a larger one comes), so loading touches fresh memory once. */
function reusable<T extends Float32Array | Uint16Array>(make: (n: number) => T): (n: number) => T {
  let buf: T | null = null;
  return (n) => {
    if (!buf || buf.length < n) buf = make(n);
    return buf.subarray(0, n) as T;
  };
}

interface ReadBuffers { bits: (n: number) => Uint16Array; vals: (n: number) => Float32Array }
/** For the one large embedding matrix: a buffer not kept for the layers after it. */
const FRESH: ReadBuffers = { bits: (n) => new Uint16Array(n), vals: (n) => new Float32Array(n) };

/**
 * One checkpoint matrix in `kind`: a view of the mapped file when it is stored as that half type in
 * its final layout; quantized (or rounded) straight from a bf16 file's bits; else read as float32,
 * sanitized and rounded or quantized.
 */
function storedMatrix(A: ReturnType<typeof architectureFor>, arch: ArchConfig, w: CheckpointWeights, rawName: string, name: string, info: { dtype: string; shape: number[] },
  load: (into?: Float32Array) => Float32Array, expected: number[], kind: StorageKind, opts: { nested?: boolean }, where: string, bufs: ReadBuffers): WeightStorage {
  const half = kind === 'bf16' ? 'BF16' : kind === 'f16' ? 'F16' : null;
  const shape = A.storedShape(name, info.shape);
  const n = expected[0] * expected[1];
  const ourLayout = shape.every((d, i) => d === info.shape[i]) && info.shape.length === 2 && shape[0] === expected[0] && shape[1] === expected[1];
  if (half && info.dtype === half && ourLayout) return plainStorage(kind as 'bf16' | 'f16', w.viewRaw16(rawName), expected[0], expected[1]);
  if (info.dtype === 'BF16' && ourLayout && kind !== 'f32') return quantizeWeight(w.readRawBf16(rawName, bufs.bits(n)), expected[0], expected[1], kind, opts);
  const s = A.sanitize(rawName, { shape: info.shape, data: load(kind !== 'f32' ? bufs.vals(n) : undefined) }, arch)!;
  if (s[1].shape.length !== 2 || s[1].shape[0] !== expected[0] || s[1].shape[1] !== expected[1]) {
    throw new DpoError(`${where}: weight "${rawName}" has shape ${fmtShape(info.shape)} but ${arch.modelType} with this config.json expects ${fmtShape(expected)}`);
  }
  return quantizeWeight(s[1].data, expected[0], expected[1], kind, opts);
}
