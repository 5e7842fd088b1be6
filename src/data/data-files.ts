/**
 * Which files make up each split of a dataset folder (a local directory or a Hub snapshot), as the
 * `datasets` library (5.x, data_files.py + load.py) resolves them: the README's YAML `configs:`
 * (config_name, data_files, data_dir, default), else its default patterns: `data/<split>-NNNNN-of-NNNNN.*`
 * shards, then split-named folders (`train/`, `test/`, `validation/`, ...), then split-named files
 * (`train.jsonl`, `my_test-0.parquet`), then every file as train. Hidden files and folders
 * (`.x`, `__x`) and README.md / dataset_info.json are skipped; the most common data extension picks
 * the builder (parquet wins a tie), and only its files are kept.
 *
 * @example resolveDataFiles('/cache/datasets--trl-lib--ultrafeedback_binarized/snapshots/abc', {})
 *   // → { config: null, splits: Map { 'train' => ['.../data/train-00000-of-00001.parquet'], 'test' => [...] }, builder: 'parquet' }
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DpoError } from '../errors.js';

/** TRL's DatasetConfig.data_files / load_dataset's data_files: a pattern, a list, {split: patterns}, or [{split, path}]. */
export type DataFilesSpec = string | string[] | Record<string, string | string[]> | { split: string; path: string | string[] }[];

export interface ResolvedDataFiles {
  /** The YAML config used (null: no `configs:` in the README). */
  config: string | null;
  /** Split → files in datasets' order. */
  splits: Map<string, string[]>;
  /** The builder the extensions chose: 'parquet' or 'json'. */
  builder: string;
}

const SPLIT_KEYWORDS: [string, string[]][] = [
  ['train', ['train', 'training']],
  ['validation', ['validation', 'valid', 'dev', 'val']],
  ['test', ['test', 'testing', 'eval', 'evaluation']],
];
const DEFAULT_SPLITS = SPLIT_KEYWORDS.map(([s]) => s);
const SEP = '[-._ 0-9]';
const IN_DIR = ['**/{k}/**', `**/{k}${SEP}*/**`, `**/*${SEP}{k}/**`, `**/*${SEP}{k}${SEP}*/**`];
const IN_FILENAME = [`**/{k}${SEP}*`, `**/*${SEP}{k}${SEP}*`];
const SHARDED = 'data/*-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*';
const FILES_TO_IGNORE = ['README.md', 'config.json', 'dataset_info.json', 'dataset_infos.json', 'dummy_data.zip', 'dataset_dict.json'];
/** Data extensions datasets knows (so the pattern search sees what it sees); json, parquet and arrow (IPC streams) are read here. */
const EXT_TO_BUILDER: Record<string, string> = {
  '.parquet': 'parquet', '.json': 'json', '.jsonl': 'json', '.csv': 'csv', '.tsv': 'csv', '.txt': 'text', '.arrow': 'arrow',
  '.lance': 'lance', '.xml': 'xml', '.hdf5': 'hdf5', '.h5': 'hdf5', '.eval': 'eval', '.zip': 'zip',
};
const READABLE = new Set(['parquet', 'json', 'arrow']);

/** A glob as fsspec ≥ 2023.12 reads it: `*` within a name, `**` as a whole segment = any number of folders. */
export function globToRegExp(pattern: string): RegExp {
  const parts = pattern.split('/');
  let re = '';
  parts.forEach((p, i) => {
    const last = i === parts.length - 1;
    if (p === '**') {
      re += last ? '.*' : '(?:[^/]+/)*';
      return;
    }
    let j = 0;
    while (j < p.length) {
      const c = p[j];
      if (c === '*') {
        re += '[^/]*';
        while (p[j + 1] === '*') j++;
      } else if (c === '?') re += '[^/]';
      else if (c === '[') {
        const end = p.indexOf(']', j + 2);
        if (end < 0) re += '\\[';
        else {
          let body = p.slice(j + 1, end);
          if (body.startsWith('!')) body = `^${body.slice(1)}`;
          re += `[${body.replace(/\\/g, '\\\\')}]`;
          j = end;
        }
      } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
      j++;
    }
    if (!last) re += '/';
  });
  return new RegExp(`^${re}$`);
}

/** Every file under `base` (relative, '/'-separated, sorted), following symlinked files as the hub cache's snapshots hold them. */
function walk(base: string): string[] {
  const out: string[] = [];
  const visit = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue; // a dangling symlink (blob not downloaded)
      }
      if (st.isDirectory()) visit(p);
      else if (st.isFile()) out.push(relative(base, p).split(sep).join('/'));
    }
  };
  if (existsSync(base)) visit(base);
  return out.sort();
}

/** Hidden (`.x`) and special (`__x`) names are skipped unless the pattern names them, as datasets' resolve_pattern. */
function hiddenUnrequested(file: string, pattern: string): boolean {
  const asks = (prefix: string) => pattern.split('/').some((s) => s.startsWith(prefix));
  return file.split('/').some((s) => (s.startsWith('.') && !asks('.')) || (s.startsWith('__') && !asks('__')));
}

const extsOf = (file: string) => file.split('/').pop()!.split('.').slice(1).map((x) => `.${x.toLowerCase()}`);
const isData = (file: string) => extsOf(file).some((e) => e in EXT_TO_BUILDER);

/** The files of `base` a pattern matches (sorted), skipping ignored, hidden and non-data files. */
function resolvePattern(files: string[], pattern: string): string[] {
  const re = globToRegExp(pattern.replace(/^\.\//, ''));
  const ignore = new Set(FILES_TO_IGNORE.filter((f) => f !== pattern.split('/').pop()));
  return files.filter((f) => re.test(f) && !ignore.has(f.split('/').pop()!) && !hiddenUnrequested(f, pattern) && isData(f));
}

/** datasets' get_data_patterns: split → patterns, from the first rule that finds files. */
function defaultPatterns(files: string[], where: string): Record<string, string[]> {
  const shards = resolvePattern(files, SHARDED);
  if (shards.length) {
    const found = new Set(shards.map((f) => /^(.+)-[0-9]{5}-of-[0-9]{5}/.exec(f.split('/').pop()!)![1]));
    const order = [...DEFAULT_SPLITS.filter((s) => found.has(s)), ...[...found].filter((s) => !DEFAULT_SPLITS.includes(s)).sort()];
    return Object.fromEntries(order.map((s) => [s, [SHARDED.replace('*-', `${s}-`)]]));
  }
  for (const rules of [IN_DIR, IN_FILENAME]) {
    const out: Record<string, string[]> = {};
    for (const [split, keywords] of SPLIT_KEYWORDS) {
      const patterns = keywords.flatMap((k) => rules.map((r) => r.replace('{k}', k)));
      if (patterns.some((p) => resolvePattern(files, p).length)) out[split] = patterns;
    }
    if (Object.keys(out).length) return out;
  }
  if (resolvePattern(files, '**').length) return { train: ['**'] };
  throw new DpoError(`${where}: no data files (.parquet, .jsonl, .json) found`);
}

/** load_dataset's data_files forms → split → patterns (a plain pattern or list is the train split). */
function sanitizePatterns(spec: DataFilesSpec, where: string): Record<string, string[]> {
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String) : [String(v)]);
  if (typeof spec === 'string') return { train: [spec] };
  if (Array.isArray(spec)) {
    if (spec.some((x) => x && typeof x === 'object')) {
      const out: Record<string, string[]> = {};
      for (const x of spec as unknown[]) {
        const e = x as { split?: unknown; path?: unknown };
        if (!e || typeof e !== 'object' || typeof e.split !== 'string' || e.path === undefined) throw new DpoError(`${where}: data_files entries must be {split, path}, got ${JSON.stringify(x)}`);
        out[e.split] = list(e.path);
      }
      return out;
    }
    return { train: list(spec) };
  }
  if (spec && typeof spec === 'object') return Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, list(v)]));
  throw new DpoError(`${where}: data_files must be a pattern, a list of patterns or {split: patterns}, got ${JSON.stringify(spec)}`);
}

interface YamlConfig {
  config_name: string;
  data_files?: DataFilesSpec;
  data_dir?: string;
  default?: boolean;
}

/** The README's YAML front matter `configs:` list (empty when there is none). */
export function readmeConfigs(root: string, where: string): YamlConfig[] {
  const readme = join(root, 'README.md');
  if (!existsSync(readme)) return [];
  const m = /^---\r?\n([\s\S]*?)\r?\n---(?:\r?\n|$)/.exec(readFileSync(readme, 'utf8'));
  if (!m) return [];
  let meta: unknown;
  try {
    meta = parseYaml(m[1]);
  } catch (e) {
    throw new DpoError(`${readme}: the YAML header does not parse (${(e as Error).message})`);
  }
  const configs = (meta as Record<string, unknown> | null)?.configs;
  if (configs === undefined || configs === null) return [];
  if (!Array.isArray(configs)) throw new DpoError(`${readme}: configs must be a list in the YAML header (${where})`);
  for (const c of configs) {
    if (!c || typeof c !== 'object' || typeof (c as YamlConfig).config_name !== 'string') throw new DpoError(`${readme}: each entry of configs needs a config_name (${where})`);
  }
  return configs as YamlConfig[];
}

/** MetadataConfigs.get_default_config_name: the only config, the one named default, or the one marked default: true. */
function defaultConfig(configs: YamlConfig[], readme: string): YamlConfig | null {
  const d = configs.filter((c) => configs.length === 1 || c.config_name === 'default' || c.default);
  if (d.length > 1) throw new DpoError(`${readme}: several default configs (${d.map((c) => c.config_name).join(', ')})`);
  return d[0] ?? null;
}

export interface DataFilesOptions {
  /** The config (subset) name: TRL's dataset_config / DatasetConfig.name. */
  name?: string | null;
  dataDir?: string | null;
  dataFiles?: DataFilesSpec | null;
}

/** The files of each split of the dataset folder `root` (see the file comment). */
export function resolveDataFiles(root: string, opts: DataFilesOptions = {}, where = root): ResolvedDataFiles {
  const configs = readmeConfigs(root, where);
  let config: YamlConfig | null = null;
  if (configs.length) {
    const names = configs.map((c) => c.config_name);
    if (opts.name) {
      config = configs.find((c) => c.config_name === opts.name) ?? null;
      if (!config) throw new DpoError(`${where}: no configuration "${opts.name}"; its README declares ${names.join(', ')} (choose one with --dataset_config)`);
    } else {
      config = defaultConfig(configs, join(root, 'README.md'));
      if (!config) throw new DpoError(`${where}: several configurations and none is the default; choose one with --dataset_config (${names.join(', ')})`);
    }
  } else if (opts.name && opts.name !== 'default') {
    throw new DpoError(`${where}: no configuration "${opts.name}" (its README declares no configs; the only one is "default"); drop --dataset_config`);
  }
  const dataDir = opts.dataDir ?? config?.data_dir ?? null;
  const base = dataDir ? join(root, dataDir) : root;
  const label = dataDir ? `${where} (data_dir ${dataDir})` : where;
  if (dataDir && !existsSync(base)) throw new DpoError(`${label}: folder ${dataDir} not found`);
  const files = walk(base);
  const spec = opts.dataFiles ?? (dataDir && opts.dataDir ? null : config?.data_files) ?? null;
  const patterns = spec !== null ? sanitizePatterns(spec, label) : defaultPatterns(files, label);
  const splits = new Map<string, string[]>();
  for (const [split, pats] of Object.entries(patterns)) {
    const found: string[] = [];
    for (const p of pats) {
      const hit = resolvePattern(files, p);
      if (!hit.length && !/[*?[]/.test(p)) throw new DpoError(`${label}: data file ${p} not found`);
      for (const f of hit) found.push(f);
    }
    splits.set(split, found);
  }
  const builder = inferBuilder([...splits.values()].flat(), label);
  for (const [split, fs] of splits) splits.set(split, fs.filter((f) => extsOf(f).some((e) => EXT_TO_BUILDER[e] === builder)).map((f) => join(base, f)));
  for (const [split, fs] of splits) if (!fs.length) splits.delete(split);
  if (!splits.size) throw new DpoError(`${label}: no data files match ${JSON.stringify(patterns)}`);
  return { config: config?.config_name ?? null, splits, builder };
}

/** infer_module_for_data_files_list: the most common extension (parquet, then jsonl, json on a draw). */
function inferBuilder(files: string[], where: string): string {
  const count = new Map<string, number>();
  for (const f of files) for (const e of extsOf(f)) if (e in EXT_TO_BUILDER) count.set(e, (count.get(e) ?? 0) + 1);
  const rank = (e: string) => ['.csv', '.json', '.jsonl', '.arrow', '.lance', '.parquet'].indexOf(e);
  const best = [...count].sort((x, y) => y[1] - x[1] || rank(y[0]) - rank(x[0]) || (y[0] < x[0] ? -1 : 1))[0]?.[0];
  if (!best) throw new DpoError(`${where}: no data files (.parquet, .jsonl, .json) found`);
  const builder = EXT_TO_BUILDER[best];
  if (!READABLE.has(builder)) throw new DpoError(`${where}: the data files are ${best} (datasets' ${builder} builder), which dpo train does not read; convert them to .parquet or .jsonl`);
  return builder;
}
