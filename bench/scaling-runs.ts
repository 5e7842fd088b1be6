/**
 * One timed training process of the scaling benchmark (bench/quant-scaling.ts): a `dpo train` run or
 * a TRL+PEFT run (bench/trl_scaling.py), timed the same way from the parent: load time = spawn to the
 * "model loaded" line, first step = "training begins" line to the first step line, s/step = median of
 * the gaps between later step lines; peak RSS is the child's own ru_maxrss as it prints it. A run
 * past its timeout is killed; a crash, an OOM kill or a refusal is a row with its reason, never a hang.
 */
import { spawn } from 'node:child_process';

export interface RunSettings {
  steps: number;
  accum: number;
  maxLength: number;
  learningRate: number;
  gc: boolean;
  timeoutS: number;
}

export interface RunResult {
  ok: boolean;
  /** Why the run failed or was skipped (one line); '' when it ran. */
  note: string;
  loadS: number;
  firstS: number;
  stepS: number;
  peakGb: number;
  /** The printed estimate (ours) or the fit estimate (TRL), GB. */
  estGb: number;
  /** TRL's RESULT line (token counts, versions). */
  result?: Record<string, unknown>;
  /** The machine's f32 GEMM ceiling (GFLOPS) measured just before the run (bench/machine.ts). */
  gflops?: number;
}

/** Storage flags of each of our modes. */
export const MODES: Record<string, string[]> = {
  f32: [],
  bf16: ['--dtype', 'bfloat16'],
  int8: ['--load_in_8bit'],
  nf4: ['--load_in_4bit', '--bnb_4bit_quant_type', 'nf4', '--use_bnb_nested_quant'],
};

/** The lines each side prints at load, at the start of training and after each optimizer step. */
const MARKS = {
  ours: { loaded: /^model /, ready: /^memory: estimated peak/, step: /^step \d+\// },
  trl: { loaded: /^LOADED$/, ready: /^READY$/, step: /^STEP \d+$/ },
};

export function oursCommand(model: string, data: string, outDir: string, mode: string, s: RunSettings): string[] {
  return [process.execPath, 'dist/src/cli/main.js', 'train', '--model_name_or_path', model, '--dataset_name', data, '--output_dir', outDir,
    '--per_device_train_batch_size', '1', '--gradient_accumulation_steps', String(s.accum), '--max_steps', String(s.steps), '--logging_steps', '1',
    '--max_length', String(s.maxLength), '--use_peft', '--lora_r', '16', '--lora_alpha', '32', '--lora_target_modules', 'all-linear', '--save_strategy', 'no',
    '--learning_rate', String(s.learningRate), s.gc ? '--gradient_checkpointing' : '--no_gradient_checkpointing', ...MODES[mode]];
}

export function trlCommand(python: string, model: string, data: string, threads: number, s: RunSettings): string[] {
  return [python, 'bench/trl_scaling.py', '--model', model, '--data', data, '--steps', String(s.steps), '--grad_accum', String(s.accum),
    '--max_length', String(s.maxLength), '--learning_rate', String(s.learningRate), '--threads', String(threads), ...(s.gc ? ['--gradient_checkpointing'] : [])];
}

export function gbOf(s: string | undefined): number {
  if (!s) return NaN;
  const [v, u] = s.split(' ');
  return Number(v) * ({ kB: 1e-6, MB: 1e-3, GB: 1 } as Record<string, number>)[u];
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A row for a run that did not start (skipped, not installed). */
export function notRun(note: string, estGb = NaN): RunResult {
  return { ok: false, note, loadS: NaN, firstS: NaN, stepS: NaN, peakGb: NaN, estGb };
}

/** Runs `cmd` (argv) as `kind`, timing its marked lines; resolves on exit, kill or timeout. */
export function timedRun(cmd: string[], kind: 'ours' | 'trl', timeoutS: number): Promise<RunResult> {
  const marks = MARKS[kind];
  return new Promise((resolve) => {
    const t0 = performance.now();
    const now = () => (performance.now() - t0) / 1000;
    let loaded = NaN, ready = NaN, peak = NaN, est = NaN, err = '', buf = '', timedOut = false;
    let result: Record<string, unknown> | undefined;
    const steps: number[] = [];
    const p = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, timeoutS * 1000);
    const onLine = (line: string) => {
      if (marks.loaded.test(line)) loaded = now();
      else if (marks.ready.test(line)) {
        ready = now();
        if (kind === 'ours') est = gbOf(/estimated peak ([\d.]+ [kMG]B)/.exec(line)?.[1]);
      } else if (marks.step.test(line)) steps.push(now());
      else if (line.startsWith('memory: measured peak RSS')) peak = gbOf(/RSS ([\d.]+ [kMG]B)/.exec(line)?.[1]);
      else if (line.startsWith('RESULT ')) {
        result = JSON.parse(line.slice(7)) as Record<string, unknown>;
        peak = Number(result.peak_rss_gb);
      }
    };
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) onLine(buf.slice(0, i));
    });
    // The tail is enough for the reason (a DpoError's line, a Python exception's last line).
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8192)));
    const finish = (note: string) => {
      clearTimeout(timer);
      const gaps = steps.slice(1).map((t, i) => t - steps[i]);
      resolve({ ok: note === '', note, loadS: loaded, firstS: steps.length ? steps[0] - ready : NaN, stepS: median(gaps), peakGb: peak, estGb: est, result });
    };
    p.on('error', (e) => finish(`could not start ${cmd[0]}: ${e.message}`));
    p.on('close', (code, signal) => {
      const last = err.trim().split('\n').filter((l) => l.trim()).pop()?.trim();
      if (timedOut) finish(`timed out after ${timeoutS} s (killed) at step ${steps.length}`);
      else if (signal) finish(`killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''} at step ${steps.length}`);
      else if (code !== 0) finish(`exit ${code}: ${last ?? 'no message'}`);
      else if (steps.length === 0) finish('no step was logged');
      else finish('');
    });
  });
}
