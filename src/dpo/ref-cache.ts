/**
 * Precomputed reference log-probs (precompute_ref_log_probs) kept on disk, per split ('train', 'eval',
 * 'eval_<name>'), as float64 (chosen, rejected) per pair by position in the prepared split:
 *  - in output_dir, ref_logps-<split>-<hash>.f64, the hash covering the REFERENCE's weights (what it
 *    computes with: the frozen copy, the base under adapters-off, the initial adapter), the tokenised
 *    data and the settings that change the values, so a rerun skips the pass;
 *  - in every checkpoint-N/ (ref_logps-<split>.f64 + ref_logps.json with each split's data key), so a
 *    resume reuses the values made from the initial weights, whatever model it is started from.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TokenizedPair } from '../data/prepare.js';
import { hashPairs } from './training-data.js';
import type { Reference } from './reference.js';

/** One split's values with the key of the data and settings they were made for. */
export interface RefLogps {
  values: Float64Array;
  /** Hash of the tokenised pairs and of the settings (batching, collation, ld_alpha, bf16), not of the weights. */
  dataKey: string;
}

const CHECKPOINT_INDEX = 'ref_logps.json';

/** The data + settings key of a split's reference log-probs. */
export function refDataKey(pairs: readonly TokenizedPair[], settings: unknown): string {
  const h = createHash('sha256');
  hashPairs(h, pairs);
  h.update(JSON.stringify(settings));
  return h.digest('hex').slice(0, 16);
}

/** output_dir's cache file for `split`: keyed by the reference's weights and the data key. */
export function outputDirCacheFile(outputDir: string, split: string, dataKey: string, reference: Reference): string {
  const h = createHash('sha256');
  reference.hashWeights(h);
  h.update(JSON.stringify({ data: dataKey, ref: reference.kind }));
  return join(outputDir, `ref_logps-${split}-${h.digest('hex').slice(0, 16)}.f64`);
}

/** The values in `file` when it holds `n` pairs' (else null: absent or of other data). */
export function readRefLogps(file: string, n: number): Float64Array | null {
  if (!existsSync(file)) return null;
  const buf = readFileSync(file);
  if (buf.byteLength !== n * 16) return null;
  return new Float64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Writes `values` to `file` through a temporary file (never half a cache). */
export function writeRefLogps(file: string, values: Float64Array): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  renameSync(`${file}.tmp`, file);
}

/** Into a checkpoint being written (`dir`): every split's values and the index of their data keys. */
export function saveRefLogpsToCheckpoint(dir: string, splits: ReadonlyMap<string, RefLogps>): void {
  if (!splits.size) return;
  const index: Record<string, { data_key: string; pairs: number }> = {};
  for (const [split, r] of splits) {
    writeFileSync(join(dir, `ref_logps-${split}.f64`), new Uint8Array(r.values.buffer, r.values.byteOffset, r.values.byteLength));
    index[split] = { data_key: r.dataKey, pairs: r.values.length / 2 };
  }
  writeFileSync(join(dir, CHECKPOINT_INDEX), `${JSON.stringify(index, null, 2)}\n`);
}

/**
 * A checkpoint's stored values for `split`: the values when they were made for this data key; null
 * when the checkpoint has none (an older checkpoint, or precompute was off); 'other-data' when it
 * has values for other data or settings.
 */
export function loadRefLogpsFromCheckpoint(dir: string, split: string, dataKey: string, n: number): Float64Array | null | 'other-data' {
  const indexFile = join(dir, CHECKPOINT_INDEX);
  if (!existsSync(indexFile)) return null;
  let index: Record<string, { data_key?: string }>;
  try {
    index = JSON.parse(readFileSync(indexFile, 'utf8')) as typeof index;
  } catch {
    return null;
  }
  const e = index[split];
  if (!e) return null;
  if (e.data_key !== dataKey) return 'other-data';
  return readRefLogps(join(dir, `ref_logps-${split}.f64`), n) ?? 'other-data';
}
