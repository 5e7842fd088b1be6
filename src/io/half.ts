/**
 * 16-bit floats <-> float32, bit-exact with torch on CPU:
 * float32 -> bf16 and -> f16 round to nearest, ties to even; overflow goes to ±Inf;
 * NaN -> bf16 0xFFFF (what torch writes), NaN -> f16 keeps sign and top payload bits, quiet (F16C).
 * Widening is exact (f16 subnormals, ±Inf and NaN payloads included).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 bits -> bf16 bits. */
export function bitsToBf16(u: number): number {
  if ((u & 0x7fffffff) >>> 0 > 0x7f800000) return 0xffff;
  // Adding 0x7FFF plus the lowest kept bit rounds half to even; no overflow below NaN.
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 bits -> f16 bits. */
export function bitsToF16(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const e = (u >>> 23) & 0xff;
  let m = u & 0x7fffff;
  if (e === 0xff) return m ? sign | 0x7e00 | (m >>> 13) : sign | 0x7c00;
  const ex = e - 112; // rebias 127 -> 15
  if (ex >= 0x1f) return sign | 0x7c00;
  if (ex <= 0) {
    // f16 subnormal: value / 2^-24, rounded half to even.
    if (ex < -10) return sign;
    m |= 0x800000;
    const shift = 14 - ex;
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = (ex << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to 0x7C00 = Inf: exactly right.
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++;
  return sign | r;
}

export function f32ToBf16(x: number): number {
  f32[0] = x;
  return bitsToBf16(u32[0]);
}

export function f32ToF16(x: number): number {
  f32[0] = x;
  return bitsToF16(u32[0]);
}

export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

let f16Table: Uint32Array | null = null;

/** float32 bits of every f16 value, built once (256 KB). */
function f16Bits(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = (h & 0x8000) << 16;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) {
      f32[0] = m * 2 ** -24; // exact: at most 10 significant bits
      t[h] = (s | u32[0]) >>> 0;
    } else if (e === 31) t[h] = (s | 0x7f800000 | (m << 13)) >>> 0;
    else t[h] = (s | ((e + 112) << 23) | (m << 13)) >>> 0;
  }
  f16Table = t;
  return t;
}

export function f16ToF32(h: number): number {
  u32[0] = f16Bits()[h & 0xffff];
  return f32[0];
}

/** dst[i] = widen(src[i]); dst.length >= src.length. */
export function decodeBf16(src: Uint16Array, dst: Float32Array, dstOffset = 0): void {
  const d = new Uint32Array(dst.buffer, dst.byteOffset + dstOffset * 4, src.length);
  for (let i = 0; i < src.length; i++) d[i] = src[i] << 16;
}

export function decodeF16(src: Uint16Array, dst: Float32Array, dstOffset = 0): void {
  const t = f16Bits();
  const d = new Uint32Array(dst.buffer, dst.byteOffset + dstOffset * 4, src.length);
  for (let i = 0; i < src.length; i++) d[i] = t[src[i]];
}

/** dst[i] = round(src[srcOffset + i]) for i < dst.length; float64 input is first rounded to float32, as torch does. */
export function encodeHalf(kind: 'BF16' | 'F16', src: Float32Array | Float64Array, srcOffset: number, dst: Uint16Array): void {
  const conv = kind === 'BF16' ? bitsToBf16 : bitsToF16;
  if (src instanceof Float32Array) {
    const s = new Uint32Array(src.buffer, src.byteOffset + srcOffset * 4, dst.length);
    for (let i = 0; i < dst.length; i++) dst[i] = conv(s[i]);
  } else {
    for (let i = 0; i < dst.length; i++) {
      f32[0] = src[srcOffset + i];
      dst[i] = conv(u32[0]);
    }
  }
}
