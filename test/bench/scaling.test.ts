/**
 * The scaling benchmark's plumbing (bench/quant-scaling.ts): its flags and their one-line errors, and
 * how a training process is timed and how a crash, a kill or a timeout becomes a row with its reason,
 * on stand-in child processes that print the lines `dpo train` and bench/trl_scaling.py print.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseScalingArgs } from '../../bench/scaling-options.js';
import { median, timedRun } from '../../bench/scaling-runs.js';
import { statsDiffer, wordsFor } from '../../bench/scaling-data.js';
import { nativeAvailable } from '../../src/backend/index.js';

test('defaults are the issue\'s benchmark; --quick is the smoke preset and explicit flags win over it', () => {
  const d = parseScalingArgs([]);
  assert.deepEqual([d.sizes, d.modes, d.gcs, d.steps, d.accum, d.maxLength, d.sweep, d.sweepLengths, d.trl], [['0.5b', '1.5b', '3b'], ['f32', 'bf16', 'int8', 'nf4'], ['on', 'off'], 3, 8, 1024, 'on', [512, 1024, 2048], true]);
  const q = parseScalingArgs(['--quick']);
  assert.deepEqual([q.sizes, q.modes, q.gcs, q.steps, q.accum, q.sweep], [['0.5b'], ['f32', 'nf4'], ['on'], 2, 1, 'off']);
  const qq = parseScalingArgs(['--quick', '--max_length', '256', '--steps', '3', '--sweep', 'only', '--trl', 'off']);
  assert.deepEqual([qq.maxLength, qq.steps, qq.sweep, qq.trl, qq.accum], [256, 3, 'only', false, 1]);
  assert.deepEqual([d.trlSizes, parseScalingArgs(['--trl_sizes', '1.5b']).trlSizes], [['0.5b', '1.5b', '3b'], ['1.5b']]);
});

test('a bad flag value is one line naming the flag and what it takes', () => {
  const cases: [string[], RegExp][] = [
    [['--sizes', '0.5b,7b'], /^quant-scaling: --sizes "0\.5b,7b" has "7b"; use a comma list of 0\.5b, 1\.5b, 3b$/],
    [['--modes', 'f32,fp8'], /^quant-scaling: --modes "f32,fp8" has "fp8"; use a comma list of f32, bf16, int8, nf4$/],
    [['--gc', ','], /^quant-scaling: --gc "," has no entry; use a comma list of on, off$/],
    [['--sweep', 'maybe'], /^quant-scaling: --sweep "maybe" has "maybe"; use a comma list of on, off, only$/],
    [['--sweep', 'on,off'], /^quant-scaling: --sweep takes one of on, off, only, got "on,off"$/],
    [['--trl', 'yes'], /^quant-scaling: --trl "yes" has "yes"/],
    [['--trl_sizes', '7b'], /^quant-scaling: --trl_sizes "7b" has "7b"; use a comma list of 0\.5b, 1\.5b, 3b$/],
    [['--steps', '0'], /^quant-scaling: --steps "0" is not a whole number > 0$/],
    [['--grad_accum', '1.5'], /^quant-scaling: --grad_accum "1\.5" is not a whole number > 0$/],
    [['--timeout', 'soon'], /^quant-scaling: --timeout "soon" is not a number > 0$/],
    [['--completion_words', '3'], /^quant-scaling: --completion_words "3" is not a whole number > 3$/],
    [['--max_length'], /^quant-scaling: --max_length needs a value \(default 1024\)$/],
    [['--steps', '--quick'], /^quant-scaling: --steps needs a value/],
    [['--sweep_lengths', '512,long'], /^quant-scaling: --sweep_lengths "512,long" must be a comma list of whole token counts > 0$/],
    [['--sweep_size', '0.5b,3b'], /^quant-scaling: --sweep_size takes one of 0\.5b, 1\.5b, 3b, got "0\.5b,3b"$/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseScalingArgs(argv), (e: Error) => e.name === 'DpoError' && re.test(e.message) && !e.message.includes('\n'), argv.join(' '));
  }
});

test('median of the step gaps: the middle one, or the mean of the two middle ones', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

/** A stand-in child: `lines` printed with a pause (ms) before each, then `end` (JS) runs. */
const child = (lines: [number, string][], end = '') => [process.execPath, '-e', `
  const lines = ${JSON.stringify(lines)};
  (async () => { for (const [ms, l] of lines) { await new Promise((r) => setTimeout(r, ms)); console.log(l); } ${end} })();`];

test('our run: load, first step, s/step (median of the later gaps), estimate and peak from dpo train\'s lines', async () => {
  const r = await timedRun(child([[100, 'model /m (qwen2, 494.0M parameters)'], [0, 'data x: 16 training pairs'], [200, 'memory: estimated peak 2.35 GB (weights 2.0 GB)'],
    [300, 'step 1/4 loss 0.6931'], [100, 'step 2/4 loss 0.6'], [400, 'step 3/4 loss 0.5'], [100, 'step 4/4 loss 0.4'], [0, 'memory: measured peak RSS 812.5 MB (estimated 2.35 GB, 10% off)']]), 'ours', 30);
  assert.equal(r.ok, true, r.note);
  assert.equal(r.estGb, 2.35);
  assert.equal(r.peakGb, 0.8125);
  assert.ok(r.loadS >= 0.1 && r.loadS < r.firstS + 10, `load ${r.loadS}`);
  assert.ok(r.firstS >= 0.29, `first ${r.firstS}`);
  // gaps 0.1, 0.4, 0.1: the median is 0.1 (the slow gap does not move it)
  assert.ok(r.stepS >= 0.09 && r.stepS < 0.35, `s/step ${r.stepS}`);
});

test('TRL\'s run: the LOADED / READY / STEP lines and the RESULT line\'s peak and token counts', async () => {
  const res = { pairs: 16, prompt: 3200, chosen: 4800, rejected: 4810, chosen_row: 4096, rejected_row: 4096, peak_rss_gb: 3.5 };
  const r = await timedRun(child([[50, 'LOADED'], [50, 'READY'], [200, 'STEP 1'], [100, 'STEP 2'], [0, `RESULT ${JSON.stringify(res)}`]]), 'trl', 30);
  assert.equal(r.ok, true, r.note);
  assert.equal(r.peakGb, 3.5);
  assert.ok(r.firstS >= 0.19 && r.stepS >= 0.09, `${r.firstS} ${r.stepS}`);
  const ours = { pairs: 16, prompt: 3200, chosen: 4800, rejected: 4810, chosen_row: 4096, rejected_row: 4096 };
  assert.equal(statsDiffer(ours, r.result!), '');
  assert.equal(statsDiffer({ ...ours, chosen: 4799, rejected_row: 4000 }, r.result!), 'chosen ours 4799 TRL 4800, rejected_row ours 4000 TRL 4096');
});

test('a failed run is a row with its reason: the error line, a kill (OOM), a timeout, no step, a missing program', async () => {
  const refused = await timedRun(child([[0, 'model /m']], "console.error('warning: x'); console.error('this run needs about 40.1 GB of memory but 20.0 GB is available'); process.exit(2);"), 'ours', 30);
  assert.deepEqual([refused.ok, refused.note], [false, 'exit 2: this run needs about 40.1 GB of memory but 20.0 GB is available']);
  assert.ok(refused.loadS >= 0);
  const killed = await timedRun(child([[0, 'LOADED'], [0, 'READY'], [0, 'STEP 1']], "process.kill(process.pid, 'SIGKILL');"), 'trl', 30);
  assert.deepEqual([killed.ok, killed.note], [false, 'killed by SIGKILL (out of memory?) at step 1']);
  const t0 = performance.now();
  const slow = await timedRun(child([[0, 'model /m'], [60000, 'step 1/2']]), 'ours', 0.5);
  assert.deepEqual([slow.ok, slow.note], [false, 'timed out after 0.5 s (killed) at step 0']);
  assert.ok(performance.now() - t0 < 20000, 'the timeout kills the run');
  const none = await timedRun(child([[0, 'model /m']]), 'ours', 30);
  assert.deepEqual([none.ok, none.note], [false, 'no step was logged']);
  const missing = await timedRun(['/nonexistent/python', 'x.py'], 'trl', 30);
  assert.equal(missing.ok, false);
  assert.match(missing.note, /^could not start \/nonexistent\/python: .*ENOENT/);
});

test('sweep rows: word counts that fill ~95% of the length at the measured tokens per word', () => {
  // 4 tokens per prompt word, 4.1 per completion word (the tiny tokenizer's figures at 49 / 73 words)
  const base = { pairs: 10, prompt: 1960, chosen: 2993, rejected: 2993, chosen_row: 0, rejected_row: 0 };
  assert.deepEqual(wordsFor(1024, base, 49, 73), { pw: 97, cw: 142 });
  assert.deepEqual(wordsFor(2048, base, 49, 73), { pw: 195, cw: 285 });
});

test('the report: ratios ours/TRL at the same shape and gc, error rows with their reason, the targets', async () => {
  const { renderReport, targetLines, TRL } = await import('../../bench/scaling-report.js');
  const row = (size: string, run: string, gc: string, stepS: number, peakGb: number, note = '') =>
    ({ table: 'main' as const, size, length: 1024, run, gc, meanRow: 500, ok: note === '', note, loadS: 5, firstS: 20, stepS, peakGb, estGb: peakGb * 0.9 });
  const rows = [{ ...row('1.5b', 'nf4', 'on', 30, 2, ''), gflops: 91.6 }, row('1.5b', 'bf16', 'on', 25, 4), row('1.5b', TRL, 'on', 60, 10), row('1.5b', 'f32', 'off', NaN, NaN, 'killed by SIGKILL (out of memory?) at step 0'),
    row('3b', 'nf4', 'on', 80, 4.2), row('3b', 'bf16', 'on', 60, 7.5)];
  const md = renderReport({ started: 'D', command: 'node dist/bench/quant-scaling.js --sizes 1.5b', machine: ['CPU: x'], header: ['h'], maxLength: 1024, sweepSize: '0.5b', fileS: { '1.5b': 2 } }, rows);
  assert.ok(md.includes('command: `node dist/bench/quant-scaling.js --sizes 1.5b`') && md.includes('date: D'));
  // 2 / 10 GB and 30 / 60 s; the GEMM ceiling measured before the run, '-' for a row stored without one
  assert.ok(md.includes('| 1.5b | nf4 | on | 5.0 | 20.0 | 30.0 | 2.00 | 1.80 | 0.90 | 0.20 | 0.50 | 92 |  |'), md);
  assert.ok(md.includes('| 1.5b | f32 | off | 5.0 | 20.0 | - | - | - | - | - | - | - | killed by SIGKILL (out of memory?) at step 0 |'), md);
  assert.ok(md.includes('| shape | run | grad ckpt | load s | first step s | s/step | peak RSS GB | estimate GB | estimate/peak | RSS ours/TRL | s/step ours/TRL | GEMM GFLOPS before | note |\n|' + '---|'.repeat(13) + '\n'), md);
  const t = targetLines(rows, { '1.5b': 2 });
  assert.deepEqual(t.slice(2), [
    '- 3B load_in_4bit, gc on: peak RSS 4.20 GB (target ≤ 4): NOT met',
    '- 3B dtype bfloat16, gc on: peak RSS 7.50 GB (target ≤ 8): met',
    "- 1.5B nf4, gc on: RSS ×0.20 of TRL's (target ≤ 0.35): met; s/step ×0.50 (target ≤ 0.6): met",
    "- 1.5B bf16, gc on: RSS ×0.40 of TRL's (target ≤ 0.35): NOT met; s/step ×0.42 (target ≤ 0.6): met",
    "- 1.5b gc on: 4-bit s/step ×1.20 of bf16 storage's (target ≤ 1.3): met",
    "- 3b gc on: 4-bit s/step ×1.33 of bf16 storage's (target ≤ 1.3): NOT met",
    '- 1.5b load: slowest 5.0 s (nf4, gc on) = ×2.5 the file read once (2.0 s, page cache as it is; target ≤ 2; the load time includes starting the process and reading the data): NOT met',
  ]);
});

test('finished runs are kept and reused across sittings: same settings and CPU only, failed runs tried again, --resume off', async () => {
  const { RunStore } = await import('../../bench/scaling-results.js');
  const { mkdtempSync, readFileSync, appendFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const path = join(mkdtempSync(join(tmpdir(), 'runs-')), 'quant-scaling-runs.jsonl');
  const key = { table: 'main' as const, size: '1.5b', run: 'nf4', gc: 'on', length: 1024, steps: 3, accum: 8, learningRate: 2e-4, data: '/d/pairs-49-73-24.jsonl' };
  const row = (ok: boolean) => ({ ...key, meanRow: 500, ok, note: ok ? '' : 'killed', loadS: 2, firstS: 500, stepS: 480, peakGb: 2.2, estGb: 2.1 });
  const a = new RunStore(path, true);
  assert.equal(a.find(key), null);
  a.add(key, row(false)); // a failed run is not kept
  assert.equal(a.find(key), null);
  a.add(key, row(true));
  appendFileSync(path, '{"key": {"tab'); // a line cut by a kill
  const b = new RunStore(path, true);
  const got = b.find({ ...key, data: '/elsewhere/pairs-49-73-24.jsonl' }); // the same file name in another --dir
  assert.ok(got && got.stepS === 480 && got.peakGb === 2.2 && /^measured \d{4}-\d\d-\d\d \d\d:\d\d UTC( at [0-9a-f]+\+?)?$/.test(got.note), JSON.stringify(got));
  for (const other of [{ steps: 2 }, { accum: 1 }, { gc: 'off' }, { run: 'bf16' }, { size: '3b' }, { length: 512 }, { table: 'sweep' as const }, { learningRate: 1e-4 }, { data: 'pairs-49-73-16.jsonl' }]) {
    assert.equal(b.find({ ...key, ...other }), null, JSON.stringify(other));
  }
  assert.equal(new RunStore(path, false).find(key), null);
  assert.equal(readFileSync(path, 'utf8').split('\n').filter((l) => l.startsWith('{"key":{')).length, 1);
});

test('the GEMM ceiling each row carries is measured in this process: a positive GFLOPS figure', { skip: nativeAvailable() ? false : 'needs the native addon' }, async () => {
  const { f32CeilingNow } = await import('../../bench/machine.js');
  const g = f32CeilingNow();
  assert.ok(Number.isFinite(g) && g > 0.1, `ceiling ${g}`);
});
