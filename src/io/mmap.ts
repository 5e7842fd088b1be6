/**
 * Read-only memory maps of files (the native addon's mapFile: an external ArrayBuffer that is
 * unmapped when garbage-collected). Node has no mmap of its own; without the addon, or with
 * DPO_NO_MMAP=1, these return null and callers read into fresh buffers instead.
 *
 * @example
 * const buf = mapFile('model.safetensors'); // ArrayBuffer | null (null also for a file over 4 GiB)
 * const t = mapRange('model.safetensors', 4096, 1 << 20); // one tensor's bytes, any file size
 */
import { statSync } from 'node:fs';
import { constants } from 'node:buffer';
import { loadNativeBackend } from '../backend/native/index.js';

export function mapFile(path: string): ArrayBuffer | null {
  // An ArrayBuffer holds at most buffer.constants.MAX_LENGTH bytes (4 GiB on Node 20): a larger
  // file (an unsharded 3B bf16 checkpoint, 6.2 GB; Llama-3.2-3B's 5 GB first shard) is mapped a
  // range at a time with mapRange instead (mapping it whole aborted the process).
  if (statSync(path).size > constants.MAX_LENGTH) return null;
  const map = nativeMap();
  return map ? map(path) : null;
}

/** The bytes [offset, offset + length) of a file, mapped read-only; null as for mapFile. */
export function mapRange(path: string, offset: number, length: number): ArrayBuffer | null {
  if (length > constants.MAX_LENGTH) return null;
  const map = nativeMap();
  return map ? map(path, offset, length) : null;
}

function nativeMap(): ((path: string, offset?: number, length?: number) => ArrayBuffer) | null {
  if (process.env.DPO_NO_MMAP === '1') return null;
  const b = loadNativeBackend().backend;
  return b?.mapFile ? b.mapFile.bind(b) : null;
}
