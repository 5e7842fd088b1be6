/**
 * Stop signals sent to a real `dpo train` process: SIGINT, SIGTERM and SIGHUP each save a complete
 * checkpoint, print the resume hint and exit 128 + n; resuming reaches the uninterrupted run's
 * weights and metrics; a second signal quits without a checkpoint; a signal in the reference pass
 * stops it before any step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { STOP_SIGNALS, signalExitCode, watchStopSignals, type StopSignal } from '../../src/cli/stop-signals.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const LLAMA = 'test/fixtures/models/llama';
const DATA = 'examples/dpo_example.json';
const STEPS = 40;
const tmp = () => mkdtempSync(join(tmpdir(), 'dpo-signals-'));
// One thread: on a tiny model, OpenMP threads that spin on a busy machine only slow each step.
const env = { ...process.env, DPO_NUM_THREADS: '1' };

const trainArgs = (out: string, ...extra: string[]) => ['train', '--model_name_or_path', LLAMA, '--dataset_name', DATA, '--output_dir', out, '--per_device_train_batch_size', '2', '--learning_rate', '1e-3', '--logging_steps', '1', '--max_length', '64', '--seed', '3', '--max_steps', String(STEPS), '--lr_scheduler_type', 'cosine', '--warmup_steps', '5', ...extra];

function dpo(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, env });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

interface Ended { code: number | null; signal: NodeJS.Signals | null; out: string; err: string }

/** Runs the CLI; once stdout matches `when`, sends `signals` back to back; resolves on exit. */
function runAndSignal(args: string[], when: RegExp, signals: StopSignal[]): Promise<Ended> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '', err = '', sent = false;
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!sent && when.test(out)) {
      sent = true;
      for (const s of signals) process.kill(child.pid!, s);
    }
  });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out, err })));
}

function weights(file: string): Map<string, Float32Array> {
  const f = new SafetensorsFile(file);
  const m = new Map([...f.tensors.keys()].map((k) => [k, f.read(k)]));
  f.close();
  return m;
}

type Entry = Record<string, number>;
const history = (dir: string): Entry[] => JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8')).log_history;
const losses = (h: Entry[]) => h.filter((e) => 'loss' in e).map((e) => e.loss);

/** A pid no process has now (a child that has exited). */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

let full: string | null = null;
function uninterrupted(): string {
  if (!full) {
    full = tmp();
    const r = dpo(...trainArgs(full, '--save_strategy', 'no'));
    assert.equal(r.code, 0, r.err);
  }
  return full;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  test(`${sig}: the step finishes, a complete checkpoint is saved, exit ${signalExitCode(sig)}; resuming gives the uninterrupted run`, async () => {
    const out = tmp();
    const r = await runAndSignal(trainArgs(out, '--save_steps', '100000'), /step 3\/\d+ loss/, [sig]);
    assert.equal(r.code, signalExitCode(sig), `exit ${r.code} (signal ${r.signal})\n${r.out}\n${r.err}`);
    const hint = /checkpoint saved: (\S+); continue with --resume_from_checkpoint (\S+)/.exec(r.err);
    assert.ok(hint, r.err);
    const ckpt = hint[2];
    assert.equal(hint[1], ckpt);
    const step = Number(/checkpoint-(\d+)$/.exec(ckpt)![1]);
    assert.ok(step >= 3 && step < STEPS, `stopped at step ${step}`);
    // Complete, consistent for resuming, and not mistaken for a finished run.
    for (const f of ['model.safetensors', 'optimizer.safetensors', 'scheduler.json', 'rng_state.json', 'training_args.json', 'tokenizer.json']) assert.ok(existsSync(join(ckpt, f)), `missing ${f}`);
    const state = JSON.parse(readFileSync(join(ckpt, 'trainer_state.json'), 'utf8'));
    assert.equal(state.global_step, step);
    assert.equal(losses(state.log_history).length, step);
    assert.ok(!existsSync(join(out, 'model.safetensors')) && !existsSync(join(out, 'trainer_state.json')), 'no final model after an interrupt');
    assert.deepEqual(readdirSync(out).filter((d) => d.startsWith('checkpoint-')), [`checkpoint-${step}`]);

    let from = ckpt;
    if (sig === 'SIGHUP') {
      // "latest" skips what is not a complete checkpoint; a later save clears a killed save's temp dir.
      mkdirSync(join(out, 'checkpoint-99999'));
      mkdirSync(join(out, `checkpoint-7.tmp-${deadPid()}`));
      from = 'latest';
    }
    const res = dpo(...trainArgs(out, '--save_steps', sig === 'SIGHUP' ? String(step + 1) : '100000', '--resume_from_checkpoint', from));
    assert.equal(res.code, 0, res.err);
    assert.match(res.out, new RegExp(`done: ${STEPS} steps`));
    if (sig === 'SIGHUP') assert.ok(!readdirSync(out).some((d) => d.includes('.tmp-')), readdirSync(out).join());
    const a = weights(join(uninterrupted(), 'model.safetensors')), b = weights(join(out, 'model.safetensors'));
    for (const [k, v] of a) assert.deepEqual(b.get(k), v, `weight ${k} differs after resume`);
    const ha = history(uninterrupted()), hb = history(out);
    assert.deepEqual(losses(hb), losses(ha));
    assert.equal(hb.at(-1)!.train_loss, ha.at(-1)!.train_loss);
  });
}

test('a second signal quits at once: its exit code, no checkpoint', async () => {
  const out = tmp();
  // Two different signals, so the kernel cannot merge them into one; either may be handled first.
  const r = await runAndSignal(trainArgs(out, '--save_steps', '100000'), /step 3\/\d+ loss/, ['SIGINT', 'SIGTERM']);
  // Handled (exit 128 + n) or, once the handlers are released, the signal's default action.
  assert.ok([130, 143].includes(r.code!) || ['SIGINT', 'SIGTERM'].includes(r.signal!), `exit ${r.code} (signal ${r.signal})\n${r.out}\n${r.err}`);
  assert.doesNotMatch(r.out, /checkpoint saved/);
  assert.deepEqual(readdirSync(out).filter((d) => /^checkpoint-\d+$/.test(d)), []);
  assert.ok(!existsSync(join(out, 'model.safetensors')));
});

test('a signal during the reference precompute pass stops it before the first step: exit 143, nothing saved', async () => {
  const out = tmp();
  const seed = JSON.parse(readFileSync(DATA, 'utf8')) as Record<string, string[]>;
  const data = join(out, 'many.json');
  writeFileSync(data, JSON.stringify(Object.fromEntries(Object.entries(seed).map(([k, v]) => [k, Array.from({ length: 50 }, () => v).flat()]))));
  const r = await runAndSignal(
    ['train', '--model_name_or_path', LLAMA, '--dataset_name', data, '--output_dir', out, '--max_length', '64', '--max_steps', '5', '--precompute_ref_log_probs', '--per_device_train_batch_size', '1'],
    /reference log-probs \d+\/350/, ['SIGTERM'],
  );
  assert.equal(r.code, 143, `exit ${r.code} (signal ${r.signal})\n${r.out}\n${r.err}`);
  assert.doesNotMatch(r.out, /reference log-probs 350\/350|step 1\//, 'the pass ran on');
  assert.match(r.err, /interrupted by SIGTERM before the first training step: no checkpoint written \(nothing to save\)/);
  assert.deepEqual(readdirSync(out).filter((d) => d.startsWith('checkpoint-') || d.startsWith('ref_logps') || d === 'model.safetensors'), []);
});

test('watchStopSignals: the first signal reaches onFirst, then the handlers let go so a further one ends the process', async () => {
  const count = () => STOP_SIGNALS.map((s) => process.listenerCount(s));
  const before = count();
  const seen: string[] = [];
  const w = watchStopSignals((s) => seen.push(s));
  assert.deepEqual(count(), before.map((n) => n + 1));
  process.kill(process.pid, 'SIGHUP');
  for (let i = 0; i < 100 && !seen.length; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, ['SIGHUP']);
  assert.equal(w.signal, 'SIGHUP');
  assert.deepEqual(count(), before, 'released one turn after the first signal');
  w.release();
});
