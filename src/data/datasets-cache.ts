/**
 * The `datasets` library's own processed cache, as its offline `load_dataset("org/name")` reads it
 * (packaged_modules/cache): `<root>/org___snake_name/<config>/<version>/<hash>/` with
 * dataset_info.json (its config_name equal to the folder's) and `<name>-<split>.arrow` (or
 * `-<split>-NNNNN-of-NNNNN.arrow` shards); the newest hash folder wins. Roots: $HF_DATASETS_CACHE,
 * $HF_HOME/datasets, ~/.cache/huggingface/datasets.
 *
 * @example fromDatasetsCache('trl-lib/ultrafeedback_binarized', null) // { dir, config: 'default', splits: Map { 'train' => [...arrow] } }
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DpoError } from '../errors.js';

/** datasets' camelcase_to_snakecase (its cache folder names). */
export function snakeCase(name: string): string {
  return name.replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2').replace(/([a-z\d])([A-Z])/g, '$1_$2').toLowerCase();
}

export function datasetsCacheDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME || homedir();
  const dirs = [env.HF_DATASETS_CACHE, env.HF_HOME && join(env.HF_HOME, 'datasets'), env.XDG_CACHE_HOME && join(env.XDG_CACHE_HOME, 'huggingface', 'datasets'), join(home, '.cache', 'huggingface', 'datasets')];
  return [...new Set(dirs.filter((d): d is string => !!d).map((d) => resolve(d)))];
}

/** The folder of `repoId` in each cache root (whether or not it exists). */
export function datasetsCacheFolders(repoId: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const parts = repoId.split('/');
  parts[parts.length - 1] = snakeCase(parts[parts.length - 1]);
  return datasetsCacheDirs(env).map((d) => join(d, parts.join('___')));
}

const subdirs = (d: string) => (existsSync(d) ? readdirSync(d).filter((x) => statSync(join(d, x)).isDirectory()) : []);

export interface CachedDataset {
  dir: string;
  config: string;
  splits: Map<string, string[]>;
}

/** The processed cache of `repoId` (config `name`, or the only one), or null when none is cached. */
export function fromDatasetsCache(repoId: string, name: string | null, env: NodeJS.ProcessEnv = process.env, where = repoId): CachedDataset | null {
  for (const root of datasetsCacheFolders(repoId, env)) {
    const found: { dir: string; config: string; mtime: number }[] = [];
    for (const config of subdirs(root)) {
      for (const version of subdirs(join(root, config))) {
        for (const hash of subdirs(join(root, config, version))) {
          const dir = join(root, config, version, hash);
          const info = join(dir, 'dataset_info.json');
          if (!existsSync(info)) continue;
          try {
            if ((JSON.parse(readFileSync(info, 'utf8')) as { config_name?: string }).config_name !== config) continue;
          } catch {
            continue;
          }
          found.push({ dir, config, mtime: statSync(dir).mtimeMs });
        }
      }
    }
    if (!found.length) continue;
    const configs = [...new Set(found.map((f) => f.config))].sort();
    const mine = name ? found.filter((f) => f.config === name) : found;
    if (!mine.length) throw new DpoError(`${where}: the datasets cache ${root} has no configuration "${name}"; it has ${configs.join(', ')} (choose one with --dataset_config)`);
    if (!name && configs.length > 1) throw new DpoError(`${where}: the datasets cache ${root} holds several configurations (${configs.join(', ')}); choose one with --dataset_config`);
    const best = mine.sort((a, b) => b.mtime - a.mtime)[0];
    const info = JSON.parse(readFileSync(join(best.dir, 'dataset_info.json'), 'utf8')) as { splits?: Record<string, unknown> };
    const files = readdirSync(best.dir).filter((f) => f.endsWith('.arrow')).sort();
    const splits = new Map<string, string[]>();
    for (const split of Object.keys(info.splits ?? {})) {
      const esc = split.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const re = new RegExp(`-${esc}(?:-\\d{5}-of-\\d{5})?\\.arrow$`);
      const mineFiles = files.filter((f) => re.test(f)).map((f) => join(best.dir, f));
      if (mineFiles.length) splits.set(split, mineFiles);
    }
    if (!splits.size) throw new DpoError(`${where}: the datasets cache ${best.dir} lists no split with .arrow files`);
    return { dir: best.dir, config: best.config, splits };
  }
  return null;
}
