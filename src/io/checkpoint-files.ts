/**
 * The weights of a Hugging Face checkpoint directory: model.safetensors, or shards listed in
 * model.safetensors.index.json (the single file wins when both exist, as in transformers). All
 * headers are validated up front; tensor data is read only when a loader is called.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { SafetensorsFile, type TensorInfo } from './safetensors.js';
import { readShardIndex, WEIGHTS_INDEX_NAME, WEIGHTS_NAME } from './sharded.js';

export interface CheckpointWeights {
  /** Every tensor name with its header info and a loader reading it as float32 (into `out` when it has the tensor's size). */
  entries: [string, TensorInfo, (out?: Float32Array) => Float32Array][];
  /** The safetensors files, open until close(). */
  files: SafetensorsFile[];
  /** True for a sharded checkpoint. */
  sharded: boolean;
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** The file holding a tensor (for error messages). */
  pathOf(name: string): string;
  /** Reads a tensor as float32, into `out` when given. */
  read(name: string, out?: Float32Array): Float32Array;
  /** Raw bits of a BF16 tensor. */
  readRawBf16(name: string, out?: Uint16Array): Uint16Array;
  /** Raw bits of a BF16/F16 tensor as a view of the mapped file (no copy; see SafetensorsFile.viewRaw16). */
  viewRaw16(name: string): Uint16Array;
  close(): void;
}

/** Opens the weights of `dir`; a DpoError says what is missing or malformed. */
export function openCheckpointWeights(dir: string): CheckpointWeights {
  const single = join(dir, WEIGHTS_NAME);
  const indexPath = join(dir, WEIGHTS_INDEX_NAME);
  const files: SafetensorsFile[] = [];
  const owner = new Map<string, SafetensorsFile>();
  try {
    if (existsSync(single)) {
      const f = new SafetensorsFile(single);
      files.push(f);
      for (const name of f.tensors.keys()) owner.set(name, f);
    } else if (existsSync(indexPath)) {
      const index = readShardIndex(indexPath);
      for (const s of index.shards) {
        if (!existsSync(join(dir, s))) throw new DpoError(`${indexPath}: shard "${s}" is listed but missing from ${dir} (incomplete download?)`);
      }
      for (const s of index.shards) files.push(new SafetensorsFile(join(dir, s)));
      const byShard = new Map(index.shards.map((s, i) => [s, files[i]]));
      for (const [name, shard] of index.weightMap) {
        if (!byShard.get(shard)!.tensors.has(name)) throw new DpoError(`${indexPath}: tensor "${name}" is mapped to ${shard}, but that shard does not contain it`);
      }
      // Like transformers 5, every tensor of every listed shard is loaded; a name in two shards is ambiguous.
      for (const f of files) {
        for (const name of f.tensors.keys()) {
          const prev = owner.get(name);
          if (prev) throw new DpoError(`${indexPath}: tensor "${name}" appears in both ${prev.path} and ${f.path}`);
          owner.set(name, f);
        }
      }
    } else {
      throw new DpoError(missingWeightsMessage(dir));
    }
  } catch (e) {
    files.forEach((f) => f.close());
    throw e;
  }
  const fileOf = (name: string): SafetensorsFile => {
    const f = owner.get(name);
    if (!f) throw new DpoError(`${dir}: the checkpoint has no tensor named "${name}"`);
    return f;
  };
  const entries: CheckpointWeights['entries'] = [];
  for (const [name, f] of owner) {
    const info = f.tensors.get(name)!, n = info.shape.reduce((a, d) => a * d, 1);
    entries.push([name, info, (out) => f.read(name, out?.length === n ? out : undefined)]);
  }
  return {
    entries,
    files,
    sharded: !existsSync(single),
    has: (name) => owner.has(name),
    info: (name) => fileOf(name).info(name),
    pathOf: (name) => fileOf(name).path,
    read: (name, out) => fileOf(name).read(name, out),
    readRawBf16: (name, out) => fileOf(name).readRawBf16(name, out),
    viewRaw16: (name) => fileOf(name).viewRaw16(name),
    close: () => files.forEach((f) => f.close()),
  };
}

/** Why `dir` has no loadable weights, with what to do. */
function missingWeightsMessage(dir: string): string {
  if (!existsSync(dir)) return `${dir}: directory not found`;
  const names = readdirSync(dir);
  if (names.includes('adapter_config.json')) {
    return `${dir}: holds a PEFT adapter (adapter_config.json), not full weights; pass the base model and load the adapter on top of it`;
  }
  if (names.some((n) => n === 'pytorch_model.bin' || /^pytorch_model-\d{5}-of-\d{5}\.bin$/.test(n) || n === 'pytorch_model.bin.index.json')) {
    return `${dir}: only PyTorch .bin weights found; convert them to safetensors (transformers: model.save_pretrained(dir, safe_serialization=True))`;
  }
  const other = names.filter((n) => n.endsWith('.safetensors'));
  const hint = other.length ? ` (found ${other.slice(0, 3).join(', ')}; rename a full-model file to ${WEIGHTS_NAME})` : '';
  return `${dir}: no ${WEIGHTS_NAME} or ${WEIGHTS_INDEX_NAME}${hint}`;
}
