/**
 * What one model file tells the registry: the model types it serves, how their config.json is read
 * (with transformers' defaults), how the model is built, the checkpoint quirks (sanitize / export),
 * and PEFT's default LoRA targets. Every list of supported types is derived from these objects.
 */
import type { ArchConfig } from './arch.js';
import type { ConfigReader } from './config-reader.js';
import type { CausalLM } from './causal-lm.js';
import type { WeightTable } from './weight-shapes.js';

/** A checkpoint tensor in our layout: float32, row-major. */
export interface RawTensor {
  shape: number[];
  data: Float32Array;
}

export interface ModelRegistration {
  modelTypes: readonly string[];
  /** config.json → ArchConfig (transformers' defaults for absent keys; unsupported keys are errors). */
  parse(r: ConfigReader): ArchConfig;
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
  /**
   * A checkpoint tensor outside the model we build (a multimodal checkpoint's vision tower and
   * projector): never loaded, copied unchanged when the model is saved back (dpo merge, a full
   * fine-tune's output). Absent = none.
   */
  passThrough?(name: string, arch: ArchConfig): boolean;
  /** PEFT's default target_modules by model type (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING); absent where PEFT has none. */
  loraTargets: Partial<Record<string, readonly string[]>>;
}

/** A tensor beside the text model of a multimodal checkpoint (weights under `weightPrefix`, plus lm_head). */
export function outsideTextModel(name: string, a: ArchConfig): boolean {
  return !!a.weightPrefix && !name.startsWith(a.weightPrefix) && name !== 'lm_head.weight';
}

/** Plain HF names: drop rotary buffers and a tied lm_head; a multimodal prefix is stripped. */
export function plainRename(name: string, a: ArchConfig): string | null {
  if (name.includes('rotary_emb.inv_freq')) return null;
  if (outsideTextModel(name, a)) return null; // the vision tower and projector are not loaded
  const p = a.weightPrefix;
  if (p && name.startsWith(p)) name = `model.${name.slice(p.length)}`;
  if (a.tieEmbeddings && name === 'lm_head.weight') return null;
  return name;
}

/** The registration parts every decoder with plain HF names shares. */
export const plainNames = {
  rename: plainRename,
  passThrough: outsideTextModel,
  storedShape: (_name: string, shape: number[]) => shape,
  sanitize(name: string, t: RawTensor, a: ArchConfig): [string, RawTensor] | null {
    const n = plainRename(name, a);
    return n === null ? null : [n, t];
  },
  export(name: string, t: RawTensor, a: ArchConfig): [string, RawTensor] {
    const p = a.weightPrefix;
    return [p && name.startsWith('model.') ? `${p}${name.slice('model.'.length)}` : name, t];
  },
};
