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
import { FrozenLinear } from '../nn/frozen-linear.js';
import { Linear } from '../nn/linear.js';
import type { Module } from '../nn/module.js';
import { plainStorage, quantizeWeight, type StorageKind, type WeightStorage } from './storage.js';

/** How the frozen base linears are stored; `nested` = double quantization of 4-bit absmax. */
export interface StorageSpec {
  kind: StorageKind;
  nested?: boolean;
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
  const rest: [string, TensorLoader][] = [];
  const half = spec.kind === 'bf16' ? 'BF16' : spec.kind === 'f16' ? 'F16' : null;
  // Reused read buffers: quantizeWeight keeps no reference to its input (but for f32, not stored here).
  const bits = reusable((n) => new Uint16Array(n)), vals = reusable((n) => new Float32Array(n));
  for (const [rawName, info, load] of w.entries) {
    const name = rawName.includes('rotary_emb.inv_freq') ? null : A.rename(rawName, arch);
    const t = name ? targets.get(name) : undefined;
    if (!name || !t) {
      rest.push([rawName, (into) => ({ shape: info.shape, data: load(into) })]);
      continue;
    }
    const { layer } = t;
    const shape = A.storedShape(name, info.shape);
    const expected = [layer.outFeatures, layer.inFeatures];
    let storage: WeightStorage;
    const ourLayout = shape.every((d, i) => d === info.shape[i]) && info.shape.length === 2 && shape[0] === expected[0] && shape[1] === expected[1];
    if (half && info.dtype === half && ourLayout) {
      storage = plainStorage(spec.kind as 'bf16' | 'f16', w.viewRaw16(rawName), expected[0], expected[1]);
    } else if (info.dtype === 'BF16' && ourLayout && spec.kind !== 'f32') {
      // Quantized (or rounded) from the bf16 bits, read into a buffer reused from layer to layer.
      storage = quantizeWeight(w.readRawBf16(rawName, bits(expected[0] * expected[1])), expected[0], expected[1], spec.kind, { nested: spec.nested });
    } else {
      const s = A.sanitize(rawName, { shape: info.shape, data: load(spec.kind !== 'f32' ? vals(expected[0] * expected[1]) : undefined) }, arch)!;
      if (s[1].shape.length !== 2 || s[1].shape[0] !== expected[0] || s[1].shape[1] !== expected[1]) {
        throw new DpoError(`${where}: weight "${rawName}" has shape ${fmtShape(info.shape)} but ${arch.modelType} with this config.json expects ${fmtShape(expected)}`);
      }
      storage = quantizeWeight(s[1].data, expected[0], expected[1], spec.kind, { nested: spec.nested });
    }
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
