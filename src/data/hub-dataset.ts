/**
 * `--dataset_name` as `datasets.load_dataset` reads it, offline: a local file (used whole), a local
 * dataset folder, or a Hugging Face Hub id resolved in the hub cache
 * (`datasets--org--name/snapshots/<commit>/`, the commit from `refs/<revision>`; roots as
 * huggingface_hub: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub), else in the datasets
 * library's processed Arrow cache (datasets-cache.ts). The splits of a folder
 * come from data-files.ts (README `configs:`, split file names). Nothing is downloaded: a missing id
 * says where it looked and how to fetch it.
 *
 * @example
 * const ds = resolveDataset({ path: 'trl-lib/ultrafeedback_binarized' });
 * const rows = await readSplit(ds, 'train');
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DpoError } from '../errors.js';
import { fromCache, hubCacheDirs, hubRepoFolder, parseModelId } from '../io/model-source.js';
import { resolveDataFiles, type DataFilesSpec } from './data-files.js';
import { datasetsCacheFolders, fromDatasetsCache } from './datasets-cache.js';
import { readFiles, loadRows, type Row } from './load.js';

export interface DatasetSpec {
  /** A file, a dataset folder or a Hub id (TRL's dataset_name / DatasetConfig.path). */
  path: string;
  /** The configuration (subset): TRL's dataset_config / DatasetConfig.name. */
  name?: string | null;
  dataDir?: string | null;
  dataFiles?: DataFilesSpec | null;
  /** Branch, tag or commit of a Hub id (refs/<revision> in the cache); default main. */
  revision?: string | null;
}

export interface ResolvedDataset {
  /** What was asked for, for messages. */
  label: string;
  /** A single data file (every split is the whole file), or the files of each split. */
  file: string | null;
  splits: Map<string, string[]>;
  /** For a Hub id: the snapshot folder and its commit. */
  snapshot?: { dir: string; commit: string; repoId: string };
  /** For a Hub id found only in the datasets library's processed cache: that folder. */
  processed?: string;
  config: string | null;
}

const isLocalLike = (p: string) => p.startsWith('.') || p.startsWith('/') || p.startsWith('~') || /\.(jsonl?|ndjson|parquet)$/i.test(p);

/** Resolves a data set (see the file comment); a DpoError names every place it looked. */
export function resolveDataset(spec: DatasetSpec, env: NodeJS.ProcessEnv = process.env, where = 'dpo train'): ResolvedDataset {
  const home = env.HOME || homedir();
  const local = resolve(spec.path.startsWith('~/') ? join(home, spec.path.slice(2)) : spec.path);
  const revision = spec.revision && spec.revision !== 'main' ? spec.revision : null;
  if (existsSync(local)) {
    if (revision) throw new DpoError(`${where}: dataset_revision ${revision}: ${spec.path} is a local path, which has no revisions; drop --dataset_revision or pass the data set's Hub id`);
    if (!statSync(local).isDirectory()) {
      if (spec.name || spec.dataDir || spec.dataFiles) throw new DpoError(`${where}: ${spec.path} is a single file; dataset_config / data_dir / data_files need a dataset folder or Hub id`);
      return { label: spec.path, file: local, splits: new Map(), config: null };
    }
    const r = resolveDataFiles(local, spec, spec.path);
    return { label: spec.path, file: null, splits: r.splits, config: r.config };
  }
  const id = isLocalLike(spec.path) ? null : parseModelId(spec.path);
  if (!id || id.revision) {
    throw new DpoError(`${spec.path}: data file or directory not found${id?.revision ? ' (give a Hub revision with --dataset_revision, not @)' : ''}; pass a .jsonl/.json/.parquet file, a dataset folder or a Hub id in your HF cache`);
  }
  const looked: string[] = [local];
  const problems: string[] = [];
  for (const cache of hubCacheDirs(env)) {
    looked.push(join(cache, hubRepoFolder(id.repoId, 'dataset')));
    const hit = fromCache(cache, id.repoId, revision, 'dataset');
    if (!hit) continue;
    if ('missing' in hit) {
      problems.push(hit.missing);
      continue;
    }
    const label = `${id.repoId}${revision ? `@${revision}` : ''}`;
    const r = resolveDataFiles(hit.dir, spec, `${label} (${hit.dir})`);
    return { label, file: null, splits: r.splits, config: r.config, snapshot: { ...hit, repoId: id.repoId } };
  }
  // The datasets library's processed Arrow cache (what load_dataset itself reads offline); it has no revisions or data_files.
  if (!revision && !spec.dataDir && !spec.dataFiles) {
    const c = fromDatasetsCache(id.repoId, spec.name ?? null, env, `${where}: ${id.repoId}`);
    if (c) return { label: id.repoId, file: null, splits: c.splits, config: c.config, processed: c.dir };
  }
  looked.push(...datasetsCacheFolders(id.repoId, env));
  const why = problems.length ? ` (${problems.join('; ')})` : '';
  throw new DpoError(
    `${where}: data set "${spec.path}" not found; looked in ${looked.join(', ')}${why}. Nothing is downloaded: fetch it with \`huggingface-cli download --repo-type dataset ${id.repoId}${revision ? ` --revision ${revision}` : ''}\` (or set HF_HOME / HF_HUB_CACHE to a cache that holds it)`,
  );
}

/** Rows of one split; a single file is every split. `flag` names the option that chose the split (for the error). */
export async function readSplit(ds: ResolvedDataset, split: string, flag = '--dataset_train_split'): Promise<Row[]> {
  if (ds.file) return loadRows(ds.file);
  const files = ds.splits.get(split);
  if (!files) throw new DpoError(`${ds.label}: no "${split}" split${ds.config ? ` in configuration ${ds.config}` : ''}; found splits ${[...ds.splits.keys()].sort().join(', ')} (choose one with ${flag})`);
  return readFiles(files);
}
