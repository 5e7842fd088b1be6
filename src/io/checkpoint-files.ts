/** The weight files of a Hugging Face checkpoint directory: model.safetensors or a sharded index. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { SafetensorsFile, type TensorInfo } from './safetensors.js';

export interface CheckpointWeights {
  /** Every tensor name with its header info and a loader reading it as float32. */
  entries: [string, TensorInfo, () => Float32Array][];
  close(): void;
}

export function openCheckpointWeights(dir: string): CheckpointWeights {
  const single = join(dir, 'model.safetensors');
  const index = join(dir, 'model.safetensors.index.json');
  let files: SafetensorsFile[] = [];
  const entries: CheckpointWeights['entries'] = [];
  if (existsSync(single)) {
    files = [new SafetensorsFile(single)];
  } else if (existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = JSON.parse(readFileSync(index, 'utf8')).weight_map;
    } catch (e) {
      throw new DpoError(`${index}: not valid JSON (${(e as Error).message})`);
    }
    if (!map || typeof map !== 'object') throw new DpoError(`${index}: has no "weight_map" object`);
    const shards = [...new Set(Object.values(map))];
    for (const s of shards) {
      if (!existsSync(join(dir, s))) throw new DpoError(`${index}: shard "${s}" is listed but missing from ${dir}`);
    }
    files = shards.map((s) => new SafetensorsFile(join(dir, s)));
    const byShard = new Map(shards.map((s, i) => [s, files[i]]));
    for (const [name, shard] of Object.entries(map)) {
      if (!byShard.get(shard)!.tensors.has(name)) throw new DpoError(`${index}: tensor "${name}" is mapped to ${shard} but that shard does not contain it`);
    }
  } else if (existsSync(join(dir, 'pytorch_model.bin'))) {
    throw new DpoError(`${dir}: only pytorch_model.bin found; convert it to safetensors (transformers: model.save_pretrained(dir, safe_serialization=True))`);
  } else {
    throw new DpoError(`${dir}: no model.safetensors or model.safetensors.index.json`);
  }
  for (const f of files) for (const [name, info] of f.tensors) entries.push([name, info, () => f.read(name)]);
  return { entries, close: () => files.forEach((f) => f.close()) };
}
