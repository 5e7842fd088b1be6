/**
 * config.json against the safetensors headers, before any weight buffer or layer exists: the layer
 * count, every tensor's shape and dtype, nothing missing, nothing unexpected (beyond what loading
 * drops: rotary inv_freq, GPT-2's attn.bias, a tied lm_head). A disagreement is one line naming the
 * config key, the file and the value the weights imply, e.g.
 *   config.json: num_hidden_layers is 1000000000 but model.safetensors has layers 0..3; expected 4
 */
import { basename } from 'node:path';
import { DpoError, fmtShape } from '../errors.js';
import type { ArchConfig } from './arch.js';
import { architectureFor } from './registry.js';
import type { Dim, ExpectedWeight } from './weight-shapes.js';

/** A tensor as its header describes it, and the file it is in. */
export interface HeaderTensor {
  name: string;
  dtype: string;
  shape: readonly number[];
  file: string;
}

const LOADABLE = new Set(['F32', 'BF16', 'F16']);

const list = (xs: string[]) => `${xs.slice(0, 5).map((n) => `"${n}"`).join(', ')}${xs.length > 5 ? ` and ${xs.length - 5} more` : ''}`;

/**
 * Throws a DpoError at the first disagreement between `arch` (read from `configPath`) and the
 * checkpoint's tensors. `weights` names the checkpoint: `path` (a file, or a sharded index) starts
 * messages about the checkpoint alone, `label` (e.g. "model.safetensors") follows the config's "but".
 */
export function checkCheckpoint(arch: ArchConfig, tensors: Iterable<HeaderTensor>, configPath: string, weights: { path: string; label: string }): void {
  const A = architectureFor(arch);
  const cfg = configPath;
  const byName = new Map<string, HeaderTensor>();
  for (const t of tensors) {
    const name = A.rename(t.name, arch);
    if (name === null) continue;
    if (!LOADABLE.has(t.dtype)) {
      throw new DpoError(`${t.file}: tensor "${t.name}" has dtype ${t.dtype}; only F32, BF16 and F16 weights can be loaded (convert the checkpoint, e.g. model.to(torch.float32).save_pretrained(...))`);
    }
    const prev = byName.get(name);
    if (prev) throw new DpoError(`${t.file}: tensors "${prev.name}" and "${t.name}" are the same weight ${name}; keep one`);
    byName.set(name, t);
  }
  const table = A.weightShapes(arch);
  checkLayerCount(table.layerPrefix, table.layersKey, table.numLayers, byName, cfg, weights);
  const expected: ExpectedWeight[] = [...table.global];
  for (let i = 0; i < table.numLayers; i++) expected.push(...table.layer(i));
  const missing: string[] = [];
  const compared: Mismatch[] = [];
  for (const e of expected) {
    const t = byName.get(e.name);
    if (!t) {
      missing.push(e.name);
      continue;
    }
    // The header's layout: permute the expected dims as the checkpoint stores them.
    const dims = A.storedShape(e.name, e.shape.map((_, i) => i)).map((i) => e.shape[i]);
    const want = dims.map((d) => d.size);
    if (t.shape.length !== dims.length) {
      throw new DpoError(`${t.file}: weight "${t.name}" has shape ${fmtShape(t.shape)} but ${cfg} implies ${fmtShape(want)} for ${arch.modelType}; is config.json from the same model?`);
    }
    dims.forEach((d, j) => {
      if (d.keys.length > 1 || t.shape[j] !== d.size) compared.push({ d, t, j });
    });
  }
  if (compared.some((m) => m.t.shape[m.j] !== m.d.size)) throw new DpoError(blame(compared, cfg));
  if (missing.length) {
    if (missing.includes('lm_head.weight') && !arch.tieEmbeddings) {
      throw new DpoError(`${cfg}: tie_word_embeddings is ${JSON.stringify(arch.raw.tie_word_embeddings ?? null)} but ${weights.label} has no lm_head.weight; expected true (the head shares the input embedding)`);
    }
    throw new DpoError(`${weights.path}: missing weight${missing.length > 1 ? 's' : ''} ${list(missing)}; the checkpoint is incomplete or for another architecture`);
  }
  const known = new Set(expected.map((e) => e.name));
  const unexpected = [...byName.values()].filter((t) => !known.has(A.rename(t.name, arch)!)).map((t) => t.name);
  if (unexpected.length) {
    throw new DpoError(`${weights.path}: unexpected weight${unexpected.length > 1 ? 's' : ''} ${list(unexpected)} for model_type ${arch.modelType} with this config.json; is config.json from the same model?`);
  }
}

/** The layer indices in the checkpoint must be exactly 0..numLayers−1, checked before listing layers. */
function checkLayerCount(prefix: string, key: string, numLayers: number, byName: Map<string, HeaderTensor>, cfg: string, weights: { path: string; label: string }): void {
  const seen = new Set<number>();
  for (const name of byName.keys()) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)\./.exec(name.slice(prefix.length));
    if (m) seen.add(Number(m[1]));
  }
  const n = seen.size;
  const contiguous = [...seen].every((i) => i < n);
  if (!contiguous) {
    let gap = 0;
    while (seen.has(gap)) gap++;
    throw new DpoError(`${weights.path}: has layers up to ${Math.max(...seen)} but no layer ${gap} (${prefix}${gap}.*); the checkpoint is incomplete`);
  }
  if (n !== numLayers) {
    throw new DpoError(`${cfg}: ${key} is ${numLayers} but ${weights.label} has ${n ? `layers 0..${n - 1}` : `no layers (${prefix}N.*)`}; expected ${n}`);
  }
}

const isKey = (k: string) => /^[A-Za-z_]\w*$/.test(k);

/** Dimension `j` of header tensor `t` compared with the expected `d`. */
interface Mismatch {
  d: Dim;
  t: HeaderTensor;
  j: number;
}

/**
 * Which config key explains the mismatches, reported at the first: its only key, or for a product
 * (heads × head_dim) the one factor whose corrected value makes every compared dimension agree.
 */
function blame(compared: Mismatch[], cfg: string): string {
  const { d, t, j } = compared.find((m) => m.t.shape[m.j] !== m.d.size)!;
  const got = t.shape[j];
  const has = `${basename(t.file)} has "${t.name}" of shape ${fmtShape(t.shape)}`;
  if (d.keys.length === 1 && isKey(d.keys[0][0])) return `${cfg}: ${d.keys[0][0]} is ${d.keys[0][1]} but ${has}; expected ${got}`;
  const fits: [string, number, number][] = [];
  for (const [k, v] of d.keys) {
    const rest = d.size / v;
    if (!isKey(k) || got % rest !== 0) continue;
    const fixed = got / rest;
    const sizeWith = (m: Mismatch) => m.d.keys.reduce((a, [kk, vv]) => a * (kk === k ? fixed : vv), 1);
    if (compared.every((m) => sizeWith(m) === m.t.shape[m.j])) fits.push([k, v, fixed]);
  }
  const label = d.keys.map(([k]) => k).join(' × ');
  if (fits.length === 1) {
    const [k, v, fixed] = fits[0];
    return `${cfg}: ${k} is ${v} but ${has} (${label} = ${got}); expected ${fixed}`;
  }
  return `${cfg}: ${label} is ${d.size} but ${has}; expected ${got}`;
}
