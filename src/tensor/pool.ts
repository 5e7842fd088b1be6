/**
 * A buffer pool with scopes. A training step allocates the same set of activation and gradient
 * buffers every time; recycling them avoids fresh allocation and page faults on every step.
 *
 * `scope(fn)` tracks every buffer allocated inside it and returns them to the pool when it ends,
 * except the tensors passed to `keep()` (or returned from fn). Buffers allocated outside any scope
 * (parameters, optimizer state) are owned by the garbage collector as usual.
 */
import type { DType, Storage } from './dtype.js';
import { discardLarge, largeFloat32 } from './large-buffer.js';

type Releasable = { release(): void; readonly kept: boolean };

const free = new Map<string, Storage[]>();
const scopes: Set<Releasable>[] = [];
let pooledBytes = 0;
/** Buffers handed out and not yet given back: live bytes and their high-water mark (memory tests). */
const handedOut = new WeakSet<ArrayBufferLike>();
let liveBytes = 0;
let peakBytes = 0;
/** Upper bound on idle pooled memory; beyond it released buffers are left to the GC. */
let poolLimitBytes = 8 * 1024 ** 3;

const key = (dtype: DType, cap: number) => `${dtype}:${cap}`;

/**
 * Capacity bucket for n elements: sizes grow geometrically (ratio 1.125 above 4096), so batches of
 * varying sequence length reuse the same buffers instead of allocating fresh ones every step.
 */
const BUCKETS: number[] = [];
for (let c = 4096; c < 2 ** 32; c = Math.ceil(c * 1.125)) BUCKETS.push(c);
const BUCKET_SET = new Set(BUCKETS);

export function bucketCapacity(n: number): number {
  return n <= 4096 ? n : BUCKETS[bucketIndex(n)];
}

/** Index of the smallest bucket holding n elements (n > 4096). */
function bucketIndex(n: number): number {
  let lo = 0, hi = BUCKETS.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (BUCKETS[mid] >= n) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function fullBuffer(buf: Storage): Storage {
  const cap = buf.buffer.byteLength / buf.BYTES_PER_ELEMENT;
  return buf.length === cap && buf.byteOffset === 0 ? buf : buf instanceof Float64Array ? new Float64Array(buf.buffer) : new Float32Array(buf.buffer);
}

/** A miss may take an idle buffer up to this many buckets larger (1.125⁶ ≈ 2× the size) instead of allocating. */
const REUSE_BUCKETS = 6;

/** An idle buffer of capacity cap, else of one of the next REUSE_BUCKETS buckets (a batch shorter than the last). */
function takeIdle(dtype: DType, cap: number): Storage | undefined {
  const exact = free.get(key(dtype, cap))?.pop();
  if (exact || cap <= 4096) return exact;
  const i = bucketIndex(cap);
  for (let j = 1; j <= REUSE_BUCKETS && i + j < BUCKETS.length; j++) {
    const b = free.get(key(dtype, BUCKETS[i + j]))?.pop();
    if (b) return b;
  }
  return undefined;
}

/**
 * Before a fresh allocation of `bytes`, lets go of as many idle bytes of smaller buckets (sizes
 * an earlier, shorter batch left): without it a batch longer than the last allocates anew while
 * the last batch's buffers sit idle, and the peak grows by up to the whole idle pool. Large
 * buffers give their memory back at once (discardLarge: the GC's unmapping would wait for the end
 * of the training step); the rest go to the GC.
 */
function evictSmaller(dtype: DType, cap: number, bytes: number): void {
  if (pooledBytes === 0) return;
  const lists: [number, Storage[]][] = [];
  for (const [k, list] of free) {
    const [d, c] = k.split(':');
    if (d === dtype && Number(c) < cap && list.length) lists.push([Number(c), list]);
  }
  lists.sort((a, b) => b[0] - a[0]);
  let freed = 0;
  for (const [, list] of lists) {
    while (list.length && freed < bytes) {
      const b = list.pop()!;
      pooledBytes -= b.byteLength;
      freed += b.byteLength;
      drop(b);
    }
    if (freed >= bytes) return;
  }
}

/** Lets go of an idle buffer for good. */
function drop(b: Storage): void {
  if (b instanceof Float32Array) discardLarge(b);
}

/** Returns a buffer of n elements (a view of a bucket-sized buffer); contents arbitrary unless `zero`. */
export function allocStorage(dtype: DType, n: number, zero: boolean): Storage {
  const cap = bucketCapacity(n);
  const whole = takeIdle(dtype, cap);
  if (whole) {
    pooledBytes -= whole.byteLength;
    noteLive(whole);
    const buf = whole.length === n ? whole : whole.subarray(0, n);
    if (zero) buf.fill(0);
    return buf;
  }
  evictSmaller(dtype, cap, cap * (dtype === 'float64' ? 8 : 4));
  const fresh = dtype === 'float64' ? new Float64Array(cap) : largeFloat32(cap);
  noteLive(fresh);
  return cap === n ? fresh : fresh.subarray(0, n);
}

function noteLive(whole: Storage): void {
  handedOut.add(whole.buffer);
  liveBytes += whole.byteLength;
  if (liveBytes > peakBytes) peakBytes = liveBytes;
}

/** Gives a buffer back to the pool. The caller must not use it afterwards. */
export function releaseStorage(dtype: DType, buf: Storage): void {
  if (buf.length === 0) return;
  const ours = handedOut.delete(buf.buffer);
  if (ours) liveBytes -= buf.buffer.byteLength;
  const whole = fullBuffer(buf);
  // Only pool buffers this module handed out (exact bucket capacity); others go to the GC.
  if (whole.length > 4096 && !BUCKET_SET.has(whole.length)) return;
  if (pooledBytes + whole.byteLength > poolLimitBytes) {
    if (ours) drop(whole);
    return;
  }
  const k = key(dtype, whole.length);
  let list = free.get(k);
  if (!list) free.set(k, (list = []));
  list.push(whole);
  pooledBytes += whole.byteLength;
}

/** Registers a freshly created tensor with the innermost scope (if any). */
export function track(t: Releasable): void {
  const s = scopes[scopes.length - 1];
  if (s) s.add(t);
}

/** Removes a tensor from every open scope so it survives them. */
export function untrack(t: Releasable): void {
  for (const s of scopes) s.delete(t);
}

/**
 * Runs fn; buffers of tensors created inside are recycled when it returns, except those kept
 * with `keep()` and tensors found in the return value (a Tensor, an array or a plain object of them).
 */
export function scope<T>(fn: () => T): T {
  const s = new Set<Releasable>();
  scopes.push(s);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const keepers = new Set<unknown>();
  collect(result, keepers, 0);
  const outer = scopes[scopes.length - 1];
  for (const t of s) {
    if (keepers.has(t) || t.kept) {
      if (outer) outer.add(t);
      continue;
    }
    t.release();
  }
  return result;
}

function collect(v: unknown, out: Set<unknown>, depth: number): void {
  if (v === null || typeof v !== 'object' || depth > 3) return;
  out.add(v);
  if (Array.isArray(v)) for (const x of v) collect(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collect(x, out, depth + 1);
}

/** Idle bytes currently held by the pool (for diagnostics and tests). */
export function pooledBytesNow(): number {
  return pooledBytes;
}

/**
 * Bytes of pool-allocated buffers not yet released, and their peak since `resetPeakBytes()`
 * (buffers kept past their scope and left to the GC stay counted).
 */
export function poolStats(): { liveBytes: number; peakBytes: number } {
  return { liveBytes, peakBytes };
}

export function resetPeakBytes(): void {
  peakBytes = liveBytes;
}

/** Drops every idle pooled buffer (e.g. between benchmark phases). */
export function clearPool(): void {
  for (const list of free.values()) for (const b of list) drop(b);
  free.clear();
  pooledBytes = 0;
}

/** Sets the bound on idle pooled memory; returns the bound it replaces. */
export function setPoolLimitBytes(n: number): number {
  const was = poolLimitBytes;
  poolLimitBytes = n;
  return was;
}
