/**
 * The buffer pool across batches of different lengths (tensor/pool.ts): a shorter batch reuses the
 * idle buffers of a longer one; a longer batch's fresh allocations let go of the idle buffers a
 * shorter one left, so idle plus live memory does not grow with each new length; the same shapes
 * step after step reuse their buffers exactly and evict nothing. Buffers the pool lets go of leave
 * the resident memory at once, inside a synchronous step (no event-loop turn for the GC's
 * unmapping).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocStorage, bucketCapacity, clearPool, pooledBytesNow, releaseStorage, setPoolLimitBytes } from '../../src/tensor/pool.js';
import { loadNativeBackend } from '../../src/backend/native/index.js';

test('pool: a shorter request takes an idle buffer up to ~2× its size instead of allocating', () => {
  clearPool();
  const a = allocStorage('float32', 100_000, false);
  const buffer = a.buffer;
  releaseStorage('float32', a);
  const b = allocStorage('float32', 80_000, true);
  assert.equal(b.buffer, buffer, 'the idle larger buffer');
  assert.equal(b.length, 80_000);
  assert.ok(b.every((v) => v === 0), 'zeroed');
  releaseStorage('float32', b);
  // Back in its own bucket: a request of the original size gets it again.
  assert.equal(allocStorage('float32', 100_000, false).buffer, buffer);
  // Far smaller requests do not pin a big buffer.
  clearPool();
  releaseStorage('float32', allocStorage('float32', 100_000, false));
  assert.notEqual(allocStorage('float32', 20_000, false).buffer.byteLength, 4 * bucketCapacity(100_000));
});

test('pool: a longer request that must allocate lets go of as many idle bytes of smaller buckets', () => {
  clearPool();
  const small = Array.from({ length: 8 }, () => allocStorage('float32', 50_000, false));
  for (const s of small) releaseStorage('float32', s);
  const idle = pooledBytesNow();
  assert.equal(idle, 8 * 4 * bucketCapacity(50_000));
  const big = allocStorage('float32', 200_000, false);
  const freed = idle - pooledBytesNow();
  assert.ok(freed >= 4 * bucketCapacity(200_000) && freed < 4 * bucketCapacity(200_000) + 4 * bucketCapacity(50_000), `freed ${freed} bytes`);
  releaseStorage('float32', big);
  // Other dtypes' buffers are not touched.
  clearPool();
  releaseStorage('float64', allocStorage('float64', 50_000, false));
  const before = pooledBytesNow();
  allocStorage('float32', 200_000, false);
  assert.equal(pooledBytesNow(), before);
});

test('pool: the same shapes step after step are reused exactly and nothing is evicted', () => {
  clearPool();
  const sizes = [70_000, 12_345, 300_000, 4096, 999];
  let buffers: ArrayBufferLike[] = [];
  for (let step = 0; step < 3; step++) {
    const got = sizes.map((n) => allocStorage('float32', n, false));
    if (step > 0) assert.deepEqual(got.map((g) => g.buffer), buffers, `step ${step}: the same buffers`);
    buffers = got.map((g) => g.buffer);
    for (const g of got) releaseStorage('float32', g);
    assert.equal(pooledBytesNow(), got.reduce((a, g) => a + g.buffer.byteLength, 0));
  }
});

test('pool: buffers it lets go of leave the resident memory at once, without an event-loop turn', (t) => {
  if (!loadNativeBackend().backend || process.env.DPO_NO_MMAP === '1') {
    t.skip('no native addon or DPO_NO_MMAP=1: buffers are plain arrays, freed by the GC');
    return;
  }
  // 3 MB buffers, the size of a 0.5B model's hidden states for one micro-batch: 80 of them, 240 MB.
  const MB = 1 << 20, n = 768 * 1024, count = 80;
  const rss = () => process.memoryUsage().rss;
  const touched = () => Array.from({ length: count }, () => allocStorage('float32', n, false).fill(1));
  const fell = (before: number, what: string) => {
    const d = before - rss();
    assert.ok(d >= 200 * MB, `resident memory fell by ${(d / MB).toFixed(0)} MB on ${what} 240 MB`);
  };
  clearPool();
  // Eviction: the idle buffers, then a 256 MB request (beyond reuse) that must allocate.
  for (const b of touched()) releaseStorage('float32', b);
  const idle = rss();
  const big = allocStorage('float32', 64 * MB, false); // fresh, untouched: no resident pages of its own
  fell(idle, 'evicting');
  releaseStorage('float32', big);
  // Over the pool's limit a released buffer is let go of too.
  clearPool();
  const limit = setPoolLimitBytes(0);
  try {
    const bufs = touched();
    const held = rss();
    for (const b of bufs) releaseStorage('float32', b);
    fell(held, 'releasing over the limit');
  } finally {
    setPoolLimitBytes(limit);
  }
  // clearPool lets go of every idle buffer.
  for (const b of touched()) releaseStorage('float32', b);
  const pooled = rss();
  clearPool();
  fell(pooled, 'clearing');
});
