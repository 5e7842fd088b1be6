/**
 * What a person sees during `dpo train` / `dpo demo`: a progress bar (or plain lines off a TTY),
 * output_dir/metrics.jsonl, the HTML report, a stop signal (Ctrl-C, kill, hang-up) saving a
 * checkpoint and exiting 128 + n with the resume hint, and a clear stop on NaN.
 */
import { describeEstimate, describePeak } from '../models/memory-estimate.js';
import { appendFileSync, mkdirSync, writeFileSync, accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import { DPOTrainer, type DPOTrainerInit, type LogEntry, type TrainOutput } from '../dpo/trainer.js';
import { Progress } from '../report/progress.js';
import { writeReport } from '../report/html-report.js';
import { InterruptedError, watchStopSignals, type StopSignal } from './stop-signals.js';

export function ensureWritableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new DpoError(`output_dir ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); choose another --output_dir`);
  }
}

const fmt = (v: number | undefined, d = 4) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));

export interface RunResult {
  trainer: DPOTrainer;
  output: TrainOutput;
  reportPath: string;
}

export interface RunOptions {
  title: string;
  settings: Record<string, unknown>;
  quiet?: boolean;
  resumeFromCheckpoint?: string | null;
  /** How to continue from a checkpoint, for the interrupt message; default: the --resume_from_checkpoint flag. */
  resumeHint?: (checkpoint: string) => string;
}

/**
 * Trains with progress, metrics and report. A stop signal ends it with an InterruptedError (exit
 * code 128 + n) after the checkpoint is saved; a signal during data preparation (before this
 * listens) ends the process at once by the signal's default action: no step taken, nothing lost.
 */
export async function runTraining(init: DPOTrainerInit, opts: RunOptions): Promise<RunResult> {
  const outDir = init.args!.outputDir;
  ensureWritableDir(outDir);
  const metricsPath = join(outDir, 'metrics.jsonl');
  if (!opts.resumeFromCheckpoint) writeFileSync(metricsPath, '');
  const out = process.stdout;
  let bar: Progress | null = null;
  let refBar: Progress | null = null;
  const dataBars: Record<string, Progress> = {};
  const tty = !!out.isTTY;
  const trainer = new DPOTrainer({
    ...init,
    callbacks: {
      onDataProgress(split, done, total) {
        // Tokenising 10⁴–10⁵ rows takes a while; small sets finish before a bar is worth drawing.
        if (total < 1000) return;
        dataBars[split] ??= new Progress({ label: `tokenizing ${split}`, total, stream: out, quiet: opts.quiet, plainEvery: Math.max(1, Math.ceil(total / 10)) });
        dataBars[split].update(done);
      },
      onRefProgress(done, total, tokens) {
        refBar ??= new Progress({ label: 'reference log-probs', total, stream: out, quiet: opts.quiet, plainEvery: Math.max(1, Math.ceil(total / 10)) });
        refBar.update(done, { tokens });
      },
      onStep(p) {
        bar ??= new Progress({ label: 'train', total: p.totalSteps, stream: out, quiet: opts.quiet || !tty });
        bar.update(p.step, { tokens: p.tokens, extra: `loss ${fmt(p.loss)} acc ${fmt(p.rewardAccuracy, 2)}` });
      },
      onLog(e: LogEntry) {
        appendFileSync(metricsPath, `${JSON.stringify(e)}\n`);
        if (!tty && !opts.quiet && 'loss' in e) {
          out.write(`step ${e.step}/${trainer.state.max_steps} loss ${fmt(e.loss)} rewards/accuracies ${fmt(e['rewards/accuracies'], 3)} rewards/margins ${fmt(e['rewards/margins'])} grad_norm ${fmt(e.grad_norm)} lr ${e.learning_rate?.toExponential(2)}\n`);
        }
        // eval_loss, or eval_<name>_loss for one of several eval sets.
        const evalLoss = Object.keys(e).find((k) => /^eval_(.+_)?loss$/.test(k));
        if (!opts.quiet && evalLoss) out.write(`${tty ? '\n' : ''}eval step ${e.step}: ${evalLoss} ${fmt(e[evalLoss])} eval_rewards/accuracies ${fmt(e['eval_rewards/accuracies'], 3)}\n`);
      },
      onSave(dir) {
        if (!opts.quiet) out.write(`${tty ? '\n' : ''}checkpoint saved: ${dir}\n`);
      },
    },
  });
  if (!opts.quiet) out.write(`${describeEstimate(trainer.memoryEstimate)}\n`);
  const signals = watchStopSignals((sig) => {
    trainer.stopRequested = true;
    const again = sig === 'SIGINT' ? 'Ctrl-C again' : `send ${sig} again`;
    out.write(`\n${sig}: stopping after this step to save a checkpoint (${again} to quit at once, without one)\n`);
  });
  const reportPath = join(outDir, 'report.html');
  const writeRep = () => writeReport(reportPath, { title: opts.title, history: trainer.state.log_history, settings: { ...opts.settings, ...trainer.args.toJSON() } });
  let output: TrainOutput;
  try {
    output = await trainer.train({ resumeFromCheckpoint: opts.resumeFromCheckpoint });
  } catch (e) {
    if (trainer.state.log_history.length) writeRep();
    throw e;
  } finally {
    signals.release();
  }
  writeRep();
  if (!opts.quiet) out.write(`${tty ? '\n' : ''}${describePeak(trainer.memoryEstimate)}\n`);
  const sig = signals.signal ?? 'SIGINT';
  if (output.interrupted) throw new InterruptedError(interruptMessage(sig, output, trainer.state.max_steps, opts.resumeHint), sig);
  if (signals.signal && !opts.quiet) out.write(`${sig} came after the last step: training finished\n`);
  return { trainer, output, reportPath };
}

function interruptMessage(sig: StopSignal, o: TrainOutput, maxSteps: number, hint = (dir: string) => `continue with --resume_from_checkpoint ${dir}`): string {
  const at = `interrupted by ${sig} at step ${o.globalStep}/${maxSteps}`;
  if (o.saved) return `${at}; checkpoint saved: ${o.checkpoint}; ${hint(o.checkpoint!)}`;
  if (o.checkpoint) return `${at}, before this run's first step (no new checkpoint written); ${hint(o.checkpoint)}`;
  return `interrupted by ${sig} before the first training step: no checkpoint written (nothing to save); rerun to start over`;
}
