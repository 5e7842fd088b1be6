/**
 * Training checkpoints in transformers' layout: output_dir/checkpoint-N/ with the weights (or the
 * PEFT adapter), optimizer and scheduler state, RNG states, trainer_state.json and the training
 * args. Written into a temporary directory and renamed, so a crash never leaves half a checkpoint;
 * resuming restores everything needed to continue bit for bit.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { writeDirAtomically } from '../io/atomic.js';
import { writeModelConfig } from '../io/config.js';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { Rng } from '../tensor/rng.js';
import { loraLayers } from '../lora/apply.js';
import { adapterConfig, adapterTensors } from '../lora/peft-io.js';
import { exportWeights, loadWeightsInto } from '../models/registry.js';
import { checkCheckpoint } from '../models/check-checkpoint.js';
import { saveLikeSource } from '../models/save-like-source.js';
import { resolveModelDir } from '../io/model-source.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { DPOTrainer } from './trainer.js';
import { checkpointsToDelete } from './best-model.js';
import { saveRefLogpsToCheckpoint } from './ref-cache.js';

/** Model weights (full) or the adapter (LoRA) into `dir`, in the formats transformers / PEFT load. */
export function writeModelFiles(model: CausalLM, dir: string, baseModel: string): void {
  if (loraLayers(model).length) {
    writeFileSync(join(dir, 'adapter_config.json'), `${JSON.stringify(adapterConfig(model, baseModel), null, 2)}\n`);
    writeSafetensors(join(dir, 'adapter_model.safetensors'), adapterTensors(model));
  } else {
    writeModelConfig(dir, model.arch.raw, model.arch.floatPaths);
    // The text model of a multimodal checkpoint: the vision tower and projector are copied from the source unchanged.
    if (model.arch.weightPrefix) saveLikeSource(model, sourceDirOf(model, baseModel), dir, { dtype: 'F32' });
    else writeSafetensors(join(dir, 'model.safetensors'), exportWeights(model).map(([n, t]) => [n, { shape: t.shape, data: t.data }] as [string, TensorToWrite]));
  }
}

function sourceDirOf(model: CausalLM, baseModel: string): string {
  const src = baseModel || model._nameOrPath;
  if (!src) throw new DpoError(`saving a ${model.arch.modelType} model: the checkpoint it came from is unknown, so its vision tower cannot be saved with it; load it with loadCausalLM or pass modelNameOrPath to the trainer`);
  return resolveModelDir(src);
}

function rngStates(model: CausalLM): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, m] of model.namedModules()) {
    const r = (m as unknown as { _rng?: unknown })._rng;
    if (r instanceof Rng) out[name || '.'] = r.getState();
  }
  return out;
}

export function checkpointDirs(outputDir: string): string[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .filter((d) => /^checkpoint-\d+$/.test(d))
    .sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]))
    .map((d) => join(outputDir, d));
}

/**
 * Removes what a save killed half-way left behind: checkpoint-N.tmp-PID dirs (never renamed, so never
 * trusted, but as large as a checkpoint) of this process or of one that is gone, and .old-PID dirs
 * whose checkpoint-N is back in place.
 */
function removeStaleTemps(outputDir: string): void {
  for (const d of readdirSync(outputDir)) {
    const m = /^(checkpoint-\d+)\.(tmp|old)-(\d+)$/.exec(d);
    if (!m || (m[2] === 'old' && !existsSync(join(outputDir, m[1])))) continue;
    const pid = Number(m[3]);
    if (pid === process.pid || !processAlive(pid)) rmSync(join(outputDir, d), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function saveTrainerCheckpoint(t: DPOTrainer): string {
  const a = t.args;
  const dir = join(a.outputDir, `checkpoint-${t.state.global_step}`);
  mkdirSync(a.outputDir, { recursive: true });
  removeStaleTemps(a.outputDir);
  writeDirAtomically(dir, (tmp) => {
    writeModelFiles(t.model, tmp, t.modelNameOrPath);
    const opt = t.optimizer;
    if (opt) {
      const tensors: [string, TensorToWrite][] = [];
      opt.params.forEach(([name], i) => {
        tensors.push([`exp_avg.${name}`, { shape: [opt.m[i].length], data: opt.m[i] }]);
        tensors.push([`exp_avg_sq.${name}`, { shape: [opt.v[i].length], data: opt.v[i] }]);
      });
      writeSafetensors(join(tmp, 'optimizer.safetensors'), tensors, { format: 'pt', step: String(opt.step) });
    }
    writeFileSync(join(tmp, 'scheduler.json'), JSON.stringify({ last_epoch: t.state.global_step, lr_scheduler_type: a.lrSchedulerType }));
    writeFileSync(join(tmp, 'rng_state.json'), JSON.stringify({ modules: rngStates(t.model) }));
    if (t.reference?.kind === 'copy' && a.syncRefModel) {
      const ref = t.reference.model;
      if (ref) writeSafetensors(join(tmp, 'ref_model.safetensors'), exportWeights(ref).map(([n, x]) => [n, { shape: x.shape, data: x.data }] as [string, TensorToWrite]));
    }
    // precompute_ref_log_probs: the values made from the initial weights travel with the checkpoint (a resume reuses them).
    saveRefLogpsToCheckpoint(tmp, t.refCache);
    writeFileSync(join(tmp, 'trainer_state.json'), `${JSON.stringify({ ...sortKeys(t.state), dpo_ts: t.counters() }, null, 2)}\n`);
    writeFileSync(join(tmp, 'training_args.json'), `${JSON.stringify(a.toJSON(), null, 2)}\n`);
    t.tokenizer?.save(tmp);
  });
  // rotate_checkpoints: the oldest go first, never the newest nor the best.
  for (const old of checkpointsToDelete(checkpointDirs(a.outputDir), a.saveTotalLimit, t.state.best_model_checkpoint)) rmSync(old, { recursive: true, force: true });
  t.callbacks.onSave?.(dir);
  return dir;
}

function sortKeys<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).sort(([x], [y]) => (x < y ? -1 : 1))) as T;
}

/** Resolves "latest" (the newest checkpoint-N with a trainer_state.json) or a path to a checkpoint directory. */
export function resolveCheckpoint(outputDir: string, spec: string): string {
  const latest = () => checkpointDirs(outputDir).reverse().find((d) => existsSync(join(d, 'trainer_state.json')));
  const dir = spec === 'latest' || spec === 'true' ? latest() : spec;
  if (!dir || !existsSync(join(dir, 'trainer_state.json'))) {
    throw new DpoError(`resume_from_checkpoint: ${dir ?? `no checkpoint-N directory in ${outputDir}`} is not a checkpoint (no trainer_state.json)`);
  }
  return dir;
}

/** A checkpoint's JSON file as an object; a damaged one is a one-line error. */
function readCheckpointJson(path: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DpoError(`${path}: ${existsSync(path) ? `not valid JSON (${(e as Error).message})` : 'missing'}; the checkpoint is damaged, resume from another one`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new DpoError(`${path}: must be a JSON object; the checkpoint is damaged, resume from another one`);
  return v as Record<string, unknown>;
}

/** A checkpoint's weights (the adapter, or the full model) into `model`'s existing parameters. */
export function loadCheckpointWeights(model: CausalLM, dir: string): void {
  const weightsFile = existsSync(join(dir, 'adapter_model.safetensors')) ? 'adapter_model.safetensors' : 'model.safetensors';
  const st = new SafetensorsFile(join(dir, weightsFile));
  try {
    if (weightsFile.startsWith('adapter')) {
      if (!loraLayers(model).length) throw new DpoError(`${dir}: holds a LoRA adapter but the run is full fine-tuning; resume with the same --use_peft settings`);
      for (const [key, x] of adapterTensors(model)) st.read(key, x.data as Float32Array);
    } else {
      // Headers against the run's config first, so a wrong tensor fails before it is read.
      checkCheckpoint(model.arch, [...st.tensors.values()].map((i) => ({ ...i, file: st.path })), join(dir, 'config.json'), { path: st.path, label: weightsFile });
      loadWeightsInto(model, [...st.tensors.values()].map((info) => [info.name, () => ({ shape: info.shape, data: st.read(info.name) })]), dir);
    }
  } finally {
    st.close();
  }
}

export function restoreTrainerCheckpoint(t: DPOTrainer, dir: string): { totalTrainTokens: number; trLoss: number; totalLossScalar: number; lastLoggedStep: number } {
  const state = readCheckpointJson(join(dir, 'trainer_state.json'));
  loadCheckpointWeights(t.model, dir);
  const opt = t.ensureOptimizer();
  const of = new SafetensorsFile(join(dir, 'optimizer.safetensors'));
  try {
    opt.params.forEach(([name], i) => {
      of.read(`exp_avg.${name}`, opt.m[i]);
      of.read(`exp_avg_sq.${name}`, opt.v[i]);
    });
    opt.step = Number(of.metadata.step ?? state.global_step);
  } finally {
    of.close();
  }
  const refFile = join(dir, 'ref_model.safetensors');
  if (existsSync(refFile) && t.reference?.model) {
    const rf = new SafetensorsFile(refFile);
    try {
      loadWeightsInto(t.reference.model, [...rf.tensors.values()].map((info) => [info.name, () => ({ shape: info.shape, data: rf.read(info.name) })]), refFile);
    } finally {
      rf.close();
    }
  }
  const rng = (readCheckpointJson(join(dir, 'rng_state.json')).modules ?? {}) as Record<string, number[]>;
  for (const [name, m] of t.model.namedModules()) {
    const r = (m as unknown as { _rng?: unknown })._rng;
    const s = rng[name || '.'];
    if (r instanceof Rng && s) r.setState(s);
  }
  const { dpo_ts: counters, ...rest } = state;
  Object.assign(t.state, rest);
  return counters as ReturnType<typeof restoreTrainerCheckpoint>;
}
