/**
 * Command-line parsing with TRL's flag spellings: `--name value`, `--name=value`, bare booleans,
 * `--no_X` / `--X false` for booleans (as HfArgumentParser), lists as several values or comma-separated, and `--config file.yaml` with the same keys (flags
 * override the file). Every bad flag or value is a one-line error.
 */
import { readFileSync, existsSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { DpoError } from '../errors.js';
import { coerceOption } from '../dpo/config.js';
import type { OptionSpec, OptionType } from '../dpo/options.js';

export type Spec = Pick<OptionSpec, 'snake' | 'type' | 'default' | 'help' | 'choices'>;

export const spec = (snake: string, type: OptionType, def: unknown, help: string, choices?: readonly string[]): Spec => ({ snake, type, default: def, help, choices });

const isList = (t: OptionType) => t === 'strings' || t === 'floats';

/** Parses argv against `specs`; returns snake_case keys → typed values (defaults not filled in). */
export function parseArgs(argv: readonly string[], specs: readonly Spec[], command: string): Record<string, unknown> {
  const by = new Map(specs.map((s) => [s.snake, s]));
  const raw: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new DpoError(`dpo ${command}: unexpected argument "${a}"; options are written --name value (see dpo ${command} --help)`);
    let [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    name = name.replace(/-/g, '_');
    // HfArgumentParser's --no_X sets a boolean X to false.
    if (!by.has(name) && name.startsWith('no_') && by.get(name.slice(3))?.type === 'bool') {
      if (inline !== undefined) throw new DpoError(`dpo ${command}: --${name} takes no value (it sets ${name.slice(3)} to false)`);
      raw[name.slice(3)] = false;
      continue;
    }
    const s = by.get(name);
    if (!s) {
      const near = specs.filter((x) => x.snake.includes(name) || name.includes(x.snake)).map((x) => `--${x.snake}`);
      throw new DpoError(`dpo ${command}: unknown option --${name}${near.length ? `; did you mean ${near.slice(0, 3).join(' or ')}?` : ''} (see dpo ${command} --help)`);
    }
    const values: string[] = [];
    if (inline !== undefined) values.push(inline);
    else {
      while (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
        values.push(argv[++i]);
        if (!isList(s.type)) break;
      }
    }
    if (!values.length) {
      if (s.type === 'bool') raw[name] = true;
      else throw new DpoError(`dpo ${command}: --${name} needs a value (${s.help})`);
      continue;
    }
    raw[name] = coerceOption(s as OptionSpec, isList(s.type) ? values : values[0], `dpo ${command}`);
  }
  return raw;
}

/** How `--config` treats keys no option has. */
export interface ConfigFileOptions {
  /**
   * As TRL's parser (which ignores unknown config keys): an unknown key prints this one line and is
   * skipped, unless it is a near-miss of a known option (a typo), which stays an error; `env:` sets
   * environment variables as in TRL. Without it, every unknown key is an error.
   */
  tolerateUnknown?: (message: string) => void;
}

/** Levenshtein distance, for telling a typo from a key of some other tool. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length];
}

/** Reads a YAML (or JSON) config whose keys are option names; unknown keys are errors (see ConfigFileOptions). */
export function readConfigFile(path: string, specs: readonly Spec[], command: string, opts: ConfigFileOptions = {}): Record<string, unknown> {
  if (!existsSync(path)) throw new DpoError(`--config ${path}: file not found`);
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DpoError(`--config ${path}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new DpoError(`--config ${path}: must be a mapping of option: value`);
  const by = new Map(specs.map((s) => [s.snake, s]));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const s = by.get(k);
    if (!s && opts.tolerateUnknown && k === 'env') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DpoError(`--config ${path}: env must be a mapping of NAME: value`);
      for (const [n, x] of Object.entries(v)) process.env[n] = String(x);
      continue;
    }
    if (!s) {
      const typo = specs.find((x) => editDistance(x.snake, k) <= 2);
      if (opts.tolerateUnknown && !typo) {
        opts.tolerateUnknown(`--config ${path}: unknown key "${k}" ignored (TRL's parser ignores unknown config keys too)`);
        continue;
      }
      throw new DpoError(`--config ${path}: unknown key "${k}" for dpo ${command}${typo ? `; did you mean ${typo.snake}?` : ''}`);
    }
    out[k] = coerceOption(s as OptionSpec, v, `--config ${path}`);
  }
  return out;
}

/** Flags override the config file; both override defaults. */
export function resolveOptions(argv: readonly string[], specs: readonly Spec[], command: string, opts: ConfigFileOptions = {}): Record<string, unknown> {
  const flags = parseArgs(argv, specs, command);
  const file = typeof flags.config === 'string' ? readConfigFile(flags.config, specs, command, opts) : {};
  const out: Record<string, unknown> = {};
  for (const s of specs) out[s.snake] = s.default;
  return Object.assign(out, file, flags);
}

export function helpText(command: string, summary: string, specs: readonly Spec[]): string {
  const lines = [`dpo ${command} — ${summary}`, '', 'Options:'];
  const w = Math.max(...specs.map((s) => s.snake.length)) + 4;
  for (const s of specs) {
    const def = s.default === null || s.default === undefined || (Array.isArray(s.default) && !s.default.length) ? '' : ` (default: ${Array.isArray(s.default) ? s.default.join(' ') : typeof s.default === 'object' ? JSON.stringify(s.default) : String(s.default)})`;
    const ch = s.choices ? ` [${s.choices.join(', ')}]` : '';
    lines.push(`  --${s.snake.padEnd(w)}${s.help}${ch}${def}`);
  }
  return lines.join('\n');
}
