/**
 * TRL's dataset mixture (trl/scripts/utils.py: DatasetMixtureConfig + get_dataset): the YAML
 * `datasets:` list, each entry loaded as `load_dataset(path, name, data_dir, data_files, split)`
 * (split slices such as `train[:10%]` or `train+test` as datasets reads them), `columns` kept,
 * `fraction` as TRL's target shares, then concatenated; `test_split_size` splits off a test set.
 *
 * @example
 * await loadMixture({ datasets: [{ path: 'trl-lib/ultrafeedback_binarized', split: 'train[:100]' }], test_split_size: 0.1 }, 42)
 *   // → { train: rows, test: rows }
 */
import { DpoError } from '../errors.js';
import { Dataset } from './dataset.js';
import type { DataFilesSpec } from './data-files.js';
import { readSplit, resolveDataset } from './hub-dataset.js';
import type { Row } from './load.js';

/** One entry of `datasets:` (TRL's DatasetConfig). */
export interface MixtureEntry {
  path: string;
  name?: string | null;
  data_dir?: string | null;
  data_files?: DataFilesSpec | null;
  split?: string;
  columns?: string[] | null;
  fraction?: number | null;
}

const ENTRY_KEYS = ['path', 'name', 'data_dir', 'data_files', 'split', 'columns', 'fraction'];

/** Checks the YAML `datasets:` value: a list of {path, ...} with TRL's DatasetConfig keys. */
export function parseMixture(v: unknown, where: string): MixtureEntry[] {
  if (!Array.isArray(v)) throw new DpoError(`${where}: datasets must be a list of {path, name, data_dir, data_files, split, columns, fraction} entries`);
  return v.map((e, i) => {
    if (!e || typeof e !== 'object' || Array.isArray(e)) throw new DpoError(`${where}: datasets[${i}] must be a mapping with a path`);
    const bad = Object.keys(e).filter((k) => !ENTRY_KEYS.includes(k));
    if (bad.length) throw new DpoError(`${where}: datasets[${i}] has unknown key ${bad.join(', ')}; TRL's DatasetConfig takes ${ENTRY_KEYS.join(', ')}`);
    const x = e as MixtureEntry;
    if (typeof x.path !== 'string' || !x.path) throw new DpoError(`${where}: datasets[${i}] needs a path (a file, dataset folder or Hub id)`);
    if (x.columns != null && !(Array.isArray(x.columns) && x.columns.every((c) => typeof c === 'string'))) throw new DpoError(`${where}: datasets[${i}].columns must be a list of column names`);
    if (x.fraction != null && !(typeof x.fraction === 'number' && x.fraction >= 0)) throw new DpoError(`${where}: datasets[${i}].fraction must be a number ≥ 0`);
    if (x.split != null && typeof x.split !== 'string') throw new DpoError(`${where}: datasets[${i}].split must be a split name such as train or train[:10%]`);
    return x;
  });
}

/** Python's round() (half to even), as datasets and TRL round. */
function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/** One `name[from:to]` of datasets' split syntax; bounds are rows or percents (rounded to the closest row, as datasets' default). */
function sliceOf(rows: Row[], from: string, to: string, where: string): Row[] {
  const n = rows.length;
  const bound = (b: string, dflt: number) => {
    if (b === '') return dflt;
    const m = /^(-?\d+)(%?)$/.exec(b.trim());
    if (!m) throw new DpoError(`${where}: split bound "${b}" is not a row number or a percent`);
    const v = m[2] ? pyRound((Number(m[1]) * n) / 100) : Number(m[1]);
    return Math.max(0, Math.min(n, v < 0 ? n + v : v));
  };
  return rows.slice(bound(from, 0), bound(to, n));
}

/** Rows of a split expression: `train`, `train[:100]`, `train[10%:20%]`, `train+test`. */
async function readSplitExpr(read: (split: string) => Promise<Row[]>, expr: string, where: string): Promise<Row[]> {
  const out: Row[] = [];
  for (const part of expr.split('+')) {
    const m = /^\s*([\w.-]+)\s*(?:\[([^:\]]*):([^\]]*)\])?\s*$/.exec(part);
    if (!m) throw new DpoError(`${where}: split "${expr}" is not a split name, a slice such as train[:10%], or a sum such as train+test`);
    const rows = await read(m[1]);
    for (const r of m[2] !== undefined ? sliceOf(rows, m[2], m[3], where) : rows) out.push(r);
  }
  return out;
}

export interface MixtureOptions {
  datasets: MixtureEntry[];
  test_split_size?: number | null;
}

/** TRL's get_dataset: the splits it returns ({train} or {train, test}). */
export async function loadMixture(opts: MixtureOptions, seed: number, env: NodeJS.ProcessEnv = process.env, where = 'datasets'): Promise<Record<string, Dataset>> {
  if (!opts.datasets.length) throw new DpoError(`${where}: the datasets list is empty; add at least one {path: ...}`);
  const parts: Row[][] = [];
  for (const [i, e] of opts.datasets.entries()) {
    const w = `${where}[${i}] ${e.path}`;
    const ds = resolveDataset({ path: e.path, name: e.name, dataDir: e.data_dir, dataFiles: e.data_files }, env, w);
    let rows = await readSplitExpr((s) => readSplit(ds, s, `datasets[${i}].split`), e.split ?? 'train', w);
    if (e.columns) {
      const cols = e.columns;
      const missing = cols.filter((c) => rows.length && !(c in rows[0]));
      if (missing.length) throw new DpoError(`${w}: columns ${missing.join(', ')} not in the data (it has ${Object.keys(rows[0]).join(', ')})`);
      rows = rows.map((r) => Object.fromEntries(cols.map((c) => [c, r[c]])));
    }
    parts.push(rows);
  }
  const fractions = opts.datasets.map((e) => e.fraction ?? null);
  if (fractions.some((f) => f !== null)) {
    if (fractions.some((f) => f === null)) throw new DpoError(`${where}: fraction must be set for either all datasets in the mixture or none of them`);
    const sum = (fractions as number[]).reduce((a, b) => a + b, 0);
    const weights = (fractions as number[]).map((f) => f / sum);
    const total = Math.min(...parts.map((p, i) => (weights[i] > 0 ? p.length / weights[i] : Infinity)));
    parts.forEach((p, i) => (parts[i] = p.slice(0, pyRound(weights[i] * total))));
  }
  const all: Row[] = [];
  for (const p of parts) for (const r of p) all.push(r);
  const combined = Dataset.fromList(all, `mixture of ${opts.datasets.map((e) => e.path).join(', ')}`);
  const t = opts.test_split_size;
  if (t === null || t === undefined) return { train: combined };
  if (!(t > 0) || (t >= 1 && !Number.isInteger(t)) || (t < 1 ? Math.ceil(t * all.length) : t) >= all.length) {
    throw new DpoError(`${where}: test_split_size ${t} must be a fraction in (0, 1) or a row count smaller than the ${all.length} rows`);
  }
  const { train, test } = combined.trainTestSplit(t, seed);
  return { train, test };
}
