import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { largeFloat32 } from '../../src/tensor/large-buffer.js';
import { loadNativeBackend } from '../../src/backend/native/index.js';

/** The process's anonymous huge-page bytes (0 where the kernel reports none). */
function anonHugeBytes(): number {
  const m = /AnonHugePages:\s+(\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

test('largeFloat32: zero-filled, writable, the length asked, small sizes as plain arrays', () => {
  for (const n of [0, 1, 1000, (1 << 20) - 1, 1 << 20, 3 * (1 << 20) + 5]) {
    const a = largeFloat32(n);
    assert.ok(a instanceof Float32Array);
    assert.equal(a.length, n);
    assert.equal(a.buffer.byteLength, n * 4);
    for (const i of [0, n >> 1, n - 1]) if (n) assert.equal(a[i], 0);
    if (n) {
      a.fill(2.5);
      assert.equal(a[n - 1], 2.5);
    }
  }
});

test('largeFloat32: large buffers on huge pages where the kernel does them (THP "madvise" or "always")', (t) => {
  const thp = (() => {
    try {
      return readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
    } catch {
      return '';
    }
  })();
  if (!loadNativeBackend().backend || process.env.DPO_NO_MMAP === '1' || !/\[(madvise|always)\]/.test(thp)) {
    t.skip(`no native addon, DPO_NO_MMAP=1, or transparent huge pages off (${thp.trim() || 'not reported'})`);
    return;
  }
  const before = anonHugeBytes();
  const a = largeFloat32(64 << 20); // 256 MB
  a.fill(1);
  // The kernel may fall back to small pages when memory is fragmented; most should be huge.
  assert.ok(anonHugeBytes() - before >= 128 << 20, `AnonHugePages grew by ${anonHugeBytes() - before} bytes`);
});
