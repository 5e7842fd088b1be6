import test from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../../src/errors.js';
import { readSafetensors, SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { bitsToBf16, bitsToF16, f16ToF32, bf16ToF32 } from '../../src/io/half.js';
import { tempDir } from './helpers.js';

const dir = tempDir();

// safetensors.torch.save_file({'b': f16 [1, -2.5, 65504], 'a': f32 [0.1], 'c': bf16 [3, inf], 'z': f32 [[1, 2]],
// 'é': f32 [] (0 elements), 's': f32 scalar 7}, metadata={'format': 'pt'}) with safetensors 0.8.0.
const PYTHON_BYTES =
  '68010000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a227074227d2c2261223a7b226474797065223a22463332222c227368617065223a5b315d2c22646174615f6f666673657473223a5b302c345d7d2c2273223a7b226474797065223a22463332222c227368617065223a5b5d2c22646174615f6f666673657473223a5b342c385d7d2c227a223a7b226474797065223a22463332222c227368617065223a5b312c325d2c22646174615f6f666673657473223a5b382c31365d7d2c22c3a9223a7b226474797065223a22463332222c227368617065223a5b305d2c22646174615f6f666673657473223a5b31362c31365d7d2c2263223a7b226474797065223a2242463136222c227368617065223a5b325d2c22646174615f6f666673657473223a5b31362c32305d7d2c2262223a7b226474797065223a22463136222c227368617065223a5b335d2c22646174615f6f666673657473223a5b32302c32365d7d7dcdcccc3d0000e0400000803f000000404040807f003c00c1ff7b';

test('writes the same bytes as the Python library (dtype-then-name order, padding, __metadata__ first)', () => {
  const p = join(dir, 'py.safetensors');
  writeSafetensors(p, {
    b: { shape: [3], data: Float32Array.of(1, -2.5, 65504), dtype: 'F16' },
    a: { shape: [1], data: Float32Array.of(0.1) },
    c: { shape: [2], data: Float32Array.of(3, Infinity), dtype: 'BF16' },
    z: { shape: [1, 2], data: Float32Array.of(1, 2) },
    é: { shape: [0], data: new Float32Array(0) },
    s: { shape: [], data: Float32Array.of(7) },
  });
  assert.equal(readFileSync(p).toString('hex'), PYTHON_BYTES);
  // ...and reads back what the Python library wrote.
  const f = new SafetensorsFile(p);
  try {
    assert.deepEqual(f.names(), ['a', 's', 'z', 'é', 'c', 'b']);
    assert.deepEqual(f.metadata, { format: 'pt' });
    assert.deepEqual([...f.read('b')], [1, -2.5, 65504]);
    assert.deepEqual([...f.read('c')], [3, Infinity]);
    assert.deepEqual(f.info('s').shape, []);
    assert.deepEqual([...f.read('s')], [7]);
    assert.equal(f.read('é').length, 0);
  } finally {
    f.close();
  }
});

function specials(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(i * 1.7) * 10 ** ((i % 13) - 6);
  x.set([NaN, -NaN, Infinity, -Infinity, 0, -0, 1e-40, -3e38, 65520, 1 + 2 ** -8, 1 + 3 * 2 ** -8], 0);
  return x;
}

test('F32 / BF16 / F16 round trips: F32 exact, 16-bit values rounded to nearest even like torch (NaN and Inf kept)', () => {
  const x = specials(3001);
  const p = join(dir, 'rt.safetensors');
  writeSafetensors(p, [
    ['f32', { shape: [3001], data: x }],
    ['bf16', { shape: [3, 1000], data: x.subarray(0, 3000), dtype: 'BF16' }],
    ['f16', { shape: [1, 3001], data: x, dtype: 'F16' }],
    ['f64-src', { shape: [3001], data: Float64Array.from(x), dtype: 'BF16' }],
  ]);
  const f = new SafetensorsFile(p);
  try {
    const f32 = f.read('f32');
    assert.deepEqual(new Uint8Array(f32.buffer), new Uint8Array(x.buffer), 'F32 is bit exact');
    const bf = f.read('bf16');
    const hf = f.read('f16');
    const u = new Uint32Array(x.buffer);
    for (let i = 0; i < 3000; i++) {
      const wantB = bf16ToF32(bitsToBf16(u[i]));
      assert.ok(Object.is(bf[i], wantB) || (Number.isNaN(bf[i]) && Number.isNaN(wantB)), `bf16[${i}] = ${bf[i]}, want ${wantB}`);
      const wantH = f16ToF32(bitsToF16(u[i]));
      assert.ok(Object.is(hf[i], wantH) || (Number.isNaN(hf[i]) && Number.isNaN(wantH)), `f16[${i}] = ${hf[i]}, want ${wantH}`);
    }
    assert.ok(Number.isNaN(bf[0]) && Number.isNaN(hf[1]));
    assert.equal(bf[2], Infinity);
    assert.equal(hf[3], -Infinity);
    assert.equal(hf[8], Infinity, '65520 overflows f16 to Inf (ties to even)');
    assert.equal(bf[9], 1, '1 + 2^-8 ties to even: down to 1');
    assert.equal(bf[10], 1 + 2 ** -6, '1 + 3*2^-8 ties to even: up');
    assert.deepEqual(f.read('f64-src').subarray(0, 3000), bf, 'float64 input gives the same bf16 as float32 input');
    // Raw bf16 bits for a future bf16 storage path.
    const raw = f.readRawBf16('bf16');
    assert.equal(raw.length, 3000);
    assert.equal(raw[2], 0x7f80);
    assert.throws(() => f.readRawBf16('f16'), /"f16" is F16, not BF16/);
  } finally {
    f.close();
  }
});

test('raw 16-bit input is written as-is; Float64 input is rounded to float32', () => {
  const p = join(dir, 'raw.safetensors');
  const bits = Uint16Array.of(0x3f80, 0xc000, 0x7fc0);
  writeSafetensors(p, { r: { shape: [3], data: bits, dtype: 'BF16' }, d: { shape: [2], data: Float64Array.of(0.1, 1 / 3) } }, null);
  const { tensors, metadata } = readSafetensors(p, { keepBf16: true });
  assert.deepEqual(metadata, {});
  assert.deepEqual([...(tensors.get('r')!.data as Uint16Array)], [0x3f80, 0xc000, 0x7fc0]);
  assert.ok(tensors.get('r')!.data instanceof Uint16Array);
  assert.deepEqual([...tensors.get('d')!.data], [Math.fround(0.1), Math.fround(1 / 3)]);
  assert.throws(() => writeSafetensors(p, { r: { shape: [3], data: bits } }), /raw 16-bit data needs dtype BF16 or F16/);
});

test('lazy access: list names, shapes and dtypes first, load one tensor by name into a caller buffer', () => {
  const p = join(dir, 'lazy.safetensors');
  const big = new Float32Array(50_000).map((_, i) => i);
  writeSafetensors(p, { 'model.w': { shape: [250, 200], data: big }, 'model.b': { shape: [2], data: Float32Array.of(5, 6), dtype: 'F16' } }, { format: 'pt', note: 'x' });
  const f = SafetensorsFile.open(p);
  try {
    assert.deepEqual(f.list().map((t) => [t.name, t.dtype, t.shape]), [['model.w', 'F32', [250, 200]], ['model.b', 'F16', [2]]]);
    assert.deepEqual(f.metadata, { format: 'pt', note: 'x' });
    assert.ok(f.has('model.b') && !f.has('nope'));
    const out = new Float32Array(2);
    assert.equal(f.read('model.b', out), out);
    assert.deepEqual([...out], [5, 6]);
    assert.equal(f.read('model.w')[49_999], 49_999);
    assert.deepEqual([...f.readBytes('model.b')], [0x00, 0x45, 0x00, 0x46]);
    assert.throws(() => f.read('model.w', new Float32Array(3)), (e: Error) => e instanceof DpoError && /has 50000 elements, the destination holds 3/.test(e.message));
    assert.throws(() => f.read('missing'), /no tensor named "missing"/);
  } finally {
    f.close();
  }
  assert.throws(() => f.read('model.b'), /already closed/);
});

test('big 16-bit tensors convert in chunks (more than one chunk)', () => {
  const p = join(dir, 'chunks.safetensors');
  const n = (1 << 20) + 12345;
  const x = new Float32Array(n).map((_, i) => (i % 128) / 4); // exact in f16 and bf16
  writeSafetensors(p, { h: { shape: [n], data: x, dtype: 'F16' }, b: { shape: [n], data: x, dtype: 'BF16' } });
  const f = new SafetensorsFile(p);
  try {
    const h = f.read('h');
    const b = f.read('b');
    for (const i of [0, 1, (1 << 20) - 1, 1 << 20, n - 1]) {
      assert.equal(h[i], x[i]);
      assert.equal(b[i], x[i]);
    }
  } finally {
    f.close();
  }
});

test('BF16 tensors read by every thread at once (widened, and as raw bits) give the bits a plain read gives', () => {
  const p = join(dir, 'parallel.safetensors');
  const n = 5 * (1 << 19) + 333; // 2.5 MB of bf16: three 1 MB reads, the last a partial one
  const bits = new Uint16Array(n).map((_, i) => (i * 2654435761) >>> 16); // every bit pattern, NaNs too
  writeSafetensors(p, { pad: { shape: [3], data: Float32Array.of(1, 2, 3) }, b: { shape: [n], data: bits, dtype: 'BF16' } });
  const f = new SafetensorsFile(p);
  try {
    const info = f.info('b');
    const raw = readFileSync(p).subarray(info.begin, info.end);
    const expect = new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    assert.deepEqual(f.readRawBf16('b'), expect);
    const wide = f.read('b'), u32 = new Uint32Array(wide.buffer, wide.byteOffset, n);
    for (let i = 0; i < n; i++) if (u32[i] !== expect[i] << 16 >>> 0) assert.fail(`element ${i}: ${u32[i]} != ${expect[i] << 16 >>> 0}`);
  } finally {
    f.close();
  }
});

test('writes are atomic: no temp files left, a failed write leaves the old file intact', () => {
  const sub = join(dir, 'atomic');
  const p = join(dir, 'atomic.safetensors');
  writeSafetensors(p, { a: { shape: [1], data: Float32Array.of(1) } });
  assert.throws(() => writeSafetensors(p, { a: { shape: [2], data: Float32Array.of(1) } }), /has 1 values for shape \[2\]/);
  assert.throws(() => writeSafetensors(p, [['a', { shape: [1], data: Float32Array.of(1) }], ['a', { shape: [1], data: Float32Array.of(2) }]] as [string, TensorToWrite][]), /given twice/);
  assert.throws(() => writeSafetensors(join(sub, 'x.safetensors'), {}), /cannot write .*directory exists/);
  assert.deepEqual([...readSafetensors(p).tensors.get('a')!.data], [1]);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), []);
});
