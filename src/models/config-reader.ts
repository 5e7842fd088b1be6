/**
 * Typed reads of config.json keys with transformers' defaults: a key that is absent (or null where
 * transformers treats null as absent) takes the model type's default; a present key of the wrong
 * kind is a one-line error naming the file and the key.
 */
import { DpoError } from '../errors.js';

export type Raw = Record<string, unknown>;

/** Largest size accepted for one dimension: typed-array lengths and int32 token ids stay exact. */
export const MAX_DIM = 2 ** 31 - 1;

export class ConfigReader {
  /** `where` names the file in messages; `prefix` names a nested dict (`rope_parameters.`). */
  constructor(readonly raw: Raw, readonly where: string, private readonly prefix = '') {}

  get modelType(): string {
    return String(this.raw.model_type ?? '');
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  /** A reader of the nested object `key` (or of {} when absent). */
  sub(key: string): ConfigReader {
    const v = this.raw[key];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v))) this.fail(key, 'an object', v);
    return new ConfigReader((v ?? {}) as Raw, this.where, `${this.prefix}${key}.`);
  }

  fail(key: string, want: string, v: unknown): never {
    throw new DpoError(`${this.where}: "${this.prefix}${key}" must be ${want}, got ${JSON.stringify(v)}`);
  }

  private missing(key: string): never {
    throw new DpoError(`${this.where}: config.json has no "${this.prefix}${key}"; it is required for model_type "${this.modelType}"`);
  }

  num(key: string, fallback?: number): number {
    if (!this.has(key)) return fallback ?? this.missing(key);
    const v = this.raw[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'a number', v);
    return v as number;
  }

  positive(key: string, fallback?: number): number {
    const v = this.num(key, fallback);
    if (!(v > 0)) this.fail(key, 'a positive number', v);
    return v;
  }

  /** A number in [lo, hi] (dropouts, epsilons). */
  inRange(key: string, fallback: number, lo: number, hi: number): number {
    const v = this.num(key, fallback);
    if (v < lo || v > hi) this.fail(key, `between ${lo} and ${hi}`, v);
    return v;
  }

  /** A size (layers, heads, widths): a whole number from 1 to MAX_DIM, caught before any buffer exists. */
  size(key: string, fallback?: number): number {
    const v = this.num(key, fallback);
    if (!Number.isInteger(v) || v < 1 || v > MAX_DIM) this.fail(key, `a whole number from 1 to ${MAX_DIM}`, v);
    return v;
  }

  /** A size or null (null = off, as for sliding_window); `fallback` when absent. */
  sizeOrNull(key: string, fallback: number | null): number | null {
    if (this.raw[key] === undefined) return fallback;
    if (this.raw[key] === null) return null;
    return this.size(key);
  }

  numOrNull(key: string, fallback: number | null = null): number | null {
    if (this.raw[key] === undefined) return fallback;
    if (this.raw[key] === null) return null;
    return this.num(key);
  }

  /** A soft-cap (Gemma): null = off, else a positive number; returned as 0 = off. */
  softcap(key: string, fallback: number | null): number {
    const v = this.numOrNull(key, fallback);
    if (v !== null && !(v > 0)) this.fail(key, 'a positive number or null', v);
    return v ?? 0;
  }

  bool(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const v = this.raw[key];
    if (typeof v !== 'boolean') this.fail(key, 'true or false', v);
    return v as boolean;
  }

  str(key: string, fallback: string): string {
    if (!this.has(key)) return fallback;
    const v = this.raw[key];
    if (typeof v !== 'string') this.fail(key, 'a string', v);
    return v as string;
  }

  /** A list of `n` entries each passing `ok`, or null when absent. */
  list<T>(key: string, n: number, ok: (x: unknown) => boolean, want: string): T[] | null {
    if (!this.has(key)) return null;
    const v = this.raw[key];
    if (!Array.isArray(v) || !v.every(ok)) this.fail(key, `a list of ${want}`, v);
    if ((v as unknown[]).length !== n) throw new DpoError(`${this.where}: "${this.prefix}${key}" has ${(v as unknown[]).length} entries for ${n} layers`);
    return v as T[];
  }

  /** Refuses a key that would change the numbers unless it has the value we implement. */
  only(key: string, allowed: readonly unknown[], what: string): void {
    const v = this.raw[key];
    if (v === undefined || allowed.includes(v)) return;
    throw new DpoError(`${this.where}: "${this.prefix}${key}" = ${JSON.stringify(v)} is not supported for model_type "${this.modelType}" (${what}); supported: ${allowed.map((x) => JSON.stringify(x)).join(', ')}`);
  }
}
