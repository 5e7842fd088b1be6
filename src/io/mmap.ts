/**
 * Read-only memory maps of whole files (the native addon's mapFile: an external ArrayBuffer that
 * is unmapped when garbage-collected). Node has no mmap of its own; without the addon, or with
 * DPO_NO_MMAP=1, or for a file larger than an ArrayBuffer can be, mapFile returns null and callers
 * read into fresh buffers instead.
 *
 * @example
 * const buf = mapFile('model.safetensors'); // ArrayBuffer | null
 */
import { statSync } from 'node:fs';
import { constants } from 'node:buffer';
import { loadNativeBackend } from '../backend/native/index.js';

export function mapFile(path: string): ArrayBuffer | null {
  if (process.env.DPO_NO_MMAP === '1') return null;
  // An ArrayBuffer holds at most buffer.constants.MAX_LENGTH bytes (4 GiB on Node 20): a larger
  // file (an unsharded 3B bf16 checkpoint, 6.2 GB) is read instead (mapping it aborted the process).
  if (statSync(path).size > constants.MAX_LENGTH) return null;
  const b = loadNativeBackend().backend;
  return b?.mapFile ? b.mapFile(path) : null;
}
