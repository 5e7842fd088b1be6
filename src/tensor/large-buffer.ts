/**
 * Fresh float32 buffers of 4 MB and more from the native addon's allocLarge: zero-filled anonymous
 * memory on 2 MB pages where the kernel allows (transparent huge pages in "madvise" mode, Debian's
 * default), unmapped when garbage-collected. On a VM a 4 KB page fault costs ~5 µs; filling a 1.5B
 * model's float32 weights touched 1.5 M fresh pages (~8 s of its 8 s load), 512× fewer on huge
 * pages. A plain Float32Array without the addon, with DPO_NO_MMAP=1, or below 4 MB.
 */
import { loadNativeBackend } from '../backend/native/index.js';

const LARGE_BYTES = 4 << 20;

let alloc: ((bytes: number) => ArrayBuffer) | null | undefined;

export function largeFloat32(n: number): Float32Array {
  if (n * 4 < LARGE_BYTES) return new Float32Array(n);
  if (alloc === undefined) {
    const b = process.env.DPO_NO_MMAP === '1' ? null : loadNativeBackend().backend;
    alloc = b?.allocLarge ? b.allocLarge.bind(b) : null;
  }
  return alloc ? new Float32Array(alloc(n * 4)) : new Float32Array(n);
}
