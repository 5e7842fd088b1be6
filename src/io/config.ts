/**
 * config.json as a file: read (raw JSON plus which numbers were written as floats, so saving keeps
 * them floats), updated and written back as transformers writes it. What the keys mean is read by
 * the one parser, models/registry.ts archFromConfig.
 *
 * @example
 * const { raw, floatPaths } = readModelConfig('/models/llama'); const arch = archFromConfig(raw);
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { JsonSyntaxError, parseJson, stringifyPython } from './json.js';

export interface ConfigFile {
  /** The config.json path (for messages). */
  path: string;
  /** The parsed JSON object, unchanged. */
  raw: Record<string, unknown>;
  /** Paths of integral numbers written as floats in the file (for writing back faithfully). */
  floatPaths: Set<string>;
}

/** Reads `<dir>/config.json` (or the given .json path): a JSON object, or a one-line error. */
export function readModelConfig(dirOrFile: string): ConfigFile {
  const path = dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DpoError(`${path}: ${code === 'ENOENT' ? 'missing; a model directory needs config.json' : `cannot read (${code ?? (e as Error).message})`}`);
  }
  let parsed;
  try {
    parsed = parseJson(text);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw new DpoError(`${path}: not valid JSON (${e.message})`);
  }
  const raw = parsed.value;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new DpoError(`${path}: must be a JSON object`);
  return { path, raw: raw as Record<string, unknown>, floatPaths: parsed.floatPaths };
}

/**
 * The raw config with `updates` applied (undefined deletes a key), for saving. Setting `dtype`
 * also updates a legacy `torch_dtype` so the two never disagree.
 */
export function updatedConfig(raw: Record<string, unknown>, updates: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  for (const [k, v] of Object.entries(updates)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  if ('dtype' in updates && 'torch_dtype' in out && updates.torch_dtype === undefined) out.torch_dtype = updates.dtype;
  return out;
}

/** config.json text as transformers writes it (sorted keys, indent 2, floats kept floats). */
export function configJsonText(raw: Record<string, unknown>, floatPaths: ReadonlySet<string> = new Set()): string {
  return `${stringifyPython(raw, floatPaths)}\n`;
}

/** Writes `<dir>/config.json` atomically. */
export function writeModelConfig(dir: string, raw: Record<string, unknown>, floatPaths: ReadonlySet<string> = new Set()): void {
  writeFileAtomic(join(dir, 'config.json'), configJsonText(raw, floatPaths));
}
