/**
 * The native load-time conversions (native/src/quantize.cc) bit for bit against the TypeScript
 * reference (quant/storage.ts quantize4bit / quantizeNested / quantizeInt8Rows, io/half.ts
 * decodeBf16) on data that reaches every branch: lengths that end mid-block, an all-zero block and
 * row, a NaN, values exactly on the NF4/FP4 pivots and on int8 half-way points, wide magnitudes;
 * and from bf16 bits (a bf16 checkpoint's layers) against the reference on the widened values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNativeBackend } from '../../src/backend/native/index.js';
import type { LoadKernels } from '../../src/backend/types.js';
import { decodeBf16, encodeHalf } from '../../src/io/half.js';
import { quantize4bit, quantizeInt8Rows, quantizeNested, quantizeWeight, type StorageKind } from '../../src/quant/storage.js';
import { NF4 } from '../../src/quant/codes.js';
import { Rng } from '../../src/tensor/rng.js';

const native = loadNativeBackend();
const lk = native.backend?.loadKernels as LoadKernels;
const skip = lk ? false : `native core not built (${native.error})`;
const rng = new Rng(14);

/** n values: normal-ish with magnitudes over 1e-6..1e3, then planted edge cases. */
function data(n: number): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = (rng.nextFloat() * 2 - 1) * 10 ** (rng.nextFloat() * 9 - 6);
  if (n > 200) {
    w.fill(0, 64, 128); // a zero block (absmax 0 → 1/0)
    w[130] = NaN;
    // block 3: absmax 1, then the midpoints of adjacent NF4 values (the pivots) and ±table values
    w[192] = 1;
    for (let j = 1; j < 16; j++) w[192 + j] = Math.fround((NF4[j - 1] + NF4[j]) / 2);
    for (let j = 0; j < 16; j++) w[208 + j] = NF4[j] * (j & 1 ? -1 : 1);
  }
  return w;
}

const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
/** Byte for byte; float32 arrays value for value (-0 ≠ 0), any NaN matching any NaN (V8's NaN bits vary). */
function sameBits(name: string, got: ArrayBufferView, want: ArrayBufferView): void {
  if (got instanceof Float32Array && want instanceof Float32Array) {
    assert.equal(got.length, want.length, `${name}: length`);
    let bad = -1;
    for (let i = 0; i < want.length && bad < 0; i++) if (!Object.is(got[i], want[i])) bad = i;
    assert.equal(bad, -1, `${name}: first difference [${bad}]: ${got[bad]} vs ${want[bad]}`);
    return;
  }
  const g = bytes(got), w = bytes(want);
  assert.equal(g.length, w.length, `${name}: length`);
  let bad = -1;
  for (let i = 0; i < w.length && bad < 0; i++) if (g[i] !== w[i]) bad = i;
  assert.equal(bad, -1, `${name}: first differing byte ${bad}`);
}

for (const n of [1, 63, 65, 1000, 70001, 3 * 64 * 256 + 17]) {
  for (const kind of ['nf4', 'fp4'] as const) {
    test(`quantize4bit ${kind} n=${n}: native = reference bit for bit, and the nested absmax too`, { skip }, () => {
      const w = data(n);
      const want = quantize4bit(w, kind);
      const packed = new Uint8Array(Math.ceil(n / 2)).fill(0xff), absmax = new Float32Array(Math.ceil(n / 64));
      lk.quantize4bit(w, kind, packed, absmax);
      sameBits('packed', packed, want.packed);
      sameBits('absmax', absmax, want.absmax);
      const finite = want.absmax.map((x) => (Number.isNaN(x) ? 1 : x)); // a NaN absmax would make the offset NaN everywhere
      const nw = quantizeNested(finite);
      const q = new Uint8Array(finite.length), a2 = new Float32Array(Math.ceil(finite.length / 256));
      const offset = lk.quantizeNested(finite, q, a2);
      assert.ok(Object.is(offset, nw.offset), `offset ${offset} vs ${nw.offset}`);
      sameBits('qabsmax', q, nw.q);
      sameBits('absmax2', a2, nw.absmax2);
    });
  }
}

for (const [rows, cols] of [[1, 1], [3, 7], [40, 333], [300, 1024]] as const) {
  test(`quantizeInt8Rows ${rows}×${cols}: native = reference bit for bit (zero row, NaN, half-way ties)`, { skip }, () => {
    const w = data(rows * cols);
    if (rows >= 3) {
      w.fill(0, cols, 2 * cols);
      w[2 * cols] = 127; // row 2: scale 1, so k + 0.5 are exact ties
      for (let j = 1; j < Math.min(cols, 7); j++) w[2 * cols + j] = j % 2 ? j + 0.5 : -(j + 0.5);
    }
    const want = quantizeInt8Rows(w, rows, cols);
    const cb = new Int8Array(rows * cols), scb = new Float32Array(rows);
    lk.quantizeInt8Rows(w, rows, cols, cb, scb);
    sameBits('CB', cb, want.cb);
    sameBits('SCB', scb, want.scb);
  });
}

test('readBf16AsF32: native = decodeBf16 on every 16-bit pattern and a long array at an odd offset', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'widen-'));
  for (const [n, offset] of [[65536, 0], [(1 << 20) + 3, 6]]) {
    const bits = Uint16Array.from({ length: n }, (_, i) => (n === 65536 ? i : (rng.nextFloat() * 65536) >>> 0));
    const file = join(dir, `b${n}`);
    writeFileSync(file, Buffer.concat([Buffer.alloc(offset), Buffer.from(bits.buffer)]));
    const want = new Float32Array(n), got = new Float32Array(n);
    decodeBf16(bits, want);
    const fd = openSync(file, 'r');
    try {
      lk.readBf16AsF32(fd, offset, got);
    } finally {
      closeSync(fd);
    }
    sameBits(`n=${n}`, new Uint32Array(got.buffer), new Uint32Array(want.buffer)); // NaN payloads included
  }
});

/** bf16 bits of data(n), with every special pattern planted: ±0, ±inf, NaNs, subnormals, the largest finite. */
function bf16Data(n: number): Uint16Array {
  const bits = new Uint16Array(n);
  encodeHalf('BF16', data(n), 0, bits);
  const special = [0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0xffc1, 0x0001, 0x807f, 0x7f7f, 0xff7f, 0x3f80];
  // block 5 (of 64): the specials alone; block 6: a subnormal absmax; row-sized runs for int8 too.
  if (n > 7 * 64) {
    special.forEach((b, i) => (bits[5 * 64 + i] = b));
    for (let i = 6 * 64; i < 7 * 64; i++) bits[i] = (i * 37) & 0x807f;
  }
  return bits;
}

for (const n of [1, 63, 1000, 3 * 64 * 256 + 17]) {
  for (const kind of ['nf4', 'fp4'] as const) {
    test(`${kind} from bf16 bits n=${n}: native (bits read directly) = reference on the widened values`, { skip }, () => {
      const bits = bf16Data(n), w = new Float32Array(n);
      decodeBf16(bits, w);
      const want = quantize4bit(w, kind);
      const packed = new Uint8Array(Math.ceil(n / 2)).fill(0xff), absmax = new Float32Array(Math.ceil(n / 64));
      lk.quantize4bit(bits, kind, packed, absmax);
      sameBits('packed', packed, want.packed);
      sameBits('absmax', absmax, want.absmax);
    });
  }
}

for (const [rows, cols] of [[1, 1], [9, 7], [10, 100], [77, 641]] as const) {
  test(`int8 from bf16 bits ${rows}×${cols}: native (bits read directly) = reference on the widened values`, { skip }, () => {
    const bits = bf16Data(rows * cols), w = new Float32Array(rows * cols);
    decodeBf16(bits, w);
    const want = quantizeInt8Rows(w, rows, cols);
    const cb = new Int8Array(rows * cols), scb = new Float32Array(rows);
    lk.quantizeInt8Rows(bits, rows, cols, cb, scb);
    sameBits('CB', cb, want.cb);
    sameBits('SCB', scb, want.scb);
  });
}

test('quantizeWeight of bf16 bits = quantizeWeight of their float32 values, for every storage kind', () => {
  const rows = 24, cols = 80, bits = bf16Data(rows * cols), w = new Float32Array(rows * cols);
  decodeBf16(bits, w);
  for (const kind of ['nf4', 'fp4', 'int8', 'bf16', 'f16', 'f32'] as StorageKind[]) {
    for (const nested of kind === 'nf4' ? [false, true] : [false]) {
      const a = quantizeWeight(bits, rows, cols, kind, { nested }), b = quantizeWeight(w, rows, cols, kind, { nested });
      sameBits(`${kind} data`, a.data, b.data);
      if (b.absmax) sameBits(`${kind} absmax`, a.absmax!, b.absmax);
      if (b.qabsmax) sameBits(`${kind} qabsmax`, a.qabsmax!, b.qabsmax);
      assert.ok(Object.is(a.offset, b.offset), `${kind} offset`);
    }
  }
});
