/**
 * model_type → the model file's registration (config parsing, build, checkpoint quirks, LoRA
 * targets), so that loading is a plain name match between HF keys and module properties.
 */
import { DpoError, fmtShape } from '../errors.js';
import type { ArchConfig } from './arch.js';
import { ConfigReader } from './config-reader.js';
import type { CausalLM } from './causal-lm.js';
import type { ModelRegistration, RawTensor } from './registration.js';
import { llamaRegistration } from './llama.js';
import { gpt2Registration } from './gpt2.js';
import { gemma3Registration } from './gemma3.js';
import { gemma2Registration } from './gemma2.js';
import { olmo2Registration } from './olmo2.js';
import { graniteRegistration } from './granite.js';
import { smollm3Registration } from './smollm3.js';
import { phi3Registration } from './phi3.js';

export type { RawTensor } from './registration.js';

/** Every model file's registration; the supported model types are read from here, never listed again. */
const REGISTRATIONS: readonly ModelRegistration[] = [llamaRegistration, gpt2Registration, gemma3Registration, gemma2Registration, olmo2Registration, graniteRegistration, smollm3Registration, phi3Registration];

const BY_TYPE = new Map<string, ModelRegistration>(REGISTRATIONS.flatMap((r) => r.modelTypes.map((t) => [t, r] as [string, ModelRegistration])));

/** The model_type values config.json may name, in registration order. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = [...BY_TYPE.keys()];

function registrationOf(modelType: string, where: string): ModelRegistration {
  const a = BY_TYPE.get(modelType);
  if (!a) throw new DpoError(`${where}: model_type "${modelType}" is not supported; supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`);
  return a;
}

/** The one config.json parser: the model type's registration reads it, with transformers' defaults. */
export function archFromConfig(raw: Record<string, unknown>, where = 'config.json'): ArchConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new DpoError(`${where}: must be a JSON object`);
  const r = new ConfigReader(raw, where);
  return registrationOf(r.modelType, where).parse(r);
}

export function architectureFor(arch: ArchConfig): ModelRegistration {
  return registrationOf(arch.modelType, 'config.json');
}

/** PEFT's default LoRA target_modules for a model type, or null where PEFT has none. */
export function defaultLoraTargets(modelType: string): readonly string[] | null {
  return BY_TYPE.get(modelType)?.loraTargets[modelType] ?? null;
}

/**
 * Builds the model and fills every parameter from `weights` (name → tensor), after sanitising.
 * Missing, unexpected or mis-shaped weights are errors naming the weight (`where` names the checkpoint).
 */
export function buildModel(arch: ArchConfig, weights: Iterable<[string, TensorLoader]>, where: string): CausalLM {
  const model = architectureFor(arch).build(arch);
  loadWeightsInto(model, weights, where);
  return model;
}

/**
 * Reads a checkpoint tensor; `into`, when given, is the parameter's own float32 buffer, which a
 * loader may fill and return as the data (one of the right size) instead of allocating.
 */
export type TensorLoader = (into?: Float32Array) => RawTensor;

/** Fills a model's parameters from checkpoint tensors (HF names and layouts), strictly. */
export function loadWeightsInto(model: CausalLM, weights: Iterable<[string, TensorLoader]>, where: string): void {
  const arch = model.arch;
  const A = architectureFor(arch);
  const params = new Map(model.namedParameters());
  const filled = new Set<string>();
  const unexpected: string[] = [];
  for (const [rawName, load] of weights) {
    // Cheap pre-check on the name so what we drop (buffers, a tied lm_head) is never read from disk.
    if (rawName.includes('rotary_emb.inv_freq') || A.passThrough?.(rawName, arch)) continue;
    const planned = A.rename(rawName, arch);
    if (planned === null) continue;
    // A tensor stored in the parameter's own layout is read straight into it: no second buffer, no copy.
    const target = params.get(planned);
    const into = target && target.data instanceof Float32Array && sameShape(A.storedShape(planned, target.shape.slice()), target.shape) ? target.data : undefined;
    const s = A.sanitize(rawName, load(into), arch);
    if (!s) continue;
    const [name, t] = s;
    if (into && t.data === into && name !== planned) throw new DpoError(`${where}: internal error: weight "${rawName}" was read into ${planned} but renames to ${name}`);
    const p = params.get(name);
    if (!p) {
      unexpected.push(rawName);
      continue;
    }
    if (!sameShape(p.shape, t.shape)) {
      throw new DpoError(`${where}: weight "${rawName}" has shape ${fmtShape(t.shape)} but ${arch.modelType} with this config.json expects ${fmtShape(p.shape)}`);
    }
    if (t.data !== p.data) p.data.set(t.data);
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

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The model's weights in HF checkpoint names and layouts, for saving. */
export function exportWeights(model: CausalLM): [string, RawTensor][] {
  const A = architectureFor(model.arch);
  return model.namedParameters().map(([name, t]) => A.export(name, { shape: t.shape.slice(), data: t.data as Float32Array }, model.arch));
}
