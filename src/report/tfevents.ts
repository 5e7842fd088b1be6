/**
 * TensorBoard event files, written by hand (no dependency): TFRecord framing (u64 length, masked
 * CRC-32C of the length, data, masked CRC-32C of the data) around `Event` protocol buffers
 * (tensorflow/core/util/event.proto): a first event with file_version "brain.Event:2", then one
 * event per scalar (Summary.Value.simple_value, as torch's SummaryWriter.add_scalar writes it) or
 * text (the text plugin's string tensor, as add_text). File name as torch's EventFileWriter:
 * `events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n>`.
 *
 * @example
 * const w = new EventFileWriter('out/runs/Dec02_01-41-09_host');
 * w.addScalar('train/loss', 0.69, 1);
 * w.addText('args', '{"beta": 0.1}', 0);
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), as TFRecord uses.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15, add 0xa282ead8 (mod 2³²). */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: the framing around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(data.length));
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  len.copy(out, 0);
  out.writeUInt32LE(maskedCrc32c(len), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

// Protocol-buffer encoding: field keys (number << 3 | wire type), varints, fixed 32/64, length-delimited.
function varint(v: number | bigint): number[] {
  let x = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x) b |= 0x80;
    out.push(b);
  } while (x);
  return out;
}
const key = (field: number, wire: number) => varint((field << 3) | wire);
const pbVarint = (field: number, v: number | bigint) => Buffer.from([...key(field, 0), ...varint(v)]);
const pbBytes = (field: number, b: Uint8Array | string) => {
  const data = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
  return Buffer.concat([Buffer.from([...key(field, 2), ...varint(data.length)]), data]);
};
const pbDouble = (field: number, v: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return Buffer.concat([Buffer.from(key(field, 1)), b]);
};
const pbFloat = (field: number, v: number) => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return Buffer.concat([Buffer.from(key(field, 5)), b]);
};

// event.proto / summary.proto / tensor.proto field numbers.
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5 };
const VALUE = { tag: 1, simpleValue: 2, tensor: 8, metadata: 9 };
const DT_STRING = 7;

/** proto3 leaves fields at their default (step 0, empty bytes) out. */
function event(step: number, body: Buffer, wallTime = Date.now() / 1000): Buffer {
  return Buffer.concat([pbDouble(EVENT.wallTime, wallTime), step ? pbVarint(EVENT.step, step) : Buffer.alloc(0), body]);
}

/** The first event of every file: file_version "brain.Event:2". */
export function versionEvent(wallTime?: number): Buffer {
  return event(0, pbBytes(EVENT.fileVersion, 'brain.Event:2'), wallTime);
}

/** Summary { value { tag, simple_value } }. */
export function scalarEvent(tag: string, value: number, step: number, wallTime?: number): Buffer {
  const v = Buffer.concat([pbBytes(VALUE.tag, tag), pbFloat(VALUE.simpleValue, value)]);
  return event(step, pbBytes(EVENT.summary, pbBytes(1, v)), wallTime);
}

/** The text plugin's summary: tag `<tag>/text_summary`, a DT_STRING tensor of shape [1]. */
export function textEvent(tag: string, text: string, step: number, wallTime?: number): Buffer {
  const metadata = pbBytes(1, pbBytes(1, 'text')); // plugin_data { plugin_name: text, content: TextPluginData() = empty, left out }
  const shape = pbBytes(2, pbBytes(2, pbVarint(1, 1))); // tensor_shape { dim { size: 1 } }
  const tensor = Buffer.concat([pbVarint(1, DT_STRING), shape, pbBytes(8, text)]);
  const v = Buffer.concat([pbBytes(VALUE.tag, `${tag}/text_summary`), pbBytes(VALUE.tensor, tensor), pbBytes(VALUE.metadata, metadata)]);
  return event(step, pbBytes(EVENT.summary, pbBytes(1, v)), wallTime);
}

let fileCount = 0;

/** Appends events to one new file in `logDir` (created on the first write; each write goes to disk at once, as the callback flushes). */
export class EventFileWriter {
  readonly path: string;
  private started = false;

  constructor(readonly logDir: string) {
    this.path = join(logDir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${hostname()}.${process.pid}.${fileCount++}`);
  }

  private write(ev: Buffer): void {
    if (!this.started) {
      mkdirSync(this.logDir, { recursive: true });
      appendFileSync(this.path, tfRecord(versionEvent()));
      this.started = true;
    }
    appendFileSync(this.path, tfRecord(ev));
  }

  addScalar(tag: string, value: number, step: number): void {
    this.write(scalarEvent(tag, value, step));
  }

  addText(tag: string, text: string, step: number): void {
    this.write(textEvent(tag, text, step));
  }
}
