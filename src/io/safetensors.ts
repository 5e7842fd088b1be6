/**
 * safetensors read and write (F32, F16, BF16). The header is untrusted: its length is bounded,
 * every entry is type-checked, offsets must lie inside the data region without overlapping, and
 * byte sizes must match shapes; each violation is a one-line DpoError naming the file and tensor.
 * Tensors are read lazily, straight from the file into their destination buffer.
 */
import { closeSync, fstatSync, openSync, readSync, renameSync, writeSync, unlinkSync } from 'node:fs';
import { DpoError } from '../errors.js';

export type STDType = 'F32' | 'F16' | 'BF16';
const ITEM: Record<STDType, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: STDType;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

/** An open safetensors file: the parsed header, and tensors loaded on demand. */
export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};
  private fd: number | null;

  constructor(readonly path: string) {
    const bad = (msg: string): never => {
      this.close();
      throw new DpoError(`${path}: not a valid safetensors file: ${msg}`);
    };
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      throw new DpoError(`${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const size = fstatSync(this.fd).size;
    if (size < 8) bad(`file is ${size} bytes, too short for the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readSync(this.fd, lenBuf, 0, 8, 0);
    const hlen = lenBuf.readBigUInt64LE(0);
    if (hlen > BigInt(Math.min(MAX_HEADER, size - 8))) bad(`header length ${hlen} exceeds ${size - 8 < MAX_HEADER ? `the file (${size} bytes)` : 'the 100 MB limit'}`);
    const n = Number(hlen);
    const hb = Buffer.alloc(n);
    if (readSync(this.fd, hb, 0, n, 8) !== n) bad('header truncated');
    let header: unknown;
    try {
      header = JSON.parse(hb.toString('utf8'));
    } catch {
      return bad('header is not valid JSON');
    }
    if (!header || typeof header !== 'object' || Array.isArray(header)) bad('header is not a JSON object');
    const dataStart = 8 + n;
    const dataLen = size - dataStart;
    const ranges: [number, number, string][] = [];
    for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (!v || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) bad('__metadata__ must map strings to strings');
        Object.assign(this.metadata, v);
        continue;
      }
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (!e || typeof e !== 'object') bad(`tensor "${name}": entry is not an object`);
      if (typeof e.dtype !== 'string') bad(`tensor "${name}": missing dtype`);
      if (!(e.dtype as string in ITEM)) {
        this.close();
        throw new DpoError(`${path}: tensor "${name}" has dtype ${e.dtype}; only F32, F16 and BF16 are supported (convert the checkpoint to one of them)`);
      }
      if (!Array.isArray(e.shape) || e.shape.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) bad(`tensor "${name}": shape must be a list of non-negative integers`);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || off.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) bad(`tensor "${name}": data_offsets must be two non-negative integers`);
      const [b, en] = off as number[];
      if (b > en) bad(`tensor "${name}": data_offsets begin ${b} > end ${en}`);
      if (en > dataLen) bad(`tensor "${name}": data_offsets end ${en} lies outside the data region (${dataLen} bytes; file truncated?)`);
      const shape = e.shape as number[];
      const want = shape.reduce((a, d) => a * d, 1) * ITEM[e.dtype as STDType];
      if (en - b !== want) bad(`tensor "${name}": ${en - b} bytes for shape [${shape.join(', ')}] of ${e.dtype} (needs ${want})`);
      ranges.push([b, en, name]);
      this.tensors.set(name, { name, dtype: e.dtype as STDType, shape, begin: dataStart + b, end: dataStart + en });
    }
    ranges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    for (let i = 1; i < ranges.length; i++) {
      if (ranges[i][0] < ranges[i - 1][1]) bad(`tensors "${ranges[i - 1][2]}" and "${ranges[i][2]}" overlap`);
    }
  }

  /** Reads a tensor as float32 (F16 / BF16 widened exactly). */
  read(name: string, out?: Float32Array): Float32Array {
    const info = this.tensors.get(name);
    if (!info) throw new DpoError(`${this.path}: no tensor named "${name}"`);
    if (this.fd === null) throw new DpoError(`${this.path}: file already closed`);
    const count = info.shape.reduce((a, d) => a * d, 1);
    const dst = out ?? new Float32Array(count);
    if (dst.length !== count) throw new DpoError(`${this.path}: tensor "${name}" has ${count} elements, destination ${dst.length}`);
    if (info.dtype === 'F32') {
      readFully(this.fd, new Uint8Array(dst.buffer, dst.byteOffset, count * 4), info.begin, this.path);
      return dst;
    }
    // 16-bit: read in slices and widen, so no second full-size copy exists.
    const CH = 1 << 20;
    const tmp = new Uint16Array(Math.min(count, CH));
    const u32 = new Uint32Array(dst.buffer, dst.byteOffset, count);
    for (let s = 0; s < count; s += CH) {
      const k = Math.min(CH, count - s);
      readFully(this.fd, new Uint8Array(tmp.buffer, 0, k * 2), info.begin + s * 2, this.path);
      if (info.dtype === 'BF16') for (let i = 0; i < k; i++) u32[s + i] = tmp[i] << 16;
      else for (let i = 0; i < k; i++) dst[s + i] = f16ToF32(tmp[i]);
    }
    return dst;
  }

  /** Reads a BF16 tensor's raw bits (for bf16 storage of frozen weights). */
  readRawBf16(name: string): Uint16Array {
    const info = this.tensors.get(name);
    if (!info || info.dtype !== 'BF16') throw new DpoError(`${this.path}: "${name}" is not a BF16 tensor`);
    const count = (info.end - info.begin) / 2;
    const out = new Uint16Array(count);
    readFully(this.fd!, new Uint8Array(out.buffer), info.begin, this.path);
    return out;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function readFully(fd: number, buf: Uint8Array, pos: number, path: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, pos + done);
    if (n <= 0) throw new DpoError(`${path}: unexpected end of file`);
    done += n;
  }
}

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** float32 → bf16 bits, round to nearest even (torch's conversion); NaN stays NaN. */
export function f32ToBf16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 → f16 bits, round to nearest even. */
export function f32ToF16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  const sign = (u >>> 16) & 0x8000;
  const e = (u >>> 23) & 0xff;
  let m = u & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  let ex = e - 127 + 15;
  if (ex >= 0x1f) return sign | 0x7c00;
  if (ex <= 0) {
    if (ex < -10) return sign;
    m |= 0x800000;
    const shift = 14 - ex;
    const half = 1 << (shift - 1);
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = m >>> 13;
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      ex++;
      if (ex >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (ex << 10) | r;
}

export interface TensorToWrite {
  shape: readonly number[];
  data: Float32Array | Float64Array;
  dtype?: STDType;
}

/**
 * Writes tensors atomically (temp file + rename), sorted by name, header padded with spaces to a
 * multiple of 8 bytes as the Python library does; `__metadata__` defaults to {"format": "pt"}.
 */
export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite> | [string, TensorToWrite][], metadata: Record<string, string> = { format: 'pt' }): void {
  const entries = (Array.isArray(tensors) ? tensors : Object.entries(tensors)).slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const [name, t] of entries) {
    const dt = t.dtype ?? 'F32';
    const n = t.shape.reduce((a, d) => a * d, 1);
    if (n !== t.data.length) throw new DpoError(`writing ${path}: tensor "${name}" has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    header[name] = { dtype: dt, shape: t.shape, data_offsets: [off, off + n * ITEM[dt]] };
    off += n * ITEM[dt];
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += ' '.repeat(pad);
  const hb = Buffer.from(json, 'utf8');
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hb.length));
    writeSync(fd, len);
    writeSync(fd, hb);
    for (const [, t] of entries) {
      const dt = t.dtype ?? 'F32';
      if (dt === 'F32') {
        const f = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
        writeAll(fd, new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
      } else {
        const CH = 1 << 20;
        const conv = dt === 'BF16' ? f32ToBf16 : f32ToF16;
        for (let s = 0; s < t.data.length; s += CH) {
          const k = Math.min(CH, t.data.length - s);
          const u = new Uint16Array(k);
          for (let i = 0; i < k; i++) u[i] = conv(t.data[s + i]);
          writeAll(fd, new Uint8Array(u.buffer));
        }
      }
    }
  } catch (e) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

function writeAll(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
}
