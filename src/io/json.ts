/**
 * JSON for untrusted headers and for config files Python reads back.
 *
 * `parseJson` is a strict parser: it rejects duplicate keys (JSON.parse keeps the last one
 * silently), bounds nesting depth, never lets a key named `__proto__` touch a prototype, and
 * records which integral numbers were written as floats (`10000.0`), so `stringifyPython` can write
 * them back as floats: transformers 5's strict configs refuse `0` where a float is declared.
 * `stringifyPython` writes what Python's `json.dumps(obj, indent=2, sort_keys=True)` writes.
 */

export class JsonSyntaxError extends Error {}

export interface ParsedJson {
  value: unknown;
  /** Paths (`a.b.0.c`) of numbers that are integral but were written with a fraction or exponent. */
  floatPaths: Set<string>;
}

const MAX_DEPTH = 64;

/** Parses `text` strictly; throws JsonSyntaxError with a short reason and the character offset. */
export function parseJson(text: string): ParsedJson {
  const floatPaths = new Set<string>();
  let i = 0;
  const fail = (why: string): never => {
    throw new JsonSyntaxError(`${why} at character ${i}`);
  };
  const ws = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const str = (): string => {
    // Find the closing quote, then let JSON.parse decode escapes (it validates them too).
    const start = i;
    i++;
    let simple = true;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) {
        simple = false;
        i += 2;
        continue;
      }
      if (c < 0x20) fail('control character in string');
      i++;
    }
    if (i >= text.length) fail('unterminated string');
    i++;
    if (simple) return text.slice(start + 1, i - 1);
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail('bad escape in string');
    }
  };
  const value = (path: string, depth: number): unknown => {
    if (depth > MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH} levels`);
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key');
        const key = str();
        if (seen.has(key)) fail(`duplicate key ${JSON.stringify(key)}`);
        seen.add(key);
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        const v = value(path ? `${path}.${key}` : key, depth + 1);
        // defineProperty: a "__proto__" key becomes data, as with JSON.parse.
        Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(path ? `${path}.${arr.length}` : String(arr.length), depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    for (const [lit, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return v;
      }
    }
    const m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) return fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
    i += m[0].length;
    const n = Number(m[0]);
    if (!Number.isFinite(n)) fail(`number ${m[0]} out of range`);
    if ((m[1] || m[2]) && Number.isInteger(n)) floatPaths.add(path);
    return n;
  };
  const v = value('', 0);
  ws();
  if (i < text.length) fail('unexpected text after the JSON value');
  return { value: v, floatPaths };
}

/** Config keys transformers declares as float: integral values are written `8.0`, not `8`. */
const FLOAT_KEYS = new Set([
  'rope_theta', 'rms_norm_eps', 'layer_norm_epsilon', 'layer_norm_eps', 'initializer_range', 'attention_dropout',
  'resid_pdrop', 'embd_pdrop', 'attn_pdrop', 'summary_first_dropout', 'factor', 'low_freq_factor', 'high_freq_factor',
  'attention_factor', 'beta_fast', 'beta_slow', 'partial_rotary_factor', 'hidden_dropout', 'hidden_dropout_prob',
]);

/** Python's repr() of a float: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
export function pythonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expStr] = x.toExponential().split('e');
  const exp = Number(expStr);
  if (exp < -4 || exp >= 16) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let s: string;
  if (exp < 0) s = `0.${'0'.repeat(-exp - 1)}${digits}`;
  else if (digits.length > exp + 1) s = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  else s = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  return neg ? `-${s}` : s;
}

/**
 * `json.dumps(value, indent=2, sort_keys=True)` as Python writes it (ASCII-only, `1e-05`, `10000.0`).
 * Integral numbers are written as floats where `floatPaths` lists their path or their key is a known
 * float field of transformers configs.
 */
export function stringifyPython(value: unknown, floatPaths: ReadonlySet<string> = new Set(), indent = 2): string {
  const pad = (d: number): string => ' '.repeat(indent * d);
  const enc = (s: string): string => JSON.stringify(s).replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const go = (v: unknown, path: string, key: string, d: number): string => {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number') {
      const asFloat = !Number.isInteger(v) || floatPaths.has(path) || FLOAT_KEYS.has(key) || Object.is(v, -0);
      return asFloat ? pythonFloat(v) : String(v);
    }
    if (typeof v === 'string') return enc(v);
    if (Array.isArray(v)) {
      if (!v.length) return '[]';
      const items = v.map((x, j) => pad(d + 1) + go(x, path ? `${path}.${j}` : String(j), key, d + 1));
      return `[\n${items.join(',\n')}\n${pad(d)}]`;
    }
    if (typeof v === 'object') {
      const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
      if (!keys.length) return '{}';
      const items = keys.map((k) => `${pad(d + 1)}${enc(k)}: ${go((v as Record<string, unknown>)[k], path ? `${path}.${k}` : k, k, d + 1)}`);
      return `{\n${items.join(',\n')}\n${pad(d)}}`;
    }
    throw new TypeError(`cannot write a ${typeof v} as JSON`);
  };
  return go(value, '', '', 0);
}
