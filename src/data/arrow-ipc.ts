/**
 * Rows of an Arrow IPC stream file, as the `datasets` library writes its processed cache
 * (`<name>-<split>.arrow`, pyarrow's RecordBatchStreamWriter; also the file format with its ARROW1
 * magic). Read by hand (flatbuffers metadata, little-endian buffers, no compression): null, bool,
 * signed/unsigned ints, floats, utf8/binary (and their large forms), lists (and large lists),
 * structs; what else appears is a one-line error.
 *
 * @example const rows = readArrowRows(readFileSync('cache/name-train.arrow'), 'name-train.arrow');
 */
import { DpoError } from '../errors.js';

// Minimal flatbuffers: a table's field i is at vtable slot 4 + 2i; offsets are relative to where they are stored.
class Table {
  constructor(readonly b: DataView, readonly pos: number) {}
  private slot(i: number): number {
    const vt = this.pos - this.b.getInt32(this.pos, true);
    const vtSize = this.b.getUint16(vt, true);
    const o = 4 + 2 * i;
    return o < vtSize ? this.b.getUint16(vt + o, true) : 0;
  }
  has(i: number): boolean {
    return this.slot(i) !== 0;
  }
  u8(i: number, d = 0): number {
    const o = this.slot(i);
    return o ? this.b.getUint8(this.pos + o) : d;
  }
  i16(i: number, d = 0): number {
    const o = this.slot(i);
    return o ? this.b.getInt16(this.pos + o, true) : d;
  }
  i32(i: number, d = 0): number {
    const o = this.slot(i);
    return o ? this.b.getInt32(this.pos + o, true) : d;
  }
  i64(i: number): number {
    const o = this.slot(i);
    return o ? Number(this.b.getBigInt64(this.pos + o, true)) : 0;
  }
  private ref(i: number): number {
    const o = this.slot(i);
    if (!o) return 0;
    const at = this.pos + o;
    return at + this.b.getUint32(at, true);
  }
  table(i: number): Table | null {
    const r = this.ref(i);
    return r ? new Table(this.b, r) : null;
  }
  str(i: number): string | null {
    const r = this.ref(i);
    if (!r) return null;
    const n = this.b.getUint32(r, true);
    return new TextDecoder().decode(new Uint8Array(this.b.buffer, this.b.byteOffset + r + 4, n));
  }
  /** A vector: its length and the position of element 0. */
  vec(i: number): { n: number; at: number } {
    const r = this.ref(i);
    return r ? { n: this.b.getUint32(r, true), at: r + 4 } : { n: 0, at: 0 };
  }
  tables(i: number): Table[] {
    const { n, at } = this.vec(i);
    return Array.from({ length: n }, (_, k) => new Table(this.b, at + 4 * k + this.b.getUint32(at + 4 * k, true)));
  }
}

const rootTable = (b: DataView) => new Table(b, b.getUint32(0, true));

interface Field {
  name: string;
  type: number;
  typeTable: Table | null;
  children: Field[];
}

const TYPE = { Null: 1, Int: 2, FloatingPoint: 3, Binary: 4, Utf8: 5, Bool: 6, List: 12, Struct: 13, LargeBinary: 19, LargeUtf8: 20, LargeList: 21 } as const;
const TYPE_NAMES: Record<number, string> = { 7: 'decimal', 8: 'date', 9: 'time', 10: 'timestamp', 11: 'interval', 14: 'union', 15: 'fixed-size binary', 16: 'fixed-size list', 17: 'map', 18: 'duration', 22: 'run-end encoded', 23: 'binary view', 24: 'utf8 view' };

function field(t: Table): Field {
  return { name: t.str(0) ?? '', type: t.u8(2), typeTable: t.table(3), children: t.tables(5).map(field) };
}

interface Batch {
  length: number;
  nodes: { length: number; nulls: number }[];
  buffers: { offset: number; length: number }[];
}

/** Decodes one column of a record batch (pre-order nodes and buffers) into `length` JS values. */
function decodeColumn(f: Field, batch: Batch, body: Uint8Array, cur: { node: number; buf: number }, where: string): unknown[] {
  const node = batch.nodes[cur.node++];
  const take = () => {
    const b = batch.buffers[cur.buf++];
    return body.subarray(b.offset, b.offset + b.length);
  };
  const view = (u: Uint8Array) => new DataView(u.buffer, u.byteOffset, u.byteLength);
  if (f.type === TYPE.Null) return new Array(node.length).fill(null);
  const validity = take();
  const valid = (i: number) => node.nulls === 0 || validity.length === 0 || (validity[i >> 3] >> (i & 7)) & 1;
  const out: unknown[] = new Array(node.length);
  switch (f.type) {
    case TYPE.Bool: {
      const d = take();
      for (let i = 0; i < node.length; i++) out[i] = valid(i) ? !!((d[i >> 3] >> (i & 7)) & 1) : null;
      return out;
    }
    case TYPE.Int: {
      const bits = f.typeTable!.i32(0), signed = !!f.typeTable!.u8(1);
      const d = view(take());
      const get = (i: number): number => {
        switch (bits) {
          case 8: return signed ? d.getInt8(i) : d.getUint8(i);
          case 16: return signed ? d.getInt16(2 * i, true) : d.getUint16(2 * i, true);
          case 32: return signed ? d.getInt32(4 * i, true) : d.getUint32(4 * i, true);
          default: return Number(signed ? d.getBigInt64(8 * i, true) : d.getBigUint64(8 * i, true));
        }
      };
      for (let i = 0; i < node.length; i++) out[i] = valid(i) ? get(i) : null;
      return out;
    }
    case TYPE.FloatingPoint: {
      const prec = f.typeTable!.i16(0);
      if (prec === 0) throw new DpoError(`${where}: column ${f.name} is float16, which is not read here`);
      const d = view(take());
      for (let i = 0; i < node.length; i++) out[i] = valid(i) ? (prec === 1 ? d.getFloat32(4 * i, true) : d.getFloat64(8 * i, true)) : null;
      return out;
    }
    case TYPE.Utf8: case TYPE.Binary: case TYPE.LargeUtf8: case TYPE.LargeBinary: {
      const large = f.type === TYPE.LargeUtf8 || f.type === TYPE.LargeBinary;
      const offs = view(take());
      const data = take();
      const off = (i: number) => (large ? Number(offs.getBigInt64(8 * i, true)) : offs.getInt32(4 * i, true));
      const text = f.type === TYPE.Utf8 || f.type === TYPE.LargeUtf8;
      const dec = new TextDecoder();
      for (let i = 0; i < node.length; i++) {
        if (!valid(i)) out[i] = null;
        else {
          const s = data.subarray(off(i), off(i + 1));
          out[i] = text ? dec.decode(s) : Uint8Array.from(s);
        }
      }
      return out;
    }
    case TYPE.List: case TYPE.LargeList: {
      const large = f.type === TYPE.LargeList;
      const offs = view(take());
      const off = (i: number) => (large ? Number(offs.getBigInt64(8 * i, true)) : offs.getInt32(4 * i, true));
      const child = decodeColumn(f.children[0], batch, body, cur, where);
      for (let i = 0; i < node.length; i++) out[i] = valid(i) ? child.slice(off(i), off(i + 1)) : null;
      return out;
    }
    case TYPE.Struct: {
      const cols = f.children.map((c) => [c.name, decodeColumn(c, batch, body, cur, where)] as const);
      for (let i = 0; i < node.length; i++) out[i] = valid(i) ? Object.fromEntries(cols.map(([k, c]) => [k, c[i]])) : null;
      return out;
    }
    default:
      throw new DpoError(`${where}: column ${f.name} has Arrow type ${TYPE_NAMES[f.type] ?? f.type}, which is not read here; export the data set to parquet or jsonl`);
  }
}

/** Every row of an Arrow IPC stream (or file) in `buf`. */
export function readArrowRows(buf: Uint8Array, where: string): Record<string, unknown>[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  // The file format: "ARROW1\0\0", then a stream, then a footer.
  if (buf.length >= 8 && new TextDecoder().decode(buf.subarray(0, 6)) === 'ARROW1') pos = 8;
  let fields: Field[] | null = null;
  const rows: Record<string, unknown>[] = [];
  while (pos + 4 <= buf.length) {
    let len = dv.getInt32(pos, true);
    pos += 4;
    if (len === -1) {
      len = dv.getInt32(pos, true);
      pos += 4;
    }
    if (len === 0) break; // end of stream
    if (len < 0 || pos + len > buf.length) throw new DpoError(`${where}: not an Arrow IPC stream (bad message length at byte ${pos - 4})`);
    const msg = rootTable(new DataView(buf.buffer, buf.byteOffset + pos, len));
    pos += len;
    const kind = msg.u8(1);
    const header = msg.table(2);
    const bodyLength = msg.i64(3);
    const body = buf.subarray(pos, pos + bodyLength);
    pos += bodyLength;
    if (kind === 1) fields = header!.tables(1).map(field);
    else if (kind === 3) {
      if (!fields) throw new DpoError(`${where}: a record batch before the schema`);
      if (header!.has(3)) throw new DpoError(`${where}: compressed Arrow buffers are not read here; export the data set to parquet or jsonl`);
      const h = header!;
      const nodesVec = h.vec(1), bufVec = h.vec(2);
      const b = h.b;
      const batch: Batch = {
        length: h.i64(0),
        nodes: Array.from({ length: nodesVec.n }, (_, k) => ({ length: Number(b.getBigInt64(nodesVec.at + 16 * k, true)), nulls: Number(b.getBigInt64(nodesVec.at + 16 * k + 8, true)) })),
        buffers: Array.from({ length: bufVec.n }, (_, k) => ({ offset: Number(b.getBigInt64(bufVec.at + 16 * k, true)), length: Number(b.getBigInt64(bufVec.at + 16 * k + 8, true)) })),
      };
      const cur = { node: 0, buf: 0 };
      const cols = fields.map((f) => [f.name, decodeColumn(f, batch, body, cur, where)] as const);
      for (let i = 0; i < batch.length; i++) rows.push(Object.fromEntries(cols.map(([k, c]) => [k, c[i]])));
    } else if (kind === 2) throw new DpoError(`${where}: dictionary-encoded Arrow columns are not read here; export the data set to parquet or jsonl`);
    else if (kind === 0 || kind > 5) throw new DpoError(`${where}: not an Arrow IPC stream (message type ${kind})`);
  }
  if (!fields) throw new DpoError(`${where}: not an Arrow IPC stream (no schema)`);
  return rows;
}
