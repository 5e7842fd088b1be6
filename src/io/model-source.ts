/**
 * Where a model argument points: a local directory, or a Hugging Face model id (`org/name`,
 * optionally `@revision`) resolved offline from the HF cache, where huggingface_hub stores
 * `models--org--name/{refs/<branch>, snapshots/<commit>/...}`. Nothing is downloaded.
 * Cache roots, in huggingface_hub's order: $HF_HUB_CACHE (or legacy $HUGGINGFACE_HUB_CACHE),
 * $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub; all are searched.
 *
 * @example
 * resolveModelDir('./my-model');                 // the directory itself
 * resolveModelDir('Qwen/Qwen3-0.6B');            // ~/.cache/huggingface/hub/models--Qwen--Qwen3-0.6B/snapshots/<sha>
 * resolveModelDir('Qwen/Qwen3-0.6B@abc123');     // a given branch, tag or commit
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DpoError } from '../errors.js';

export interface ModelSource {
  /** The directory holding config.json. */
  dir: string;
  kind: 'local' | 'hf-cache';
  /** For the HF cache: the model id, the revision asked for and the snapshot (commit) used. */
  repoId?: string;
  revision?: string;
  commit?: string;
}

export function hubCacheDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  const home = env.HOME || homedir();
  if (env.HF_HUB_CACHE) dirs.push(env.HF_HUB_CACHE);
  if (env.HUGGINGFACE_HUB_CACHE) dirs.push(env.HUGGINGFACE_HUB_CACHE);
  if (env.HF_HOME) dirs.push(join(env.HF_HOME, 'hub'));
  if (env.XDG_CACHE_HOME) dirs.push(join(env.XDG_CACHE_HOME, 'huggingface', 'hub'));
  dirs.push(join(home, '.cache', 'huggingface', 'hub'));
  return [...new Set(dirs.map((d) => resolve(expandHome(d, home))))];
}

function expandHome(p: string, home: string): string {
  return p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : p;
}

const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** The model id (`org/name` or a legacy bare `name`) and revision in `arg`, or null if it is not one. */
export function parseModelId(arg: string): { repoId: string; revision: string | null } | null {
  const m = /^([A-Za-z0-9][\w.-]*(?:\/[\w.-]+)?)(?:@([\w./-]+))?$/.exec(arg);
  if (!m) return null;
  const [, repoId, revision] = m;
  if (repoId.split('/').some((p) => p === '.' || p === '..' || p.includes('--') || p.endsWith('.'))) return null;
  if (revision && revision.split('/').some((p) => p === '' || p === '.' || p === '..')) return null;
  return { repoId, revision: revision ?? null };
}

/** The cache folder of a repo: `models--org--name` or `datasets--org--name`, as huggingface_hub names them. */
export function hubRepoFolder(repoId: string, repoType: 'model' | 'dataset' = 'model'): string {
  return `${repoType}s--${repoId.replace(/\//g, '--')}`;
}

/**
 * Resolves a repo in one cache root: the snapshot for `revision` (a ref or a commit), else refs/main,
 * else the only/newest snapshot; null when the cache has no such repo.
 */
export function fromCache(cache: string, repoId: string, revision: string | null, repoType: 'model' | 'dataset' = 'model'): { dir: string; commit: string } | { missing: string } | null {
  const repo = join(cache, hubRepoFolder(repoId, repoType));
  const snaps = join(repo, 'snapshots');
  if (!isDir(snaps)) return null;
  const refFile = join(repo, 'refs', revision ?? 'main');
  let commit: string | null = null;
  if (existsSync(refFile)) commit = readFileSync(refFile, 'utf8').trim();
  else if (revision) commit = revision; // a commit hash names the snapshot directly
  if (commit && !/^[\w.-]+$/.test(commit)) return { missing: `"${commit}" (from ${existsSync(refFile) ? refFile : 'the revision'}) is not a snapshot name` };
  if (commit && commit !== '.' && commit !== '..' && isDir(join(snaps, commit))) return { dir: join(snaps, commit), commit };
  if (revision) return { missing: `${repo} has no snapshot for revision "${revision}"` };
  // No usable refs/main: the only snapshot, else the most recently modified one.
  const all = readdirSync(snaps).filter((s) => isDir(join(snaps, s)));
  if (!all.length) return { missing: `${snaps} is empty` };
  all.sort((a, b) => statSync(join(snaps, b)).mtimeMs - statSync(join(snaps, a)).mtimeMs);
  return { dir: join(snaps, all[0]), commit: all[0] };
}

/** Resolves `nameOrPath` to a model directory with config.json; a DpoError lists where it looked. */
export function resolveModelSource(nameOrPath: string, env: NodeJS.ProcessEnv = process.env): ModelSource {
  const home = env.HOME || homedir();
  const local = resolve(expandHome(nameOrPath, home));
  if (existsSync(local)) {
    if (!isDir(local)) throw new DpoError(`${local}: is a file; pass the model directory that holds config.json and the weights`);
    if (!existsSync(join(local, 'config.json'))) throw new DpoError(`${local}: no config.json in this directory; point at a Hugging Face model folder (config.json + *.safetensors + tokenizer files)`);
    return { dir: local, kind: 'local' };
  }
  const looked = [local];
  const problems: string[] = [];
  const id = nameOrPath.startsWith('.') || nameOrPath.startsWith('/') || nameOrPath.startsWith('~') ? null : parseModelId(nameOrPath);
  if (id) {
    for (const cache of hubCacheDirs(env)) {
      looked.push(join(cache, hubRepoFolder(id.repoId)));
      const hit = fromCache(cache, id.repoId, id.revision);
      if (!hit) continue;
      if ('missing' in hit) {
        problems.push(hit.missing);
        continue;
      }
      if (!existsSync(join(hit.dir, 'config.json'))) {
        problems.push(`${hit.dir} has no config.json (incomplete download?)`);
        continue;
      }
      return { dir: hit.dir, kind: 'hf-cache', repoId: id.repoId, revision: id.revision ?? 'main', commit: hit.commit };
    }
  }
  const why = problems.length ? ` (${problems.join('; ')})` : '';
  throw new DpoError(
    `model "${nameOrPath}" not found; looked in ${looked.join(', ')}${why}. Downloads are not possible here: pass a local model directory (config.json + *.safetensors + tokenizer.json), or set HF_HOME / HF_HUB_CACHE to a cache that holds it`,
  );
}

/** The directory holding config.json for `nameOrPath` (see resolveModelSource). */
export function resolveModelDir(nameOrPath: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolveModelSource(nameOrPath, env).dir;
}
