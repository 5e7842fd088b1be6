/**
 * safetensors read and write (F32, F16, BF16).
 *
 * Reading is lazy and single-copy: opening reads only the header (validated as untrusted input,
 * see safetensors-header.ts); `read(name)` then reads that tensor's bytes from the file straight
 * into its Float32Array (16-bit dtypes are widened chunk by chunk), so a checkpoint never sits in
 * memory twice. Writing matches the Python library byte for byte: tensors ordered by dtype (F32,
 * BF16, F16) then name, compact JSON header with `__metadata__` first, padded with spaces to a
 * multiple of 8 bytes; the file appears atomically (temp file, fsync, rename).
 *
 * @example
 * const f = new SafetensorsFile('model.safetensors');
 * try { for (const t of f.list()) console.log(t.name, t.dtype, t.shape); const w = f.read('lm_head.weight'); }
 * finally { f.close(); }
 * writeSafetensors('out.safetensors', { w: { shape: [2, 2], data: new Float32Array(4), dtype: 'BF16' } });
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { DpoError } from '../errors.js';
import { tempPathFor } from './atomic.js';
import { mapFile, mapRange } from './mmap.js';
import { largeFloat32 } from '../tensor/large-buffer.js';
import { loadKernels } from '../quant/load-kernels.js';
import { decodeBf16, decodeF16, encodeHalf } from './half.js';
import { checkHeaderLength, parseHeader, type SafetensorsDType, type STDType, type TensorInfo } from './safetensors-header.js';

export { f16ToF32, f32ToBf16, f32ToF16, bf16ToF32 } from './half.js';
export { DTYPE_BITS, MAX_HEADER_BYTES, type SafetensorsDType, type STDType, type TensorInfo } from './safetensors-header.js';

const ITEM: Record<STDType, number> = { F32: 4, F16: 2, BF16: 2 };
/** Largest single read/write; Node refuses more than 2 GiB per call. */
const MAX_IO = 1 << 30;
/** Elements per chunk when converting 16-bit data. */
const CHUNK = 1 << 20;

/** A tensor loaded whole: float32 values, or the raw bits of a BF16 tensor when asked for. */
export interface LoadedTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: Float32Array | Uint16Array;
}

/** An open safetensors file: the validated header now, tensors on demand. */
export class SafetensorsFile {
  /** Tensors in file order. */
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  readonly size: number;
  private fd: number | null;
  private map: ArrayBuffer | null | undefined;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new DpoError(`${path}: cannot open safetensors file (${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message})`);
    }
    try {
      const st = fstatSync(this.fd);
      if (!st.isFile()) throw new DpoError(`${path}: not a regular file`);
      this.size = st.size;
      const prefix = new Uint8Array(8);
      if (this.size >= 8) readFully(this.fd, prefix, 0, path);
      const n = checkHeaderLength(prefix, this.size, path);
      const hb = new Uint8Array(n);
      readFully(this.fd, hb, 8, path);
      const h = parseHeader(hb, this.size, path);
      this.tensors = h.tensors;
      this.metadata = h.metadata;
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Opens `path`; same as the constructor. */
  static open(path: string): SafetensorsFile {
    return new SafetensorsFile(path);
  }

  /** Names in file order. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  /** Name, dtype and shape of every tensor, without reading data. */
  list(): TensorInfo[] {
    return [...this.tensors.values()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new DpoError(`${this.path}: no tensor named "${name}" (the file holds ${this.tensors.size} tensors${this.tensors.size ? `, e.g. "${this.tensors.keys().next().value}"` : ''})`);
    return info;
  }

  /** Reads a tensor as float32 (F16 / BF16 widened exactly), into `out` when given. */
  read(name: string, out?: Float32Array): Float32Array {
    const info = this.info(name);
    const fd = this.openFd();
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
      throw new DpoError(`${this.path}: tensor "${name}" has dtype ${info.dtype}; only F32, F16 and BF16 tensors can be loaded (convert the checkpoint, e.g. model.to(torch.float32).save_pretrained(...))`);
    }
    const count = numel(info.shape);
    // A fresh destination on huge pages when large (a frozen float32 embedding: 0.9 GB at 1.5B).
    const dst = out ?? largeFloat32(count);
    if (dst.length !== count) throw new DpoError(`${this.path}: tensor "${name}" has ${count} elements, the destination holds ${dst.length}`);
    if (info.dtype === 'F32') {
      readFully(fd, new Uint8Array(dst.buffer, dst.byteOffset, count * 4), info.begin, this.path);
      return dst;
    }
    // 16-bit: read a slice, widen it into place; never a second full-size buffer (nor mapped pages
    // in the RSS). BF16 is read and widened by the native addon when it is there, every thread its
    // own slice.
    const lk = info.dtype === 'BF16' ? loadKernels() : null;
    if (lk) {
      nativeRead(this.path, info.begin, () => lk.readBf16AsF32(fd, info.begin, dst));
      return dst;
    }
    const tmp = new Uint16Array(Math.min(count, CHUNK));
    const decode = info.dtype === 'BF16' ? decodeBf16 : decodeF16;
    for (let s = 0; s < count; s += CHUNK) {
      const k = Math.min(CHUNK, count - s);
      const part = k === tmp.length ? tmp : tmp.subarray(0, k);
      readFully(fd, new Uint8Array(part.buffer, 0, k * 2), info.begin + s * 2, this.path);
      decode(part, dst, s);
    }
    return dst;
  }

  /** Reads a BF16 tensor's raw bits (for bf16 storage of frozen weights), into `out` when given. */
  readRawBf16(name: string, out?: Uint16Array): Uint16Array {
    const info = this.info(name);
    if (info.dtype !== 'BF16') throw new DpoError(`${this.path}: tensor "${name}" is ${info.dtype}, not BF16`);
    return this.readRaw16(name, out);
  }

  private readRaw16(name: string, out?: Uint16Array): Uint16Array {
    const info = this.info(name);
    const count = numel(info.shape);
    const dst = out ?? new Uint16Array(count);
    if (dst.length !== count) throw new DpoError(`${this.path}: tensor "${name}" has ${count} elements, the destination holds ${dst.length}`);
    const bytes = new Uint8Array(dst.buffer, dst.byteOffset, count * 2), lk = loadKernels();
    if (lk && count * 2 >= PARALLEL_BYTES) nativeRead(this.path, info.begin, () => lk.readParallel(this.openFd(), info.begin, bytes));
    else readFully(this.openFd(), bytes, info.begin, this.path);
    return dst;
  }

  /**
   * A 16-bit tensor's raw bits without a copy: a view of the file's read-only memory map (io/mmap.ts),
   * which stays mapped while any view lives, even after close(). Falls back to readRawBf16's copy
   * where there is no mmap (no native addon, DPO_NO_MMAP=1) or the data is not 2-byte aligned.
   * Writing into a mapped view crashes the process: use it for frozen weights only.
   */
  viewRaw16(name: string): Uint16Array {
    const info = this.info(name);
    if (info.dtype !== 'BF16' && info.dtype !== 'F16') throw new DpoError(`${this.path}: tensor "${name}" is ${info.dtype}, not BF16 or F16`);
    if (info.begin % 2 !== 0) return this.readRaw16(name);
    if (this.map === undefined) this.map = mapFile(this.path);
    if (this.map) return new Uint16Array(this.map, info.begin, numel(info.shape));
    // A file too large for one ArrayBuffer: this tensor's own mapping.
    const own = mapRange(this.path, info.begin, info.end - info.begin);
    return own ? new Uint16Array(own, 0, numel(info.shape)) : this.readRaw16(name);
  }

  /** A tensor's bytes exactly as stored (any dtype). */
  readBytes(name: string): Uint8Array {
    const info = this.info(name);
    const out = new Uint8Array(info.end - info.begin);
    readFully(this.openFd(), out, info.begin, this.path);
    return out;
  }

  /** Every tensor, as float32, or BF16 kept as raw bits with `keepBf16`. */
  readAll(opts: { keepBf16?: boolean } = {}): Map<string, LoadedTensor> {
    const out = new Map<string, LoadedTensor>();
    for (const info of this.tensors.values()) {
      const data = opts.keepBf16 && info.dtype === 'BF16' ? this.readRawBf16(info.name) : this.read(info.name);
      out.set(info.name, { dtype: info.dtype, shape: info.shape.slice(), data });
    }
    return out;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private openFd(): number {
    if (this.fd === null) throw new DpoError(`${this.path}: file already closed`);
    return this.fd;
  }
}

/** Reads a whole safetensors file (see SafetensorsFile for lazy access). */
export function readSafetensors(path: string, opts: { keepBf16?: boolean } = {}): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string> } {
  const f = new SafetensorsFile(path);
  try {
    return { tensors: f.readAll(opts), metadata: { ...f.metadata } };
  } finally {
    f.close();
  }
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/** Below this one pread is as quick as splitting the read across threads. */
const PARALLEL_BYTES = 4 << 20;

/** Runs a native multi-threaded read of the tensor at byte `pos`, its failure as readFully's error. */
function nativeRead(path: string, pos: number, read: () => void): void {
  try {
    read();
  } catch (e) {
    throw new DpoError(`${path}: reading the tensor at byte ${pos} failed: ${(e as Error).message}`);
  }
}

function readFully(fd: number, buf: Uint8Array, pos: number, path: string): void {
  let done = 0;
  while (done < buf.length) {
    let n: number;
    try {
      n = readSync(fd, buf, done, Math.min(MAX_IO, buf.length - done), pos + done);
    } catch (e) {
      throw new DpoError(`${path}: read failed at byte ${pos + done} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (n <= 0) throw new DpoError(`${path}: unexpected end of file at byte ${pos + done} (the file shrank or is truncated)`);
    done += n;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface TensorToWrite {
  shape: readonly number[];
  /** float values (converted to `dtype`), or the raw bits of an F16/BF16 tensor. */
  data: Float32Array | Float64Array | Uint16Array;
  /** Stored dtype; F32 by default, or the dtype of raw 16-bit bits. */
  dtype?: STDType;
}

/** Rank of a dtype in the Python library's write order (its enum order, descending). */
const DTYPE_ORDER: Record<STDType, number> = { F32: 0, BF16: 1, F16: 2 };

/** Byte-wise (UTF-8) comparison, as Rust compares Strings. */
function compareUtf8(a: string, b: string): number {
  return a === b ? 0 : Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

interface Planned {
  name: string;
  dtype: STDType;
  t: TensorToWrite;
  bytes: number;
}

function plan(where: string, tensors: Record<string, TensorToWrite> | readonly (readonly [string, TensorToWrite])[]): Planned[] {
  const list = Array.isArray(tensors) ? (tensors as readonly (readonly [string, TensorToWrite])[]) : Object.entries(tensors as Record<string, TensorToWrite>);
  const seen = new Set<string>();
  const out: Planned[] = [];
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new DpoError(`writing ${where}: "__metadata__" cannot be a tensor name`);
    if (seen.has(name)) throw new DpoError(`writing ${where}: tensor "${name}" given twice`);
    seen.add(name);
    const dtype = t.dtype ?? 'F32';
    if (!Object.prototype.hasOwnProperty.call(ITEM, dtype)) throw new DpoError(`writing ${where}: tensor "${name}": dtype ${dtype} cannot be written (F32, BF16, F16)`);
    if (t.data instanceof Uint16Array && dtype === 'F32') throw new DpoError(`writing ${where}: tensor "${name}": raw 16-bit data needs dtype BF16 or F16`);
    for (const d of t.shape) if (!Number.isSafeInteger(d) || d < 0) throw new DpoError(`writing ${where}: tensor "${name}" has an invalid shape [${t.shape.join(', ')}]`);
    const n = numel(t.shape);
    if (n !== t.data.length) throw new DpoError(`writing ${where}: tensor "${name}" has ${t.data.length} values for shape [${t.shape.join(', ')}] (${n} elements)`);
    out.push({ name, dtype, t, bytes: n * ITEM[dtype] });
  }
  out.sort((a, b) => DTYPE_ORDER[a.dtype] - DTYPE_ORDER[b.dtype] || compareUtf8(a.name, b.name));
  return out;
}

/** The header bytes (padded) for planned tensors, as the Rust serializer writes them. */
function headerBytes(where: string, planned: readonly Planned[], metadata: Record<string, string> | null): Buffer {
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length) {
    const m = Object.keys(metadata).sort().map((k) => {
      if (typeof metadata[k] !== 'string') throw new DpoError(`writing ${where}: metadata "${k}" must be a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`;
    });
    parts.push(`"__metadata__":{${m.join(',')}}`);
  }
  let off = 0;
  for (const p of planned) {
    parts.push(`${JSON.stringify(p.name)}:{"dtype":"${p.dtype}","shape":[${p.t.shape.join(',')}],"data_offsets":[${off},${off + p.bytes}]}`);
    off += p.bytes;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  return Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
}

/** Writes one tensor's data in its stored dtype, converting in chunks. */
function writeTensor(fd: number, p: Planned): void {
  const { t, dtype } = p;
  if (t.data instanceof Uint16Array) {
    writeAll(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  } else if (dtype === 'F32') {
    if (t.data instanceof Float32Array) {
      writeAll(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    } else {
      const tmp = new Float32Array(Math.min(CHUNK, t.data.length));
      for (let s = 0; s < t.data.length; s += CHUNK) {
        const k = Math.min(CHUNK, t.data.length - s);
        for (let i = 0; i < k; i++) tmp[i] = t.data[s + i];
        writeAll(fd, new Uint8Array(tmp.buffer, 0, k * 4));
      }
    }
  } else {
    const tmp = new Uint16Array(Math.min(CHUNK, t.data.length));
    for (let s = 0; s < t.data.length; s += CHUNK) {
      const k = Math.min(CHUNK, t.data.length - s);
      const part = k === tmp.length ? tmp : tmp.subarray(0, k);
      encodeHalf(dtype, t.data, s, part);
      writeAll(fd, new Uint8Array(part.buffer, 0, k * 2));
    }
  }
}

/**
 * Writes tensors to `path` atomically. `metadata` defaults to {"format": "pt"}, which transformers
 * requires; pass null for none. Returns the file size in bytes.
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite> | readonly (readonly [string, TensorToWrite])[],
  metadata: Record<string, string> | null = { format: 'pt' },
): number {
  const planned = plan(path, tensors);
  const header = headerBytes(path, planned, metadata);
  const tmp = tempPathFor(path);
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw new DpoError(`cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check that ${basename(path)}'s directory exists and is writable`);
  }
  let size = 8 + header.length;
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeAll(fd, len);
    writeAll(fd, header);
    for (const p of planned) {
      writeTensor(fd, p);
      size += p.bytes;
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* already closed */ }
    try { unlinkSync(tmp); } catch { /* already gone */ }
    if (e instanceof DpoError) throw e;
    throw new DpoError(`cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return size;
}

/** The bytes a tensor takes on disk in `dtype` (F32 by default). */
export function storedBytes(t: TensorToWrite): number {
  return numel(t.shape) * ITEM[t.dtype ?? 'F32'];
}

function writeAll(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, Math.min(MAX_IO, buf.length - done));
}
