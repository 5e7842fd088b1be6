/**
 * The scaling benchmark of frozen-weight storage (issue 14), one command, one report: for each Qwen2.5
 * shape and storage mode (float32, dtype bfloat16, load_in_8bit, load_in_4bit nf4 + nested quant), with
 * and without gradient checkpointing, one `dpo train` process each (LoRA r=16 alpha 32 on all linear
 * layers): load time, first-step time, s/step (median after the first), peak RSS and the printed
 * estimate; beside them TRL 1.13 + PEFT float32 (bench/trl_scaling.py, when .venv-ref exists) on the
 * same checkpoint and data where its estimated footprint fits in the memory available, and the ratios
 * ours/TRL. Then the sequence-length sweep (512 / 1024 / 2048 total tokens at 0.5B). The markdown
 * (machine, exact command, date, token counts, tables, the issue's targets) is printed and written to
 * --out after every run. Checkpoints are made by bench/make-qwen-checkpoint.ts (random bf16 weights,
 * fixed seed) unless present. Figures on a shared machine are indicative.
 *
 *   node dist/bench/quant-scaling.js [--sizes 0.5b,1.5b,3b] [--modes f32,bf16,int8,nf4] [--gc on,off]
 *     [--steps 3] [--grad_accum 8] [--max_length 1024] [--prompt_words 49] [--completion_words 73]
 *     [--learning_rate 2e-4] [--trl on|off] [--sweep on|off|only] [--sweep_lengths 512,1024,2048]
 *     [--sweep_modes f32,nf4] [--sweep_gc on] [--timeout 14400] [--out FILE] [--dir /tmp/dpo-quant-bench]
 *   --quick: 0.5b, f32 + nf4, gradient checkpointing on, 2 steps, grad_accum 1, no sweep (flags given win)
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { archFromConfig } from '../src/models/registry.js';
import { availableMemory, estimateRunMemory } from '../src/models/memory-estimate.js';
import { defaultThreadCount } from '../src/backend/threads.js';
import { makeQwenCheckpoint } from './make-qwen-checkpoint.js';
import { describeMachine } from './machine.js';
import { notRun, oursCommand, timedRun, trlCommand, type RunResult, type RunSettings } from './scaling-runs.js';
import { describeStats, pairsFile, statsDiffer, tokenStats, wordsFor, type TokenStats } from './scaling-data.js';

const argv = process.argv.slice(2);
const QUICK: Record<string, string> = { sizes: '0.5b', modes: 'f32,nf4', gc: 'on', steps: '2', grad_accum: '1', sweep: 'off' };
function opt(name: string, def: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : argv.includes('--quick') && name in QUICK ? QUICK[name] : def;
}
const list = (name: string, def: string) => opt(name, def).split(',').filter(Boolean);

const PY = '.venv-ref/bin/python';
const TRL = 'TRL+PEFT f32';

interface Row extends RunResult { table: 'main' | 'sweep'; size: string; length: number; run: string; gc: string; meanRow: number }

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
  const dir = opt('dir', '/tmp/dpo-quant-bench');
  mkdirSync(dir, { recursive: true });
  const out = opt('out', join(dir, 'quant-scaling.md'));
  const sizes = list('sizes', '0.5b,1.5b,3b'), modes = list('modes', 'f32,bf16,int8,nf4'), gcs = list('gc', 'on,off');
  const sweep = opt('sweep', 'on'), sweepLengths = list('sweep_lengths', '512,1024,2048').map(Number);
  const sweepModes = list('sweep_modes', 'f32,nf4'), sweepGcs = list('sweep_gc', 'on'), sweepSize = opt('sweep_size', '0.5b');
  const steps = Number(opt('steps', '3')), accum = Number(opt('grad_accum', '8')), maxLength = Number(opt('max_length', '1024'));
  const learningRate = Number(opt('learning_rate', '2e-4')), timeoutS = Number(opt('timeout', '14400'));
  const pw = Number(opt('prompt_words', '49')), cw = Number(opt('completion_words', '73'));
  const trlWanted = opt('trl', 'on') === 'on', trlInstalled = existsSync(PY), threads = defaultThreadCount();
  const rowsN = Math.max(16, steps * accum);
  const settings = (gc: string, length: number): RunSettings => ({ steps, accum, maxLength: length, learningRate, gc: gc === 'on', timeoutS });

  const machine = describeMachine().lines;
  const started = new Date().toISOString();
  const command = `node dist/bench/quant-scaling.js${argv.length ? ` ${argv.join(' ')}` : ''}`;
  const rows: Row[] = [];
  const header: string[] = [];
  const fileS: Record<string, number> = {};
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const cell = (s: string) => s.replace(/\|/g, '\\|');

  const ratio = (r: Row, k: 'peakGb' | 'stepS') => {
    const t = rows.find((x) => x.run === TRL && x.ok && x.table === r.table && x.size === r.size && x.length === r.length && x.gc === r.gc);
    return r.run === TRL || !t || !r.ok ? '-' : f(r[k] / t[k], 2);
  };
  const line = (r: Row, sweepCols: boolean) => `| ${sweepCols ? `${r.length} | ${f(r.meanRow, 0)}` : r.size} | ${r.run} | ${r.gc} | ${f(r.loadS)} | ${f(r.firstS)} | ${f(r.stepS)} | ${f(r.peakGb, 2)} | ${f(r.estGb, 2)} | ${f(r.estGb / r.peakGb, 2)} | ${ratio(r, 'peakGb')} | ${ratio(r, 'stepS')} | ${cell(r.note)} |`;
  const render = () => {
    const md = [`# Scaling benchmark (issue 14)`, '', `date: ${started}`, '', `command: \`${command}\``, '', ...machine, '',
      `LoRA r=16 alpha 32 dropout 0.05 on all linear layers, batch 1 × gradient accumulation ${accum}, ${steps} steps (s/step = median after the first), learning rate ${learningRate}; TRL+PEFT float32 with torch threads ${threads}; per-run timeout ${timeoutS} s.`,
      '', ...header, ''];
    const main = rows.filter((r) => r.table === 'main'), sw = rows.filter((r) => r.table === 'sweep');
    const cols = '| load s | first step s | s/step | peak RSS GB | estimate GB | estimate/peak | RSS ours/TRL | s/step ours/TRL | note |';
    if (main.length) md.push(`## Shapes × storage (max_length ${maxLength})`, '', `| shape | run | grad ckpt ${cols}`, '|---|---|---|---|---|---|---|---|---|---|---|---|', ...main.map((r) => line(r, false)), '', ...targets(main), '');
    if (sw.length) md.push(`## Sequence length at ${sweepSize} (max_length = length; rows fill ~95% of it)`, '', `| length | mean row tokens | run | grad ckpt ${cols}`, '|---|---|---|---|---|---|---|---|---|---|---|---|---|', ...sw.map((r) => line(r, true)), '');
    writeFileSync(out, md.join('\n'));
    return md.join('\n');
  };

  /** The issue's targets from the rows measured (those a row is missing for are left out). */
  const targets = (main: Row[]): string[] => {
    const get = (size: string, run: string, gc: string) => main.find((r) => r.size === size && r.run === run && r.gc === gc && r.ok);
    const t: string[] = [];
    const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
    for (const gc of gcs) {
      const q = get('3b', 'nf4', gc), b = get('3b', 'bf16', gc);
      if (q) t.push(`- 3B load_in_4bit, gc ${gc}: peak RSS ${f(q.peakGb, 2)} GB (target ≤ 4): ${mark(q.peakGb <= 4)}`);
      if (b) t.push(`- 3B dtype bfloat16, gc ${gc}: peak RSS ${f(b.peakGb, 2)} GB (target ≤ 8): ${mark(b.peakGb <= 8)}`);
      const trl = get('1.5b', TRL, gc);
      for (const m of modes) {
        const o = get('1.5b', m, gc);
        if (o && trl) t.push(`- 1.5B ${m}, gc ${gc}: RSS ×${f(o.peakGb / trl.peakGb, 2)} of TRL's (target ≤ 0.35): ${mark(o.peakGb / trl.peakGb <= 0.35)}; s/step ×${f(o.stepS / trl.stepS, 2)} (target ≤ 0.6): ${mark(o.stepS / trl.stepS <= 0.6)}`);
      }
      for (const size of sizes) {
        const n = get(size, 'nf4', gc), bb = get(size, 'bf16', gc);
        if (n && bb) t.push(`- ${size} gc ${gc}: 4-bit s/step ×${f(n.stepS / bb.stepS, 2)} of bf16 storage's (target ≤ 1.3): ${mark(n.stepS / bb.stepS <= 1.3)}`);
      }
    }
    for (const size of sizes) {
      const ours = main.filter((r) => r.size === size && r.run !== TRL && r.ok);
      if (!ours.length || !fileS[size]) continue;
      const worst = ours.reduce((a, r) => (r.loadS > a.loadS ? r : a));
      t.push(`- ${size} load: slowest ${f(worst.loadS)} s (${worst.run}, gc ${worst.gc}) = ×${f(worst.loadS / fileS[size], 1)} the file read once (${f(fileS[size])} s; target ≤ 2; includes process start and reading the data): ${mark(worst.loadS <= 2 * fileS[size])}`);
    }
    return t.length ? ['Targets (issue 14):', '', ...t] : [];
  };

  const runTrl = async (table: Row['table'], size: string, model: string, data: string, gc: string, length: number, meanRow: number, ours: TokenStats) => {
    const base = { table, size, length, run: TRL, gc, meanRow };
    let r: RunResult;
    const est = trlEstimateGb(model, gc === 'on', Math.min(length, Math.ceil(Math.max(ours.chosen_row, ours.rejected_row) / ours.pairs)));
    const avail = availableMemory().bytes / 1e9;
    if (!trlInstalled) r = notRun(`not installed (${PY})`);
    else if (est > avail) r = notRun(`skipped: estimated ${f(est)} GB > ${f(avail)} GB available`, est);
    else {
      r = await timedRun(trlCommand(PY, model, data, threads, settings(gc, length)), 'trl', timeoutS);
      r.estGb = est;
      const differ = r.result ? statsDiffer(ours, r.result) : '';
      if (differ) r.note = `${r.note ? `${r.note}; ` : ''}token counts differ: ${differ}`;
    }
    rows.push({ ...r, ...base });
    console.log(`  ${TRL} gc ${gc}: ${r.ok ? `load ${f(r.loadS)} s, first step ${f(r.firstS)} s, ${f(r.stepS)} s/step, peak RSS ${f(r.peakGb, 2)} GB` : r.note}${r.ok && r.note ? ` (${r.note})` : ''}`);
  };
  const runOurs = async (table: Row['table'], size: string, model: string, data: string, mode: string, gc: string, length: number, meanRow: number) => {
    const r = await timedRun(oursCommand(model, data, join(model, `out-${mode}-${gc}-${length}`), mode, settings(gc, length)), 'ours', timeoutS);
    rows.push({ ...r, table, size, length, run: mode, gc, meanRow });
    console.log(`  ${mode} gc ${gc}: ${r.ok ? `load ${f(r.loadS)} s, first step ${f(r.firstS)} s, ${f(r.stepS)} s/step, peak RSS ${f(r.peakGb, 2)} GB, estimate ${f(r.estGb, 2)} GB` : `failed: ${r.note}`}`);
  };
  const checkpoint = (size: string) => {
    const model = join(dir, `qwen2.5-${size}`);
    if (!existsSync(join(model, 'model.safetensors'))) makeQwenCheckpoint(size, model);
    return model;
  };
  const trlNote = !trlWanted ? 'TRL+PEFT: off (--trl off)' : trlInstalled ? 'TRL+PEFT: bench/trl_scaling.py with .venv-ref' : `TRL+PEFT: not installed (${PY})`;
  header.push(trlNote, '');

  const data = await pairsFile(dir, pw, cw, rowsN);
  const firstModel = checkpoint(sweep === 'only' ? sweepSize : sizes[0]);
  const baseStats = await tokenStats(firstModel, data, maxLength);
  if (sweep !== 'only') {
    header.push(`data ${data}: ${baseStats.pairs} pairs, ${describeStats(baseStats)} (the checkpoint's tokenizer, max_length ${maxLength})`);
    for (const size of sizes) {
      const model = checkpoint(size);
      const stats = size === sizes[0] ? baseStats : await tokenStats(model, data, maxLength);
      const meanRow = (stats.chosen_row + stats.rejected_row) / (2 * stats.pairs);
      fileS[size] = readOnce(join(model, 'model.safetensors'));
      console.log(`${size}: ${(statSync(join(model, 'model.safetensors')).size / 1e9).toFixed(2)} GB checkpoint, read once in ${fileS[size].toFixed(1)} s`);
      for (const gc of gcs) {
        for (const mode of modes) {
          await runOurs('main', size, model, data, mode, gc, maxLength, meanRow);
          render();
        }
        if (trlWanted) await runTrl('main', size, model, data, gc, maxLength, meanRow, stats);
        render();
      }
    }
  }
  if (sweep === 'on' || sweep === 'only') {
    const model = checkpoint(sweepSize);
    for (const length of sweepLengths) {
      const w = wordsFor(length, baseStats, pw, cw);
      const sdata = await pairsFile(dir, w.pw, w.cw, rowsN);
      const stats = await tokenStats(model, sdata, length);
      const meanRow = (stats.chosen_row + stats.rejected_row) / (2 * stats.pairs);
      header.push(`sweep ${length}: ${sdata}, ${describeStats(stats)}`);
      console.log(`sweep length ${length}: mean row ${meanRow.toFixed(0)} tokens`);
      for (const gc of sweepGcs) {
        for (const mode of sweepModes) {
          await runOurs('sweep', sweepSize, model, sdata, mode, gc, length, meanRow);
          render();
        }
        if (trlWanted) await runTrl('sweep', sweepSize, model, sdata, gc, length, meanRow, stats);
        render();
      }
    }
  }
  console.log(`\n${render()}\n\nwritten to ${out}`);
}

await main();
