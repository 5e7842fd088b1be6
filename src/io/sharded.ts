/**
 * Sharded checkpoints as transformers writes them: model-00001-of-00003.safetensors, ... plus
 * model.safetensors.index.json = {"metadata": {"total_parameters", "total_size"}, "weight_map":
 * {tensor: shard}}. Splitting follows huggingface_hub's split_state_dict_into_shards: tensors in the
 * given order, a new shard when the next tensor would pass the limit, a tensor larger than the limit
 * alone in its own shard. One shard means a plain model.safetensors and no index.
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { JsonSyntaxError, parseJson, stringifyPython } from './json.js';
import { storedBytes, writeSafetensors, type TensorToWrite } from './safetensors.js';

export const WEIGHTS_NAME = 'model.safetensors';
export const WEIGHTS_INDEX_NAME = 'model.safetensors.index.json';
/** transformers 5's save_pretrained default. */
export const DEFAULT_MAX_SHARD_SIZE = '50GB';

const UNITS: Record<string, number> = { KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };

/** "5GB" / "500MB" (decimal, as huggingface_hub) / "2GiB" / a byte count -> bytes. */
export function parseSize(size: number | string, what = 'max_shard_size'): number {
  if (typeof size === 'number') {
    if (!Number.isSafeInteger(size) || size <= 0) throw new DpoError(`${what}: ${size} is not a positive whole number of bytes`);
    return size;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)?\s*$/i.exec(size);
  if (!m) throw new DpoError(`${what}: cannot read "${size}" as a size; write e.g. 5GB, 500MB or a number of bytes`);
  const n = Math.floor(Number(m[1]) * (m[2] ? UNITS[m[2].toUpperCase()] : 1));
  if (!(n > 0)) throw new DpoError(`${what}: "${size}" must be more than 0 bytes`);
  return n;
}

/** "model.safetensors", 1, 3 -> "model-00001-of-00003.safetensors". */
export function shardFileName(weightsName: string, index: number, count: number): string {
  const suffix = `-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}`;
  return weightsName.replace(/\.safetensors$/, `${suffix}.safetensors`);
}

/** Groups tensor names into shards of at most `maxBytes` each (huggingface_hub's greedy rule). */
export function planShards(items: readonly { name: string; bytes: number }[], maxBytes: number): string[][] {
  const shards: string[][] = [];
  let cur: string[] = [];
  let curBytes = 0;
  for (const { name, bytes } of items) {
    if (bytes > maxBytes) {
      shards.push([name]);
      continue;
    }
    if (curBytes + bytes > maxBytes) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(name);
    curBytes += bytes;
  }
  if (cur.length) shards.push(cur);
  return shards.filter((s) => s.length);
}

export interface WriteWeightsOptions {
  /** Bytes or a size string; default 50GB like transformers. */
  maxShardSize?: number | string;
  /** Each file's `__metadata__`; default {"format": "pt"}. */
  metadata?: Record<string, string> | null;
  /** Base file name; default model.safetensors. */
  weightsName?: string;
}

export interface WrittenWeights {
  /** File names written, relative to the directory. */
  files: string[];
  /** The index file name, or null for a single file. */
  index: string | null;
  totalSize: number;
  totalParameters: number;
}

/**
 * Writes `tensors` into `dir` as one file or as shards plus an index, removing shard files and a
 * single/index file left over from an earlier save in the other layout.
 */
export function writeWeights(dir: string, tensors: readonly (readonly [string, TensorToWrite])[], opts: WriteWeightsOptions = {}): WrittenWeights {
  const weightsName = opts.weightsName ?? WEIGHTS_NAME;
  const indexName = `${weightsName}.index.json`;
  const maxBytes = parseSize(opts.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE);
  const byName = new Map<string, TensorToWrite>();
  for (const [name, t] of tensors) {
    if (byName.has(name)) throw new DpoError(`writing ${join(dir, weightsName)}: tensor "${name}" given twice`);
    byName.set(name, t);
  }
  const items = tensors.map(([name, t]) => ({ name, bytes: storedBytes(t) }));
  const totalSize = items.reduce((a, x) => a + x.bytes, 0);
  const totalParameters = tensors.reduce((a, [, t]) => a + t.shape.reduce((p, d) => p * d, 1), 0);
  const shards = planShards(items, maxBytes);
  if (!shards.length) shards.push([]);
  const files = shards.length === 1 ? [weightsName] : shards.map((_, i) => shardFileName(weightsName, i + 1, shards.length));
  shards.forEach((names, i) => writeSafetensors(join(dir, files[i]), names.map((n) => [n, byName.get(n)!] as const), opts.metadata === undefined ? { format: 'pt' } : opts.metadata));

  const stem = weightsName.replace(/\.safetensors$/, '');
  const shardRe = new RegExp(`^${stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d{5}-of-\\d{5}\\.safetensors$`);
  for (const f of readdirSync(dir)) {
    if (shardRe.test(f) && !files.includes(f)) rmSync(join(dir, f), { force: true });
  }
  if (files.length === 1) {
    rmSync(join(dir, indexName), { force: true });
    return { files, index: null, totalSize, totalParameters };
  }
  rmSync(join(dir, weightsName), { force: true });
  const weightMap: Record<string, string> = {};
  shards.forEach((names, i) => names.forEach((n) => (weightMap[n] = files[i])));
  const index = { metadata: { total_parameters: totalParameters, total_size: totalSize }, weight_map: weightMap };
  writeFileAtomic(join(dir, indexName), `${stringifyPython(index)}\n`);
  return { files, index: indexName, totalSize, totalParameters };
}

export interface ShardIndex {
  path: string;
  metadata: Record<string, unknown>;
  /** tensor name -> shard file name, in index order. */
  weightMap: Map<string, string>;
  /** Shard file names, each once, in order of first appearance. */
  shards: string[];
}

/** Reads and validates model.safetensors.index.json (shard names must be plain files beside it). */
export function readShardIndex(path: string): ShardIndex {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DpoError(`${path}: cannot read the shard index (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parseJson(text).value;
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw new DpoError(`${path}: not valid JSON (${e.message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new DpoError(`${path}: must be a JSON object with a "weight_map"`);
  const r = raw as Record<string, unknown>;
  const wm = r.weight_map;
  if (!wm || typeof wm !== 'object' || Array.isArray(wm)) throw new DpoError(`${path}: "weight_map" must be an object mapping tensor names to shard files`);
  const md = r.metadata ?? {};
  if (typeof md !== 'object' || md === null || Array.isArray(md)) throw new DpoError(`${path}: "metadata" must be an object`);
  const weightMap = new Map<string, string>();
  for (const [name, file] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof file !== 'string') throw new DpoError(`${path}: weight_map["${name}"] must be a file name, got ${JSON.stringify(file)}`);
    if (!file || file === '.' || file === '..' || /[/\\]/.test(file) || file.includes('\0')) {
      throw new DpoError(`${path}: weight_map["${name}"] = "${file}" is not a plain file name in this directory`);
    }
    if (!file.endsWith('.safetensors')) {
      throw new DpoError(`${path}: weight_map["${name}"] = "${file}" is not a .safetensors file; convert the checkpoint to safetensors (model.save_pretrained(dir, safe_serialization=True))`);
    }
    weightMap.set(name, file);
  }
  if (!weightMap.size) throw new DpoError(`${path}: "weight_map" lists no tensors`);
  return { path, metadata: md as Record<string, unknown>, weightMap, shards: [...new Set(weightMap.values())] };
}

/** Whether `dir` has a single-file or sharded safetensors checkpoint. */
export function hasWeights(dir: string, weightsName = WEIGHTS_NAME): boolean {
  return existsSync(join(dir, weightsName)) || existsSync(join(dir, `${weightsName}.index.json`));
}
