/**
 * Read-only memory maps of whole files (the native addon's mapFile: an external ArrayBuffer that
 * is unmapped when garbage-collected). Node has no mmap of its own; without the addon, or with
 * DPO_NO_MMAP=1, mapFile returns null and callers read into fresh buffers instead.
 *
 * @example
 * const buf = mapFile('model.safetensors'); // ArrayBuffer | null
 */
import { loadNativeBackend } from '../backend/native/index.js';

export function mapFile(path: string): ArrayBuffer | null {
  if (process.env.DPO_NO_MMAP === '1') return null;
  const b = loadNativeBackend().backend;
  return b?.mapFile ? b.mapFile(path) : null;
}
