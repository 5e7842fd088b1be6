/** Shared helpers for the io tests: temp directories and hand-built safetensors bytes. */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** A fresh temp directory, removed when the test file finishes. */
export function tempDir(prefix = 'dpo-io-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/**
 * A copy of fixture model `src` in `dir`/`name` with config.json keys replaced (in text_config for
 * a multimodal config): a variant the reference fixture does not cover, e.g. without its sliding window.
 */
export function patchedFixture(src: string, dir: string, name: string, patch: Record<string, unknown>): string {
  const d = join(dir, name);
  cpSync(src, d, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
  Object.assign(cfg.text_config ?? cfg, patch);
  writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
  return d;
}

/** 8-byte little-endian length + header text + data, with an explicit length when given. */
export function rawSafetensors(header: string | object | Uint8Array, data: Uint8Array | number = 0, declaredLength?: bigint): Buffer {
  const h = header instanceof Uint8Array ? Buffer.from(header) : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(declaredLength ?? BigInt(h.length));
  const d = typeof data === 'number' ? Buffer.alloc(data) : Buffer.from(data);
  return Buffer.concat([len, h, d]);
}

export function writeRaw(dir: string, name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}
