/**
 * The flags of bench/quant-scaling.ts, with `--quick` (0.5b, f32 + nf4, gradient checkpointing on,
 * 2 steps, grad_accum 1, no sweep; flags given explicitly win) and a one-line error for a bad value.
 */
import { DpoError } from '../src/errors.js';
import { QWEN_SHAPES } from './make-qwen-checkpoint.js';
import { MODES } from './scaling-runs.js';

export interface ScalingOptions {
  dir: string;
  out: string | null;
  sizes: string[];
  modes: string[];
  gcs: string[];
  steps: number;
  accum: number;
  maxLength: number;
  learningRate: number;
  promptWords: number;
  completionWords: number;
  trl: boolean;
  /** The shapes TRL+PEFT runs at (both tables); default every shape. */
  trlSizes: string[];
  sweep: 'on' | 'off' | 'only';
  sweepLengths: number[];
  sweepModes: string[];
  sweepGcs: string[];
  sweepSize: string;
  /** Seconds one training process may run before it is killed. */
  timeoutS: number;
  /** Reuse the finished runs of earlier sittings (bench/scaling-results.ts). */
  resume: boolean;
}

const QUICK: Record<string, string> = { sizes: '0.5b', modes: 'f32,nf4', gc: 'on', steps: '2', grad_accum: '1', sweep: 'off' };

export function parseScalingArgs(argv: string[]): ScalingOptions {
  const quick = argv.includes('--quick');
  const opt = (name: string, def: string): string => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return quick && name in QUICK ? QUICK[name] : def;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new DpoError(`quant-scaling: --${name} needs a value (default ${def})`);
    return v;
  };
  const oneOf = (name: string, def: string, allowed: readonly string[]): string[] => {
    const xs = opt(name, def).split(',').filter(Boolean);
    const bad = xs.find((x) => !allowed.includes(x));
    if (bad !== undefined || !xs.length) throw new DpoError(`quant-scaling: --${name} "${opt(name, def)}" has ${bad === undefined ? 'no entry' : `"${bad}"`}; use a comma list of ${allowed.join(', ')}`);
    return xs;
  };
  const single = (name: string, def: string, allowed: readonly string[]): string => {
    const xs = oneOf(name, def, allowed);
    if (xs.length > 1) throw new DpoError(`quant-scaling: --${name} takes one of ${allowed.join(', ')}, got "${xs.join(',')}"`);
    return xs[0];
  };
  const num = (name: string, def: string, integer: boolean, min = 0): number => {
    const v = Number(opt(name, def));
    if (!(v > min) || (integer && !Number.isInteger(v))) throw new DpoError(`quant-scaling: --${name} "${opt(name, def)}" is not a ${integer ? 'whole number' : 'number'} > ${min}`);
    return v;
  };
  const lengths = opt('sweep_lengths', '512,1024,2048').split(',').filter(Boolean);
  if (!lengths.length || lengths.some((l) => !(Number(l) > 0 && Number.isInteger(Number(l))))) throw new DpoError(`quant-scaling: --sweep_lengths "${lengths.join(',')}" must be a comma list of whole token counts > 0`);
  const sizes = Object.keys(QWEN_SHAPES), modes = Object.keys(MODES);
  return {
    dir: opt('dir', '/tmp/dpo-quant-bench'),
    out: argv.includes('--out') ? opt('out', '') : null,
    sizes: oneOf('sizes', sizes.join(','), sizes),
    modes: oneOf('modes', modes.join(','), modes),
    gcs: oneOf('gc', 'on,off', ['on', 'off']),
    steps: num('steps', '3', true),
    accum: num('grad_accum', '8', true),
    maxLength: num('max_length', '1024', true),
    learningRate: num('learning_rate', '2e-4', false),
    // The rows vary by ±1 prompt word and ±3 completion words.
    promptWords: num('prompt_words', '49', true, 1),
    completionWords: num('completion_words', '73', true, 3),
    trl: single('trl', 'on', ['on', 'off']) === 'on',
    trlSizes: oneOf('trl_sizes', sizes.join(','), sizes),
    sweep: single('sweep', 'on', ['on', 'off', 'only']) as ScalingOptions['sweep'],
    sweepLengths: lengths.map(Number),
    sweepModes: oneOf('sweep_modes', 'f32,nf4', modes),
    sweepGcs: oneOf('sweep_gc', 'on', ['on', 'off']),
    sweepSize: single('sweep_size', '0.5b', sizes),
    timeoutS: num('timeout', '14400', false),
    resume: single('resume', 'on', ['on', 'off']) === 'on',
  };
}
