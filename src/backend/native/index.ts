/**
 * Loads the native addon (native/build/Release/dpo_native.node) and wraps it as a Backend.
 * Returns the reason instead of throwing when it is not built, so the caller can fall back to ref.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../types.js';
import { makeNativeBackend, type NativeAddon } from './kernels.js';

let cached: { backend: Backend | null; error: string } | null = null;

function findRoot(): string {
  // Works from src/ (tsx) and dist/src/ (compiled): walk up to the folder holding package.json.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return dir;
}

export function loadNativeBackend(): { backend: Backend | null; error: string } {
  if (cached) return cached;
  const path = process.env.DPO_NATIVE_PATH ?? join(findRoot(), 'native', 'build', 'Release', 'dpo_native.node');
  if (!existsSync(path)) return (cached = { backend: null, error: `${path} not found` });
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    return (cached = { backend: makeNativeBackend(addon), error: '' });
  } catch (e) {
    return (cached = { backend: null, error: `failed to load ${path}: ${(e as Error).message}` });
  }
}
