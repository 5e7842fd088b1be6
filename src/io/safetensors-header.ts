/**
 * The safetensors header, validated as untrusted input. Layout: 8-byte little-endian header length N,
 * N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
 * then the data region. Like the reference (Rust) library we require the tensors to tile the data
 * region exactly: sorted by offset, each starts where the previous ends, the last ends at the end of
 * the file. Every violation is one line naming the file and the tensor.
 */
import { DpoError } from '../errors.js';
import { JsonSyntaxError, parseJson } from './json.js';

/** Bits per element of every dtype the safetensors format defines (safetensors 0.8). */
export const DTYPE_BITS = {
  BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8, I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
} as const;

/** Any dtype a safetensors header may name. */
export type SafetensorsDType = keyof typeof DTYPE_BITS;
/** The dtypes this library reads into float32 and writes. */
export type STDType = 'F32' | 'F16' | 'BF16';
export const FLOAT_DTYPES: readonly STDType[] = ['F32', 'BF16', 'F16'];

/** Headers above this are refused before allocating (the reference library's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute byte offsets in the file: [begin, end). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Tensors in file (offset) order. */
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Byte offset of the data region: 8 + header length. */
  dataStart: number;
}

/** Validates the 8-byte length prefix against the file size; returns the header length. */
export function checkHeaderLength(prefix: Uint8Array, fileSize: number, where: string): number {
  const bad = (msg: string): never => {
    throw new DpoError(`${where}: not a valid safetensors file: ${msg}`);
  };
  if (fileSize < 8) bad(`the file is ${fileSize} bytes, shorter than the 8-byte header length (empty or truncated file)`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) bad(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt file or not safetensors)`);
  if (n > BigInt(fileSize - 8)) bad(`header length ${n} exceeds the ${fileSize - 8} bytes after the length prefix (truncated file?)`);
  if (n < 2) bad(`header length ${n} is too small for a JSON object`);
  return Number(n);
}

const describe = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** Parses and validates the header bytes of a file of `fileSize` bytes. */
export function parseHeader(bytes: Uint8Array, fileSize: number, where: string): SafetensorsHeader {
  const bad = (msg: string): never => {
    throw new DpoError(`${where}: not a valid safetensors file: ${msg}`);
  };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bad('the header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = parseJson(text).value;
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    return bad(e.message.startsWith('duplicate key') ? `the header has a ${e.message} (each name may appear once)` : `the header is not valid JSON (${e.message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) bad(`the header must be a JSON object, got ${Array.isArray(header) ? 'an array' : describe(header)}`);
  const dataStart = 8 + bytes.length;
  const dataLen = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const list: TensorInfo[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null) continue;
      if (typeof v !== 'object' || Array.isArray(v)) bad(`"__metadata__" must be an object mapping strings to strings, got ${describe(v)}`);
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') bad(`"__metadata__" must map strings to strings, but "${k}" is ${describe(s)}`);
        Object.defineProperty(metadata, k, { value: s, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const t = `tensor "${name}"`;
    if (!v || typeof v !== 'object' || Array.isArray(v)) bad(`${t}: entry must be an object with dtype, shape and data_offsets, got ${describe(v)}`);
    const e = v as Record<string, unknown>;
    if (!('dtype' in e)) bad(`${t}: missing "dtype"`);
    if (typeof e.dtype !== 'string') bad(`${t}: "dtype" must be a string, got ${describe(e.dtype)}`);
    const dtype = e.dtype as string;
    if (!Object.prototype.hasOwnProperty.call(DTYPE_BITS, dtype)) bad(`${t}: unknown dtype ${describe(dtype)} (safetensors defines ${Object.keys(DTYPE_BITS).join(', ')})`);
    if (!('shape' in e)) bad(`${t}: missing "shape"`);
    if (!Array.isArray(e.shape)) bad(`${t}: "shape" must be a list of non-negative integers, got ${describe(e.shape)}`);
    const shape = e.shape as unknown[];
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) bad(`${t}: "shape" must be a list of non-negative integers, got ${describe(shape)}`);
    }
    if (!('data_offsets' in e)) bad(`${t}: missing "data_offsets"`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || off.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) {
      bad(`${t}: "data_offsets" must be two non-negative integers [begin, end], got ${describe(off)}`);
    }
    const [begin, end] = off as number[];
    if (begin > end) bad(`${t}: data_offsets begin ${begin} > end ${end}`);
    if (end > dataLen) bad(`${t}: data_offsets [${begin}, ${end}] reach past the end of the data region (${dataLen} bytes; truncated file?)`);
    let count = 1;
    for (const d of shape as number[]) count *= d;
    const bits = DTYPE_BITS[dtype as SafetensorsDType];
    if (!Number.isSafeInteger(count * bits)) bad(`${t}: shape [${shape.join(', ')}] is too large`);
    if ((count * bits) % 8 !== 0) bad(`${t}: ${count} elements of ${dtype} do not fill whole bytes`);
    const need = (count * bits) / 8;
    if (end - begin !== need) bad(`${t}: data_offsets span ${end - begin} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${need}`);
    list.push({ name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin: dataStart + begin, end: dataStart + end });
  }
  // Sorted by offset (names break ties between empty tensors), the tensors must tile the data region.
  list.sort((a, b) => a.begin - b.begin || a.end - b.end || (a.name < b.name ? -1 : 1));
  let at = dataStart;
  let prev: TensorInfo | null = null;
  for (const x of list) {
    if (x.begin < at) bad(`tensors "${prev!.name}" and "${x.name}" overlap (bytes ${prev!.begin - dataStart}-${prev!.end - dataStart} and ${x.begin - dataStart}-${x.end - dataStart})`);
    if (x.begin > at) bad(`tensor "${x.name}": ${x.begin - at} unused bytes before its data at offset ${x.begin - dataStart} (tensors must be packed back to back)`);
    at = x.end;
    prev = x;
  }
  if (at !== fileSize) bad(`${fileSize - at} bytes after the last tensor's data are not described by the header`);
  return { tensors: new Map(list.map((x) => [x.name, x])), metadata, dataStart };
}
