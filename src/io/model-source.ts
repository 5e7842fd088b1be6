/**
 * Where a model argument points: a local directory, or a Hugging Face model id resolved offline
 * from the HF cache ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub). Nothing is downloaded.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DpoError } from '../errors.js';

export function hubCacheDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  if (env.HF_HUB_CACHE) dirs.push(env.HF_HUB_CACHE);
  if (env.HUGGINGFACE_HUB_CACHE) dirs.push(env.HUGGINGFACE_HUB_CACHE);
  if (env.HF_HOME) dirs.push(join(env.HF_HOME, 'hub'));
  dirs.push(join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface', 'hub'));
  return [...new Set(dirs)];
}

/** Resolves `org/name` (optionally `@revision`) in a hub cache; null when absent. */
function fromCache(cache: string, id: string, revision: string | null): string | null {
  const repo = join(cache, `models--${id.replace(/\//g, '--')}`);
  const snaps = join(repo, 'snapshots');
  if (!existsSync(snaps)) return null;
  let rev = revision ?? 'main';
  const ref = join(repo, 'refs', rev);
  if (existsSync(ref)) rev = readFileSync(ref, 'utf8').trim();
  if (existsSync(join(snaps, rev))) return join(snaps, rev);
  if (revision) return null;
  // No refs/main: take the most recently written snapshot.
  const all = readdirSync(snaps).map((s) => join(snaps, s)).filter((p) => statSync(p).isDirectory());
  all.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return all[0] ?? null;
}

/** The directory holding config.json for `nameOrPath`; a DpoError saying where it looked otherwise. */
export function resolveModelDir(nameOrPath: string, env: NodeJS.ProcessEnv = process.env): string {
  const local = resolve(nameOrPath);
  if (existsSync(local) && statSync(local).isDirectory()) {
    if (!existsSync(join(local, 'config.json'))) throw new DpoError(`${local}: no config.json in this directory; point --model_name_or_path at a Hugging Face model folder`);
    return local;
  }
  const [id, revision] = nameOrPath.split('@');
  const looked = [local];
  if (/^[\w.-]+\/[\w.-]+$/.test(id)) {
    for (const cache of hubCacheDirs(env)) {
      const dir = fromCache(cache, id, revision ?? null);
      looked.push(join(cache, `models--${id.replace(/\//g, '--')}`));
      if (dir && existsSync(join(dir, 'config.json'))) return dir;
    }
  }
  throw new DpoError(`model "${nameOrPath}" not found; looked in ${looked.join(', ')}. Downloads are not possible here: pass a local model directory (config.json + *.safetensors + tokenizer.json)`);
}
