/**
 * The scaling benchmark of frozen-weight storage (issue 14), one command, one report: for each Qwen2.5
 * shape and storage mode (float32, dtype bfloat16, load_in_8bit, load_in_4bit nf4 + nested quant), with
 * and without gradient checkpointing, one `dpo train` process each (LoRA r=16 alpha 32 on all linear
 * layers): load time, first-step time, s/step (median after the first), peak RSS and the printed
 * estimate; beside them TRL 1.13 + PEFT float32 (bench/trl_scaling.py, when .venv-ref exists) on the
 * same checkpoint and data where its estimated footprint fits in the memory available, and the ratios
 * ours/TRL. Then the sequence-length sweep (512 / 1024 / 2048 total tokens at 0.5B). The markdown
 * (machine, exact command, date, token counts, tables, the issue's targets) is printed and written to
 * --out after every run, each row with oneDNN's f32 GEMM ceiling measured just before it (the
 * machine's speed at that hour: rows of different sittings, or the two sides of a ratio, may have run
 * at different speeds on a shared machine). Checkpoints are made by bench/make-qwen-checkpoint.ts
 * (random bf16 weights, fixed seed) unless present. Figures on a shared machine are indicative.
 *
 *   node dist/bench/quant-scaling.js [--sizes 0.5b,1.5b,3b] [--modes f32,bf16,int8,nf4] [--gc on,off]
 *     [--steps 3] [--grad_accum 8] [--max_length 1024] [--prompt_words 49] [--completion_words 73]
 *     [--learning_rate 2e-4] [--trl on|off] [--trl_sizes 0.5b,1.5b,3b] [--sweep on|off|only] [--sweep_lengths 512,1024,2048]
 *     [--sweep_modes f32,nf4] [--sweep_gc on] [--timeout 14400] [--out FILE] [--dir /tmp/dpo-quant-bench] [--resume on|off]
 *   Finished runs are kept in DIR/quant-scaling-runs.jsonl (bench/scaling-results.ts): run the command
 *   again after a stop and it goes on from the first row not yet measured (`--resume off`: all anew).
 *   --quick: 0.5b, f32 + nf4, gradient checkpointing on, 2 steps, grad_accum 1, no sweep (flags given win)
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../src/errors.js';
import { archFromConfig } from '../src/models/registry.js';
import { availableMemory, estimateRunMemory } from '../src/models/memory-estimate.js';
import { defaultThreadCount } from '../src/backend/threads.js';
import { makeQwenCheckpoint } from './make-qwen-checkpoint.js';
import { describeMachine, f32CeilingNow } from './machine.js';
import { notRun, oursCommand, timedRun, trlCommand, type RunResult, type RunSettings } from './scaling-runs.js';
import { parseScalingArgs } from './scaling-options.js';
import { fmt, renderReport, TRL, type ReportContext, type Row } from './scaling-report.js';
import { RunStore, type RunKey } from './scaling-results.js';
import { describeStats, pairsFile, statsDiffer, tokenStats, wordsFor, type TokenStats } from './scaling-data.js';

const argv = process.argv.slice(2);

const PY = '.venv-ref/bin/python';

/** Seconds to read `path` once (page cache as it is), the bound for load time. */
function readOnce(path: string): number {
  const t = performance.now(), fd = openSync(path, 'r'), buf = Buffer.alloc(1 << 24);
  while (readSync(fd, buf, 0, buf.length, null) > 0) { /* read */ }
  closeSync(fd);
  return (performance.now() - t) / 1000;
}

/**
 * TRL+PEFT float32's footprint, roughly: our float32 estimate of the same run (weights, LoRA state,
 * activations) plus the full-vocabulary logits PyTorch keeps (policy logits, their gradient, the
 * reference pass's: 3 × rows × length × vocab floats) and ~1 GB of runtime.
 */
function trlEstimateGb(model: string, gc: boolean, seqLen: number): number {
  const arch = archFromConfig(JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as Record<string, unknown>, join(model, 'config.json'));
  const e = estimateRunMemory({ arch, lora: { r: 16, targetModules: 'all-linear' }, bf16: false, gradientCheckpointing: gc, refCopy: false, rows: 2, seqLen });
  return (e.bytes + 3 * 2 * seqLen * arch.vocabSize * 4 + 1e9) / 1e9;
}

async function main(): Promise<void> {
  const o = parseScalingArgs(argv);
  const { dir, sizes, modes, gcs, sweep, sweepLengths, sweepModes, sweepGcs, sweepSize, steps, accum, maxLength, learningRate, timeoutS } = o;
  const pw = o.promptWords, cw = o.completionWords;
  mkdirSync(dir, { recursive: true });
  const out = o.out ?? join(dir, 'quant-scaling.md');
  const trlWanted = o.trl, trlInstalled = existsSync(PY), threads = defaultThreadCount();
  const rowsN = Math.max(16, steps * accum);
  const settings = (gc: string, length: number): RunSettings => ({ steps, accum, maxLength: length, learningRate, gc: gc === 'on', timeoutS });

  const machine = describeMachine().lines;
  const started = new Date().toISOString();
  const command = `node dist/bench/quant-scaling.js${argv.length ? ` ${argv.join(' ')}` : ''}`;
  const rows: Row[] = [];
  const f = fmt;
  const store = new RunStore(join(dir, 'quant-scaling-runs.jsonl'), o.resume);
  const keyOf = (table: Row['table'], size: string, run: string, gc: string, length: number, data: string): RunKey =>
    ({ table, size, run, gc, length, steps, accum, learningRate, data });
  /** A finished run of an earlier sitting, when there is one (its row goes into the report as measured). */
  const earlier = (key: RunKey, label: string): boolean => {
    const r = store.find(key);
    if (!r) return false;
    rows.push(r);
    console.log(`  ${label} gc ${key.gc}: ${r.note}: ${f(r.stepS)} s/step, peak RSS ${f(r.peakGb, 2)} GB`);
    return true;
  };
  const header: string[] = [];
  const fileS: Record<string, number> = {};
  const settingsLine = `LoRA r=16 alpha 32 dropout 0.05 on all linear layers, batch 1 × gradient accumulation ${accum}, ${steps} steps (s/step = median after the first), learning rate ${learningRate}; TRL+PEFT float32 with torch threads ${threads}; per-run timeout ${timeoutS} s.`;
  const ctx = (): ReportContext => ({ started, command, machine, header: [settingsLine, ...header], maxLength, sweepSize, fileS });
  const render = () => {
    const md = renderReport(ctx(), rows);
    writeFileSync(out, md);
    return md;
  };
  /** A timed run with the machine's GEMM ceiling measured just before it. */
  const measuredRun = async (cmd: string[], kind: 'ours' | 'trl'): Promise<RunResult> => {
    const gflops = f32CeilingNow();
    return { ...await timedRun(cmd, kind, timeoutS), gflops };
  };
  const runTrl = async (table: Row['table'], size: string, model: string, data: string, gc: string, length: number, meanRow: number, ours: TokenStats) => {
    const base = { table, size, length, run: TRL, gc, meanRow };
    const key = keyOf(table, size, TRL, gc, length, data);
    if (earlier(key, TRL)) return;
    let r: RunResult;
    const est = trlEstimateGb(model, gc === 'on', Math.min(length, Math.ceil(Math.max(ours.chosen_row, ours.rejected_row) / ours.pairs)));
    const avail = availableMemory().bytes / 1e9;
    if (!trlInstalled) r = notRun(`not installed (${PY})`);
    else if (est > avail) r = notRun(`skipped: estimated ${f(est)} GB > ${f(avail)} GB available`, est);
    else {
      r = await measuredRun(trlCommand(PY, model, data, threads, settings(gc, length)), 'trl');
      r.estGb = est;
      const differ = r.result ? statsDiffer(ours, r.result) : '';
      if (differ) r.note = `${r.note ? `${r.note}; ` : ''}token counts differ: ${differ}`;
    }
    rows.push({ ...r, ...base });
    store.add(key, { ...r, ...base });
    console.log(`  ${TRL} gc ${gc}: ${r.ok ? `load ${f(r.loadS)} s, first step ${f(r.firstS)} s, ${f(r.stepS)} s/step, peak RSS ${f(r.peakGb, 2)} GB` : r.note}${r.ok && r.note ? ` (${r.note})` : ''}`);
  };
  const runOurs = async (table: Row['table'], size: string, model: string, data: string, mode: string, gc: string, length: number, meanRow: number) => {
    const key = keyOf(table, size, mode, gc, length, data);
    if (earlier(key, mode)) return;
    const r = await measuredRun(oursCommand(model, data, join(model, `out-${mode}-${gc}-${length}`), mode, settings(gc, length)), 'ours');
    const row: Row = { ...r, table, size, length, run: mode, gc, meanRow };
    rows.push(row);
    store.add(key, row);
    console.log(`  ${mode} gc ${gc}: ${r.ok ? `load ${f(r.loadS)} s, first step ${f(r.firstS)} s, ${f(r.stepS)} s/step, peak RSS ${f(r.peakGb, 2)} GB, estimate ${f(r.estGb, 2)} GB` : `failed: ${r.note}`}`);
  };
  /** Our modes, then TRL (where asked), for each gc setting; the report is rewritten after each run. */
  const runGroup = async (table: Row['table'], size: string, model: string, data: string, length: number, stats: TokenStats, gcList: string[], modeList: string[]) => {
    const meanRow = (stats.chosen_row + stats.rejected_row) / (2 * stats.pairs);
    for (const gc of gcList) {
      for (const mode of modeList) {
        await runOurs(table, size, model, data, mode, gc, length, meanRow);
        render();
      }
      if (trlWanted && o.trlSizes.includes(size)) {
        await runTrl(table, size, model, data, gc, length, meanRow, stats);
        render();
      }
    }
  };
  const checkpoint = (size: string) => {
    const model = join(dir, `qwen2.5-${size}`);
    if (!existsSync(join(model, 'model.safetensors'))) makeQwenCheckpoint(size, model);
    return model;
  };
  const trlNote = !trlWanted ? 'TRL+PEFT: off (--trl off)' : trlInstalled ? 'TRL+PEFT: bench/trl_scaling.py with .venv-ref' : `TRL+PEFT: not installed (${PY})`;
  header.push('', trlNote, '');

  const data = await pairsFile(dir, pw, cw, rowsN);
  const firstModel = checkpoint(sweep === 'only' ? sweepSize : sizes[0]);
  const baseStats = await tokenStats(firstModel, data, maxLength);
  if (sweep !== 'only') {
    header.push(`- data ${data}: ${baseStats.pairs} pairs, ${describeStats(baseStats)} (the checkpoint's tokenizer, max_length ${maxLength})`);
    for (const size of sizes) {
      const model = checkpoint(size);
      const stats = size === sizes[0] ? baseStats : await tokenStats(model, data, maxLength);
      fileS[size] = readOnce(join(model, 'model.safetensors'));
      console.log(`${size}: ${(statSync(join(model, 'model.safetensors')).size / 1e9).toFixed(2)} GB checkpoint, read once in ${fileS[size].toFixed(1)} s`);
      await runGroup('main', size, model, data, maxLength, stats, gcs, modes);
    }
  }
  if (sweep === 'on' || sweep === 'only') {
    const model = checkpoint(sweepSize);
    for (const length of sweepLengths) {
      const w = wordsFor(length, baseStats, pw, cw);
      const sdata = await pairsFile(dir, w.pw, w.cw, rowsN);
      const stats = await tokenStats(model, sdata, length);
      header.push(`- sweep ${length}: ${sdata}, ${describeStats(stats)}`);
      console.log(`sweep length ${length}:`);
      await runGroup('sweep', sweepSize, model, sdata, length, stats, sweepGcs, sweepModes);
    }
  }
  console.log(`\n${render()}\n\nwritten to ${out}`);
}

try {
  await main();
} catch (e) {
  if (!(e instanceof DpoError)) throw e;
  console.error(e.message);
  process.exit(e.exitCode);
}
