import test from 'node:test';
import assert from 'node:assert/strict';
import { bitsToBf16, bitsToF16, bf16ToF32, decodeBf16, decodeF16, encodeHalf, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/io/half.js';

// [float32 bits, torch .to(bfloat16) bits, torch .to(float16) bits], from torch 2.13 on CPU.
const TORCH: [number, number, number][] = [
  [0x00000000, 0x0000, 0x0000], [0x80000000, 0x8000, 0x8000], [0x3f800000, 0x3f80, 0x3c00],
  [0x3f808000, 0x3f80, 0x3c04], [0x3f818000, 0x3f82, 0x3c0c], [0x3f808001, 0x3f81, 0x3c04],
  [0x3f80ffff, 0x3f81, 0x3c08], [0x7f7fffff, 0x7f80, 0x7c00], [0xff7fffff, 0xff80, 0xfc00],
  [0x7f800000, 0x7f80, 0x7c00], [0xff800000, 0xff80, 0xfc00], [0x7fc00000, 0xffff, 0x7e00],
  [0xffc00000, 0xffff, 0xfe00], [0x7f800001, 0xffff, 0x7e00], [0xff812345, 0xffff, 0xfe09],
  [0x7fbfffff, 0xffff, 0x7fff], [0x00000001, 0x0000, 0x0000], [0x807fffff, 0x8080, 0x8000],
  [0x00800000, 0x0080, 0x0000], [0x3effffff, 0x3f00, 0x3800], [0x477fe000, 0x4780, 0x7bff],
  [0x477ff000, 0x4780, 0x7c00], [0x477fefff, 0x4780, 0x7bff], [0x38800000, 0x3880, 0x0400],
  [0x33800000, 0x3380, 0x0001], [0x33800001, 0x3380, 0x0001], [0x33000000, 0x3300, 0x0000],
  [0x33000001, 0x3300, 0x0001], [0x387fc000, 0x3880, 0x03ff], [0x387fe000, 0x3880, 0x0400],
  [0x3dcccccd, 0x3dcd, 0x2e66], [0xc2f6e979, 0xc2f7, 0xd7b7], [0x40490fdb, 0x4049, 0x4248],
  [0x7f7f8000, 0x7f80, 0x7c00], [0x7f7f7fff, 0x7f7f, 0x7c00],
];

const hex = (x: number): string => `0x${x.toString(16)}`;

test('float32 -> bf16 / f16 bits match torch (ties to even, overflow, subnormals, NaN, Inf)', () => {
  for (const [u, b, h] of TORCH) {
    assert.equal(hex(bitsToBf16(u)), hex(b), `bf16 of ${hex(u)}`);
    assert.equal(hex(bitsToF16(u)), hex(h), `f16 of ${hex(u)}`);
  }
  // The same through the bulk encoder (float32 and float64 sources).
  const src = new Float32Array(new Uint32Array(TORCH.map((r) => r[0])).buffer);
  const bf = new Uint16Array(src.length);
  const hf = new Uint16Array(src.length);
  encodeHalf('BF16', src, 0, bf);
  encodeHalf('F16', src, 0, hf);
  assert.deepEqual([...bf], TORCH.map((r) => r[1]));
  assert.deepEqual([...hf], TORCH.map((r) => r[2]));
  const src64 = Float64Array.from(src);
  encodeHalf('BF16', src64, 0, bf);
  assert.deepEqual([...bf].filter((_, i) => !Number.isNaN(src[i])), TORCH.filter((_, i) => !Number.isNaN(src[i])).map((r) => r[1]));
});

test('bf16 rounding is the nearest representable value, ties to even (random float32s)', () => {
  let seed = 12345;
  const rand = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let k = 0; k < 20000; k++) {
    u[0] = rand();
    const x = f[0];
    if (((u[0] >>> 23) & 0xff) >= 0xfe) continue; // Inf/NaN, or next to the overflow boundary (checked above)
    const r = bf16ToF32(f32ToBf16(x));
    // Candidates: truncation and the next bf16 away from zero.
    const lo = bf16ToF32(u[0] >>> 16);
    const hi = bf16ToF32(((u[0] >>> 16) + 1) & 0xffff);
    const dlo = Math.abs(x - lo), dhi = Math.abs(hi - x);
    const want = dlo < dhi ? lo : dhi < dlo ? hi : ((u[0] >>> 16) & 1) === 0 ? lo : hi;
    assert.ok(Object.is(r, want), `bf16(${x}) = ${r}, nearest-even is ${want}`);
  }
});

test('every f16 and bf16 value widens exactly and narrows back to itself', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const wide = new Float32Array(65536);
  decodeF16(all, wide);
  const back = new Uint16Array(65536);
  encodeHalf('F16', wide, 0, back);
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    // NaNs come back quiet with their payload; everything else bit for bit.
    assert.equal(back[h], isNaN ? h | 0x200 : h, `f16 ${hex(h)}`);
    assert.ok(Object.is(f16ToF32(h), wide[h]) || (Number.isNaN(wide[h]) && isNaN));
  }
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0xfc00), -Infinity);
  decodeBf16(all, wide);
  encodeHalf('BF16', wide, 0, back);
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
    assert.equal(back[h], isNaN ? 0xffff : h, `bf16 ${hex(h)}`);
  }
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToBf16(-2), 0xc000);
});
