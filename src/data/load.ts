/**
 * Reading preference data files: .json (a list of records or a dict of lists), .jsonl (either gzipped), .parquet
 * (hyparquet) and Hugging Face dataset directories (splits found as the datasets library finds them).
 * Extra columns are kept on the rows and ignored downstream.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { DpoError } from '../errors.js';
import { resolveDataFiles } from './data-files.js';
import { readArrowRows } from './arrow-ipc.js';

export type Row = Record<string, unknown>;

function fromJsonValue(v: unknown, path: string): Row[] {
  if (Array.isArray(v)) {
    v.forEach((r, i) => {
      if (!r || typeof r !== 'object' || Array.isArray(r)) throw new DpoError(`${path}: row ${i} is not an object; expected a list of {prompt, chosen, rejected} records`);
    });
    return v as Row[];
  }
  if (v && typeof v === 'object') {
    const cols = Object.entries(v as Record<string, unknown>);
    if (cols.length && cols.every(([, c]) => Array.isArray(c))) {
      const n = (cols[0][1] as unknown[]).length;
      for (const [k, c] of cols) {
        if ((c as unknown[]).length !== n) throw new DpoError(`${path}: column "${k}" has ${(c as unknown[]).length} values but "${cols[0][0]}" has ${n}; all columns of a dict of lists must be equally long`);
      }
      return Array.from({ length: n }, (_, i) => Object.fromEntries(cols.map(([k, c]) => [k, (c as unknown[])[i]])));
    }
    // A dict with one key holding the records (e.g. {"train": [...]}).
    if (cols.length === 1 && Array.isArray(cols[0][1])) return fromJsonValue(cols[0][1], path);
  }
  throw new DpoError(`${path}: expected a JSON list of records or a dict of equally long lists (prompt/chosen/rejected)`);
}

function readJson(path: string, text = readFileSync(path, 'utf8')): Row[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    // The seed writes the data as `[ name = {...} ]`-style pseudo-JSON; only real JSON is accepted.
    throw new DpoError(`${path}: not valid JSON (${(e as Error).message}); use a JSON list of records, a dict of lists, or JSON Lines (.jsonl)`);
  }
  return fromJsonValue(v, path);
}

function readJsonl(path: string, text = readFileSync(path, 'utf8')): Row[] {
  const rows: Row[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new DpoError(`${path}:${i + 1}: line is not valid JSON (${(e as Error).message})`);
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new DpoError(`${path}:${i + 1}: each line must be a JSON object`);
    rows.push(v as Row);
  });
  return rows;
}

async function readParquet(path: string): Promise<Row[]> {
  try {
    const file = await asyncBufferFromFile(path);
    const rows = (await parquetReadObjects({ file })) as Row[];
    return rows.map((r) => normaliseParquet(r) as Row);
  } catch (e) {
    if (e instanceof DpoError) throw e;
    throw new DpoError(`${path}: cannot read parquet (${(e as Error).message})`);
  }
}

/** Parquet lists of structs come back as arrays of plain objects already; BigInts become numbers. */
function normaliseParquet(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(normaliseParquet);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normaliseParquet(x)]));
  return v;
}

/** A gzip-compressed .json / .jsonl (as Anthropic/hh-rlhf's `train.jsonl.gz`), decompressed as the datasets library does. */
function readGzip(path: string): Row[] {
  const inner = extname(path.slice(0, -3)).toLowerCase();
  if (inner !== '.json' && inner !== '.jsonl' && inner !== '.ndjson') throw new DpoError(`${path}: unsupported data file type "${inner}.gz"; gzip is read for .json.gz and .jsonl.gz only (decompress it, or use .parquet)`);
  let text: string;
  try {
    text = gunzipSync(readFileSync(path)).toString('utf8');
  } catch (e) {
    throw new DpoError(`${path}: cannot decompress gzip (${(e as Error).message})`);
  }
  return inner === '.json' ? readJson(path, text) : readJsonl(path, text);
}

async function readFile(path: string): Promise<Row[]> {
  const ext = extname(path).toLowerCase();
  if (ext === '.gz') return readGzip(path);
  if (ext === '.json') return readJson(path);
  if (ext === '.jsonl' || ext === '.ndjson') return readJsonl(path);
  if (ext === '.parquet') return readParquet(path);
  if (ext === '.arrow') return readArrowRows(readFileSync(path), path);
  throw new DpoError(`${path}: unsupported data file type "${ext}"; use .json, .jsonl or .parquet (or a Hugging Face dataset directory)`);
}

/** Rows of several files, one after the other (no spread: a split holds 10⁵ rows). */
export async function readFiles(files: readonly string[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const f of files) for (const r of await readFile(f)) rows.push(r);
  return rows;
}

/** Loads every row of a file or of one split of a dataset directory (its splits as the datasets library finds them, data-files.ts). */
export async function loadRows(path: string, split = 'train'): Promise<Row[]> {
  if (!existsSync(path)) throw new DpoError(`${path}: data file or directory not found`);
  if (!statSync(path).isDirectory()) return readFile(path);
  const { splits } = resolveDataFiles(path);
  const mine = splits.get(split);
  if (!mine) throw new DpoError(`${path}: no "${split}" split; found splits ${[...splits.keys()].sort().join(', ')} (choose one with --dataset_train_split)`);
  return readFiles(mine);
}
