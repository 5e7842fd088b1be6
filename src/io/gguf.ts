/**
 * The GGUF container (version 3), as llama.cpp's gguf-py GGUFWriter lays it out: header, typed
 * key/value metadata in insertion order, tensor infos, then tensor data, each tensor at a multiple
 * of the alignment (32 unless `general.alignment` says otherwise). Written streaming, one tensor at
 * a time, so a model never has to exist twice in memory.
 *
 * Shapes are given row-major as everywhere else here ([rows, cols]); GGUF stores dims innermost
 * first (ne0 = cols), so they are reversed on the way out.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { DpoError } from '../errors.js';

/** ggml_type ids of the tensor types written here, with their block geometry. */
export const GGML_TYPES = {
  F32: { id: 0, blockSize: 1, typeSize: 4 },
  F16: { id: 1, blockSize: 1, typeSize: 2 },
  Q8_0: { id: 8, blockSize: 32, typeSize: 34 },
  BF16: { id: 30, blockSize: 1, typeSize: 2 },
} as const;
export type GgmlType = keyof typeof GGML_TYPES;

/** gguf_type ids of metadata values. */
const VT = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
export type ScalarKind = Exclude<keyof typeof VT, 'array'>;

export type GgufValue =
  | { type: ScalarKind; value: number | bigint | boolean | string }
  | { type: 'array'; itemType: ScalarKind; value: readonly (number | bigint | boolean | string)[] };

export const u32 = (value: number): GgufValue => ({ type: 'u32', value });
export const i32 = (value: number): GgufValue => ({ type: 'i32', value });
export const f32 = (value: number): GgufValue => ({ type: 'f32', value });
export const bool = (value: boolean): GgufValue => ({ type: 'bool', value });
export const str = (value: string): GgufValue => ({ type: 'string', value });
export const arr = (itemType: ScalarKind, value: readonly (number | bigint | boolean | string)[]): GgufValue => ({ type: 'array', itemType, value });

export interface GgufTensor {
  name: string;
  /** Row-major shape (outermost first), e.g. [out_features, in_features]. */
  shape: readonly number[];
  type: GgmlType;
  /** The encoded bytes, produced when the tensor is written (nbytes must match). */
  data: () => Uint8Array;
}

export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Bytes a tensor of this shape and type occupies. */
export function tensorBytes(shape: readonly number[], type: GgmlType): number {
  const t = GGML_TYPES[type];
  const ne0 = shape[shape.length - 1] ?? 1;
  if (ne0 % t.blockSize !== 0) throw new DpoError(`GGUF: a ${type} tensor needs rows that are a multiple of ${t.blockSize} values, got ${ne0}`);
  const n = shape.reduce((a, b) => a * b, 1);
  return (n / t.blockSize) * t.typeSize;
}

const pad = (n: number, a: number) => (a - (n % a)) % a;

/** Serialises the metadata and tensor-info part (everything before the data section's padding). */
class HeaderBuilder {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  scalar(kind: ScalarKind, v: number | bigint | boolean | string, key: string): void {
    const bad = () => new DpoError(`GGUF: metadata "${key}" must be a ${kind}, got ${JSON.stringify(String(v))}`);
    if (kind === 'string') {
      if (typeof v !== 'string') throw bad();
      this.string(v);
      return;
    }
    if (kind === 'bool') {
      if (typeof v !== 'boolean') throw bad();
      this.push(Buffer.from([v ? 1 : 0]));
      return;
    }
    const b = Buffer.alloc(kind === 'u8' || kind === 'i8' ? 1 : kind === 'u16' || kind === 'i16' ? 2 : kind === 'u64' || kind === 'i64' || kind === 'f64' ? 8 : 4);
    if (kind === 'u64' || kind === 'i64') {
      if (typeof v !== 'number' && typeof v !== 'bigint') throw bad();
      kind === 'u64' ? b.writeBigUInt64LE(BigInt(v)) : b.writeBigInt64LE(BigInt(v));
    } else {
      if (typeof v !== 'number' || (!Number.isFinite(v) && kind !== 'f32' && kind !== 'f64')) throw bad();
      switch (kind) {
        case 'u8': b.writeUInt8(v); break;
        case 'i8': b.writeInt8(v); break;
        case 'u16': b.writeUInt16LE(v); break;
        case 'i16': b.writeInt16LE(v); break;
        case 'u32': b.writeUInt32LE(v); break;
        case 'i32': b.writeInt32LE(v); break;
        case 'f32': b.writeFloatLE(v); break;
        case 'f64': b.writeDoubleLE(v); break;
      }
    }
    this.push(b);
  }
  concat(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * Writes a GGUF file. `metadata` keeps its order; `general.alignment`, when present, sets the
 * alignment (as llama.cpp reads it).
 * @example writeGguf('m.gguf', [['general.architecture', str('llama')]], [{ name: 'x', shape: [2, 32], type: 'F32', data: () => bytes }])
 */
export function writeGguf(path: string, metadata: readonly [string, GgufValue][], tensors: readonly GgufTensor[]): void {
  const seen = new Set<string>();
  for (const [k] of metadata) {
    if (seen.has(k)) throw new DpoError(`GGUF: metadata key "${k}" given twice`);
    seen.add(k);
  }
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new DpoError(`GGUF: tensor "${t.name}" given twice`);
    names.add(t.name);
  }
  const alignKv = metadata.find(([k]) => k === 'general.alignment');
  const alignment = alignKv ? Number(alignKv[1].value) : GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) throw new DpoError(`GGUF: general.alignment must be a positive multiple of 8, got ${alignment}`);

  const h = new HeaderBuilder();
  h.push(Buffer.from('GGUF', 'ascii'));
  h.u32(3);
  h.u64(tensors.length);
  h.u64(metadata.length);
  for (const [key, v] of metadata) {
    h.string(key);
    h.u32(VT[v.type]);
    if (v.type === 'array') {
      h.u32(VT[v.itemType]);
      h.u64(v.value.length);
      for (const x of v.value) h.scalar(v.itemType, x, key);
    } else h.scalar(v.type, v.value, key);
  }
  const sizes = tensors.map((t) => tensorBytes(t.shape, t.type));
  let offset = 0;
  tensors.forEach((t, i) => {
    h.string(t.name);
    h.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) h.u64(t.shape[d]);
    h.u32(GGML_TYPES[t.type].id);
    h.u64(offset);
    offset += sizes[i] + pad(sizes[i], alignment);
  });
  const header = h.concat();

  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header);
    writeSync(fd, Buffer.alloc(pad(header.length, alignment)));
    tensors.forEach((t, i) => {
      const bytes = t.data();
      if (bytes.byteLength !== sizes[i]) throw new Error(`GGUF: tensor "${t.name}" produced ${bytes.byteLength} bytes, its shape and type need ${sizes[i]}`);
      writeSync(fd, bytes);
      const p = pad(sizes[i], alignment);
      if (p) writeSync(fd, Buffer.alloc(p));
    });
  } finally {
    closeSync(fd);
  }
}
