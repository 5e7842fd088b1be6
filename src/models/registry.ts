/**
 * model_type → builder, plus the checkpoint quirks each architecture needs (`sanitize`) so that
 * loading is a plain name match between HF keys and module properties.
 */
import { DpoError, fmtShape } from '../errors.js';
import type { ArchConfig } from './arch.js';
import type { CausalLM } from './causal-lm.js';
import { LlamaForCausalLM, llamaWeightShapes } from './llama.js';
import { GPT2LMHeadModel, GPT2_CONV1D, gpt2WeightShapes } from './gpt2.js';
import type { WeightTable } from './weight-shapes.js';

/** A checkpoint tensor in our layout: float32, row-major. */
export interface RawTensor {
  shape: number[];
  data: Float32Array;
}

interface Architecture {
  build(arch: ArchConfig): CausalLM;
  /** The parameters build(arch) will have, by config.json key, computed without allocating. */
  weightShapes(arch: ArchConfig): WeightTable;
  /** A checkpoint key's module key, or null for what loading drops (buffers, a tied lm_head). */
  rename(name: string, arch: ArchConfig): string | null;
  /** A module parameter's shape as the checkpoint stores it (GPT-2's Conv1D: transposed). */
  storedShape(moduleName: string, shape: number[]): number[];
  /** Maps checkpoint keys to module keys, dropping buffers and fixing layouts. */
  sanitize(name: string, t: RawTensor, arch: ArchConfig): [string, RawTensor] | null;
  /** The inverse of sanitize, for saving a checkpoint transformers loads. */
  export(name: string, t: RawTensor, arch: ArchConfig): [string, RawTensor];
}

const llamaArch: Architecture = {
  build: (a) => new LlamaForCausalLM(a),
  weightShapes: llamaWeightShapes,
  rename(name, a) {
    if (name.includes('rotary_emb.inv_freq')) return null;
    if (a.tieEmbeddings && name === 'lm_head.weight') return null;
    return name;
  },
  storedShape: (_name, shape) => shape,
  sanitize(name, t, a) {
    const n = llamaArch.rename(name, a);
    return n === null ? null : [n, t];
  },
  export: (name, t) => [name, t],
};

export function transpose2d(t: RawTensor): RawTensor {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { shape: [c, r], data: out };
}

const isConv1D = (name: string) => name.endsWith('.weight') && GPT2_CONV1D.some((m) => name.endsWith(`${m}.weight`));

const gpt2Arch: Architecture = {
  build: (a) => new GPT2LMHeadModel(a),
  weightShapes: gpt2WeightShapes,
  rename(name, a) {
    // Old GPT-2 checkpoints omit the "transformer." prefix.
    if (!name.startsWith('transformer.') && !name.startsWith('lm_head.')) name = `transformer.${name}`;
    if (name.endsWith('.attn.bias') || name.endsWith('.attn.masked_bias')) return null;
    if (a.tieEmbeddings && name === 'lm_head.weight') return null;
    return name;
  },
  storedShape: (name, shape) => (isConv1D(name) ? shape.slice().reverse() : shape),
  sanitize(name, t, a) {
    const n = gpt2Arch.rename(name, a);
    return n === null ? null : [n, isConv1D(n) ? transpose2d(t) : t];
  },
  export: (name, t) => [name, isConv1D(name) ? transpose2d(t) : t],
};

const REGISTRY: Record<string, Architecture> = {
  llama: llamaArch,
  mistral: llamaArch,
  qwen2: llamaArch,
  qwen3: llamaArch,
  gpt2: gpt2Arch,
};

export function architectureFor(arch: ArchConfig): Architecture {
  const a = REGISTRY[arch.modelType];
  if (!a) throw new DpoError(`model_type "${arch.modelType}" is not supported; supported: ${Object.keys(REGISTRY).join(', ')}`);
  return a;
}

/**
 * Builds the model and fills every parameter from `weights` (name → tensor), after sanitising.
 * Missing, unexpected or mis-shaped weights are errors naming the weight (`where` names the checkpoint).
 */
export function buildModel(arch: ArchConfig, weights: Iterable<[string, () => RawTensor]>, where: string): CausalLM {
  const model = architectureFor(arch).build(arch);
  loadWeightsInto(model, weights, where);
  return model;
}

/** Fills a model's parameters from checkpoint tensors (HF names and layouts), strictly. */
export function loadWeightsInto(model: CausalLM, weights: Iterable<[string, () => RawTensor]>, where: string): void {
  const arch = model.arch;
  const A = architectureFor(arch);
  const params = new Map(model.namedParameters());
  const filled = new Set<string>();
  const unexpected: string[] = [];
  for (const [rawName, load] of weights) {
    // Cheap pre-check on the name so buffers we drop are never read from disk.
    if (rawName.includes('rotary_emb.inv_freq')) continue;
    const s = A.sanitize(rawName, load(), arch);
    if (!s) continue;
    const [name, t] = s;
    const p = params.get(name);
    if (!p) {
      unexpected.push(rawName);
      continue;
    }
    if (p.shape.length !== t.shape.length || p.shape.some((d, i) => d !== t.shape[i])) {
      throw new DpoError(`${where}: weight "${rawName}" has shape ${fmtShape(t.shape)} but ${arch.modelType} with this config.json expects ${fmtShape(p.shape)}`);
    }
    p.data.set(t.data);
    filled.add(name);
  }
  const list = (xs: string[]) => `${xs.slice(0, 5).map((n) => `"${n}"`).join(', ')}${xs.length > 5 ? ` and ${xs.length - 5} more` : ''}`;
  if (unexpected.length) {
    throw new DpoError(`${where}: unexpected weight${unexpected.length > 1 ? 's' : ''} ${list(unexpected)} for model_type ${arch.modelType}; is config.json from the same model?`);
  }
  const missing = [...params.keys()].filter((n) => !filled.has(n));
  if (missing.length) {
    throw new DpoError(`${where}: missing weight${missing.length > 1 ? 's' : ''} ${list(missing)}; the checkpoint is incomplete or for another architecture`);
  }
}

/** The model's weights in HF checkpoint names and layouts, for saving. */
export function exportWeights(model: CausalLM): [string, RawTensor][] {
  const A = architectureFor(model.arch);
  return model.namedParameters().map(([name, t]) => A.export(name, { shape: t.shape.slice(), data: t.data as Float32Array }, model.arch));
}
