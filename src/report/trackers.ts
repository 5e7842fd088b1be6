/**
 * Trackers (`report_to`), as transformers' integrations: `none` (the default) reports nowhere, `all`
 * is every integration available here (tensorboard), `tensorboard` writes event files as
 * TensorBoardCallback does: log dir $TENSORBOARD_LOGGING_DIR, else `logging_dir` (transformers 4's
 * argument), else `<output_dir>/runs/<Mondd_HH-MM-SS>_<hostname>`; at train start the args (and
 * the model's config.json) as text, then every logged value as a scalar named by rewrite_logs
 * (`eval_x` → `eval/x`, others `train/x`) at the global step. Anything else stops with the list of
 * what is supported. The trainer calls trackers only through `Tracker`.
 *
 * @example
 * const t = createTrackers(resolveReportTo(['tensorboard'], 'DPOConfig'), { outputDir: 'out', loggingDir: null });
 * t.trainBegin({ argsJson: '{}' }); t.log({ loss: 0.69, epoch: 0.5 }, 1);
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { EventFileWriter } from './tfevents.js';

export interface Tracker {
  /** transformers' on_train_begin: the run's settings. */
  trainBegin(info: { argsJson: string; modelConfigJson?: string | null }): void;
  /** transformers' on_log: one logged entry at `step`. */
  log(entry: Record<string, unknown>, step: number): void;
}

/** Integrations that work here (what `all` means). */
export const SUPPORTED_TRACKERS = ['tensorboard'] as const;
/** transformers' other integrations: named in the error so a TRL user sees theirs is known but unsupported. */
const NEEDS_NETWORK_OR_PACKAGE = ['azure_ml', 'clearml', 'codecarbon', 'comet_ml', 'dagshub', 'dvclive', 'flyte', 'mlflow', 'neptune', 'swanlab', 'trackio', 'wandb'];

/** transformers' report_to normalisation: 'none' → [], 'all' → every available integration; others must be supported. */
export function resolveReportTo(reportTo: readonly string[] | string | null, where: string): string[] {
  const list = reportTo === null ? ['none'] : typeof reportTo === 'string' ? [reportTo] : [...reportTo];
  if (list.includes('none')) {
    if (list.length > 1) throw new DpoError(`${where}: report_to none cannot be combined with ${list.filter((x) => x !== 'none').join(', ')}`);
    return [];
  }
  if (list.includes('all')) return [...SUPPORTED_TRACKERS];
  for (const x of list) {
    if (!(SUPPORTED_TRACKERS as readonly string[]).includes(x)) {
      const known = NEEDS_NETWORK_OR_PACKAGE.includes(x) ? ' (it needs its service or package, which dpo train does not use)' : '';
      throw new DpoError(`${where}: report_to ${x} is not supported${known}; supported: ${SUPPORTED_TRACKERS.join(', ')}, none, all (= ${SUPPORTED_TRACKERS.join(', ')})`);
    }
  }
  return [...new Set(list)];
}

/** transformers' default_logdir: runs/<%b%d_%H-%M-%S>_<hostname> (local time). */
export function defaultLogdir(now = new Date()): string {
  const mon = now.toLocaleString('en-US', { month: 'short' });
  const p = (n: number) => String(n).padStart(2, '0');
  return join('runs', `${mon}${p(now.getDate())}_${p(now.getHours())}-${p(now.getMinutes())}-${p(now.getSeconds())}_${hostname()}`);
}

/** transformers' rewrite_logs: eval_x → eval/x, test_x → test/x, others train/x. */
export function rewriteLogs(entry: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entry)) {
    if (k.startsWith('eval_')) out[`eval/${k.slice(5)}`] = v;
    else if (k.startsWith('test_')) out[`test/${k.slice(5)}`] = v;
    else out[`train/${k}`] = v;
  }
  return out;
}

export class TensorBoardTracker implements Tracker {
  private writer: EventFileWriter | null = null;

  constructor(private readonly opts: { outputDir: string; loggingDir: string | null; env?: NodeJS.ProcessEnv }) {}

  /** The log directory (fixed at the first write). */
  get logDir(): string {
    return this.ensure().logDir;
  }

  private ensure(): EventFileWriter {
    const env = this.opts.env ?? process.env;
    const dir = env.TENSORBOARD_LOGGING_DIR || this.opts.loggingDir || join(this.opts.outputDir, defaultLogdir());
    return (this.writer ??= new EventFileWriter(dir));
  }

  trainBegin(info: { argsJson: string; modelConfigJson?: string | null }): void {
    const w = this.ensure();
    w.addText('args', info.argsJson, 0);
    if (info.modelConfigJson) w.addText('model_config', info.modelConfigJson, 0);
  }

  log(entry: Record<string, unknown>, step: number): void {
    const w = this.ensure();
    for (const [k, v] of Object.entries(rewriteLogs(entry))) {
      if (typeof v === 'number') w.addScalar(k, v, step);
      else if (typeof v === 'string') w.addText(k, v, step);
    }
  }
}

/** The trackers `names` (from resolveReportTo) name. */
export function createTrackers(names: readonly string[], opts: { outputDir: string; loggingDir: string | null; env?: NodeJS.ProcessEnv }): Tracker[] {
  return names.map((n) => {
    if (n === 'tensorboard') return new TensorBoardTracker(opts);
    throw new DpoError(`report_to ${n} is not supported; supported: ${SUPPORTED_TRACKERS.join(', ')}`);
  });
}
