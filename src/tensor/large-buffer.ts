/**
 * Fresh float32 buffers of 256 KB and more from the native addon's allocLarge: zero-filled anonymous
 * memory on 2 MB pages where the kernel allows (transparent huge pages in "madvise" mode, Debian's
 * default), unmapped when garbage-collected. On a VM a 4 KB page fault costs ~5 µs; filling a 1.5B
 * model's float32 weights touched 1.5 M fresh pages (~8 s of its 8 s load), 512× fewer on huge
 * pages. A plain Float32Array without the addon, with DPO_NO_MMAP=1, or below 256 KB.
 *
 * `discardLarge` gives such a buffer's memory back at once: the GC's unmapping waits for the event
 * loop, which a training step does not turn between its micro-batches. The threshold is low so
 * that the activations the buffer pool lets go of are such buffers: a 0.5B model's hidden states
 * (896 floats a token) are 3 MB a micro-batch, and as plain arrays they stayed resident until a GC
 * (0.5B, gradient accumulation 8, no checkpointing: peak 2.60 GB, 2.47 GB with the low threshold).
 */
import { loadNativeBackend } from '../backend/native/index.js';
import type { Backend } from '../backend/types.js';

const LARGE_BYTES = 256 << 10;

let native: Pick<Backend, 'allocLarge' | 'discardLarge'> | null | undefined;
/** The ArrayBuffers allocLarge made: only these may be discarded. */
const blocks = new WeakSet<ArrayBufferLike>();

function addon(): Pick<Backend, 'allocLarge' | 'discardLarge'> | null {
  if (native === undefined) {
    const b = process.env.DPO_NO_MMAP === '1' ? null : loadNativeBackend().backend;
    native = b?.allocLarge ? b : null;
  }
  return native;
}

export function largeFloat32(n: number): Float32Array {
  if (n * 4 < LARGE_BYTES) return new Float32Array(n);
  const b = addon();
  if (!b?.allocLarge) return new Float32Array(n);
  const ab = b.allocLarge(n * 4);
  blocks.add(ab);
  return new Float32Array(ab);
}

/**
 * Returns the memory of a buffer largeFloat32 made to the kernel now (no-op for any other buffer).
 * The caller must hold the only use of it: a later read gives zeros.
 */
export function discardLarge(buf: Float32Array): void {
  if (!blocks.has(buf.buffer)) return;
  blocks.delete(buf.buffer);
  addon()?.discardLarge?.(buf.buffer as ArrayBuffer);
}
