/**
 * Corrupted and hostile safetensors files: each must give a one-line DpoError naming the file (and
 * the tensor where there is one), never a crash, a hang or a huge allocation.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, openSync, closeSync, ftruncateSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadKernels } from '../../src/quant/load-kernels.js';
import { DpoError } from '../../src/errors.js';
import { SafetensorsFile, writeSafetensors } from '../../src/io/safetensors.js';
import { rawSafetensors, tempDir, writeRaw } from './helpers.js';

const dir = tempDir();
const f32 = (shape: number[], begin: number, end: number): object => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

/** [case name, file bytes, message pattern, tensor named in the message (if any)] */
const CASES: [string, Uint8Array, RegExp, string?][] = [
  ['empty file', new Uint8Array(0), /the file is 0 bytes, shorter than the 8-byte header length/],
  ['7-byte file', new Uint8Array(7), /the file is 7 bytes/],
  ['header length huge', rawSafetensors('{}', 0, 1n << 60n), /header length 1152921504606846976 exceeds the 100000000-byte limit/],
  ['header length > file', rawSafetensors('{"a":1}', 0, 5000n), /header length 5000 exceeds the 7 bytes after the length prefix/],
  ['header length 0', rawSafetensors('', 0), /header length 0 is too small/],
  ['header not JSON', rawSafetensors('{"a": {dtype}}'), /the header is not valid JSON \(expected a string key at character 7\)/],
  ['header cut short', rawSafetensors('{"a": {"dtype": "F32"'), /not valid JSON \(expected ',' or '}'/],
  ['header JSON array', rawSafetensors('[1, 2]'), /the header must be a JSON object, got an array/],
  ['header JSON string', rawSafetensors('"hello"'), /the header must be a JSON object, got "hello"/],
  ['header not UTF-8', rawSafetensors(Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d)), /the header is not valid UTF-8/],
  ['trailing garbage in header', rawSafetensors('{} xyz'), /unexpected text after the JSON value/],
  ['entry not an object', rawSafetensors({ w: [1, 2] }), /entry must be an object with dtype, shape and data_offsets, got \[1,2\]/, 'w'],
  ['missing data_offsets', rawSafetensors({ w: { dtype: 'F32', shape: [1] } }, 4), /missing "data_offsets"/, 'w'],
  ['missing dtype', rawSafetensors({ w: { shape: [1], data_offsets: [0, 4] } }, 4), /missing "dtype"/, 'w'],
  ['missing shape', rawSafetensors({ w: { dtype: 'F32', data_offsets: [0, 4] } }, 4), /missing "shape"/, 'w'],
  ['dtype not a string', rawSafetensors({ w: { dtype: 32, shape: [1], data_offsets: [0, 4] } }, 4), /"dtype" must be a string, got 32/, 'w'],
  ['unknown dtype', rawSafetensors({ w: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype "F33"/, 'w'],
  ['offsets outside the file', rawSafetensors({ w: f32([4], 0, 16) }, 8), /data_offsets \[0, 16\] reach past the end of the data region \(8 bytes; truncated file\?\)/, 'w'],
  ['begin > end', rawSafetensors({ w: f32([1], 8, 4) }, 8), /data_offsets begin 8 > end 4/, 'w'],
  ['offsets not two integers', rawSafetensors({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), /"data_offsets" must be two non-negative integers \[begin, end\], got \[0\]/, 'w'],
  ['negative offset', rawSafetensors({ w: f32([1], -4, 0) }, 4), /"data_offsets" must be two non-negative integers/, 'w'],
  ['string offsets', rawSafetensors({ w: { dtype: 'F32', shape: [1], data_offsets: ['0', '4'] } }, 4), /"data_offsets" must be two non-negative integers/, 'w'],
  ['overlapping tensors', rawSafetensors({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12), /tensors "a" and "b" overlap \(bytes 0-8 and 4-12\)/],
  ['gap between tensors', rawSafetensors({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, 12), /tensor "b": 4 unused bytes before its data/],
  ['bytes after the last tensor', rawSafetensors({ a: f32([1], 0, 4) }, 10), /6 bytes after the last tensor's data are not described by the header/],
  ['shape/bytes mismatch', rawSafetensors({ w: f32([2, 2], 0, 8) }, 8), /data_offsets span 8 bytes but shape \[2, 2\] of F32 needs 16/, 'w'],
  ['negative shape entry', rawSafetensors({ w: f32([-1, 4], 0, 16) }, 16), /"shape" must be a list of non-negative integers, got \[-1,4\]/, 'w'],
  ['float shape entry', rawSafetensors({ w: f32([2.5], 0, 10) }, 10), /"shape" must be a list of non-negative integers, got \[2.5\]/, 'w'],
  ['string shape entry', rawSafetensors({ w: { dtype: 'F32', shape: ['2'], data_offsets: [0, 8] } }, 8), /"shape" must be a list of non-negative integers/, 'w'],
  ['shape not a list', rawSafetensors({ w: { dtype: 'F32', shape: 2, data_offsets: [0, 8] } }, 8), /"shape" must be a list of non-negative integers, got 2/, 'w'],
  ['shape overflows', rawSafetensors({ w: f32([2 ** 40, 2 ** 40], 0, 4) }, 4), /shape \[1099511627776, 1099511627776\] is too large/, 'w'],
  ['huge integer beyond 2^53', rawSafetensors('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,90071992547409930]}}', 4), /"data_offsets" must be two non-negative integers/, 'w'],
  ['metadata not a string map', rawSafetensors({ __metadata__: { format: 'pt', step: 3 }, w: f32([1], 0, 4) }, 4), /"__metadata__" must map strings to strings, but "step" is 3/],
  ['metadata an array', rawSafetensors({ __metadata__: ['pt'], w: f32([1], 0, 4) }, 4), /"__metadata__" must be an object mapping strings to strings, got \["pt"\]/],
  ['duplicate tensor names', rawSafetensors('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8), /the header has a duplicate key "a" at character 57 \(each name may appear once\)/],
  ['duplicate field in an entry', rawSafetensors('{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}', 4), /duplicate key "dtype"/],
  ['deeply nested header', rawSafetensors(`{"a":${'['.repeat(5000)}${']'.repeat(5000)}}`), /nested deeper than 64 levels/],
  ['sub-byte dtype not filling bytes', rawSafetensors({ w: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, 2), /3 elements of F4 do not fill whole bytes/, 'w'],
];

for (const [name, bytes, pattern, tensor] of CASES) {
  test(`corrupt: ${name}`, (t) => {
    const p = writeRaw(dir, `${name.replace(/\W+/g, '-')}.safetensors`, bytes);
    assert.throws(
      () => new SafetensorsFile(p).close(),
      (e: unknown) => {
        assert.ok(e instanceof DpoError, `expected a DpoError, got ${e}`);
        assert.match(e.message, pattern);
        assert.ok(e.message.startsWith(`${p}: not a valid safetensors file: `), e.message);
        assert.ok(!e.message.includes('\n'), 'one line');
        if (tensor) assert.ok(e.message.includes(`tensor "${tensor}"`), e.message);
        t.diagnostic(e.message.slice(dir.length + 1));
        return true;
      },
    );
  });
}

test(`at least 20 corrupted files are covered (${CASES.length})`, () => {
  assert.ok(CASES.length >= 20);
});

test('I64 (a valid but unsupported dtype) lists fine and fails on read, naming tensor, dtype and file', () => {
  const p = writeRaw(dir, 'i64.safetensors', rawSafetensors({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] }, w: f32([1], 16, 20) }, 20));
  const f = new SafetensorsFile(p);
  try {
    assert.deepEqual(f.list().map((t) => t.dtype), ['I64', 'F32']);
    assert.equal(f.read('w').length, 1);
    assert.throws(() => f.read('ids'), (e: unknown) => e instanceof DpoError && e.message === `${p}: tensor "ids" has dtype I64; only F32, F16 and BF16 tensors can be loaded (convert the checkpoint, e.g. model.to(torch.float32).save_pretrained(...))`);
    assert.equal(f.readBytes('ids').length, 16);
  } finally {
    f.close();
  }
});

test('a tensor named __proto__ is just a tensor (no prototype pollution)', () => {
  const p = writeRaw(dir, 'proto.safetensors', rawSafetensors('{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"__proto__":"x"}}', Buffer.from(Float32Array.of(3).buffer)));
  const f = new SafetensorsFile(p);
  try {
    assert.deepEqual(f.names(), ['__proto__']);
    assert.deepEqual([...f.read('__proto__')], [3]);
    assert.equal(Object.getPrototypeOf(f.metadata), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(f.metadata, '__proto__')?.value, 'x');
  } finally {
    f.close();
  }
  assert.equal(({} as Record<string, unknown>).dtype, undefined);
});

test('missing file, a directory, and a file truncated after opening', () => {
  assert.throws(() => new SafetensorsFile(join(dir, 'nope.safetensors')), /nope\.safetensors: cannot open safetensors file \(no such file\)/);
  const d = join(dir, 'a-dir.safetensors');
  mkdirSync(d);
  assert.throws(() => new SafetensorsFile(d), (e: unknown) => e instanceof DpoError && /a-dir\.safetensors: (not a regular file|cannot open)/.test(e.message));
  const p = join(dir, 'shrinks.safetensors');
  writeSafetensors(p, { w: { shape: [1000], data: new Float32Array(1000) } });
  const f = new SafetensorsFile(p);
  try {
    const fd = openSync(p, 'r+');
    ftruncateSync(fd, readFileSync(p).length - 100);
    closeSync(fd);
    assert.throws(() => f.read('w'), /shrinks\.safetensors: unexpected end of file at byte/);
  } finally {
    f.close();
  }
});

test('a file truncated after opening, read by the native multi-threaded readers (BF16 widened, raw bits)', () => {
  const p = join(dir, 'shrinks-big.safetensors');
  const n = 3 * (1 << 20) + 7; // several 1 MB reads per thread
  writeSafetensors(p, { w: { shape: [n], data: new Float32Array(n), dtype: 'BF16' } });
  const f = new SafetensorsFile(p);
  try {
    const fd = openSync(p, 'r+');
    ftruncateSync(fd, readFileSync(p).length - 100);
    closeSync(fd);
    const native = loadKernels() !== null;
    const ended = native ? /shrinks-big\.safetensors: reading the tensor at byte \d+ failed: the file ends inside the tensor/ : /shrinks-big\.safetensors: unexpected end of file at byte/;
    assert.throws(() => f.read('w'), (e: unknown) => e instanceof DpoError && ended.test(e.message) && !e.message.includes('bug'));
    assert.throws(() => f.readRawBf16('w'), (e: unknown) => e instanceof DpoError && ended.test(e.message));
  } finally {
    f.close();
  }
});

test('a valid file cut anywhere is rejected cleanly', () => {
  const p = join(dir, 'whole.safetensors');
  writeSafetensors(p, { a: { shape: [3], data: Float32Array.of(1, 2, 3) }, b: { shape: [2], data: Float32Array.of(4, 5), dtype: 'BF16' } });
  const whole = readFileSync(p);
  for (let cut = 0; cut < whole.length; cut++) {
    const q = writeRaw(dir, 'cut.safetensors', whole.subarray(0, cut));
    assert.throws(() => new SafetensorsFile(q).close(), (e: unknown) => e instanceof DpoError && !e.message.includes('\n'), `cut at ${cut}`);
  }
});
