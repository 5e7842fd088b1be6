/**
 * The scaling benchmark's report (bench/quant-scaling.ts): markdown with the date, the exact command,
 * the machine, the settings and token counts, the shapes × storage table and the sequence-length
 * table (each with the ratios ours/TRL+PEFT at the same shape, length and gradient checkpointing, and
 * the machine's GEMM ceiling before each run, as the hour's speed behind its figures),
 * and the issue's targets computed from the rows that ran.
 */
import type { RunResult } from './scaling-runs.js';

export const TRL = 'TRL+PEFT f32';

export interface Row extends RunResult {
  table: 'main' | 'sweep';
  size: string;
  /** max_length of the run. */
  length: number;
  /** One of our modes (f32, bf16, int8, nf4) or TRL. */
  run: string;
  gc: string;
  /** Mean tokens of a row after truncation. */
  meanRow: number;
}

export interface ReportContext {
  started: string;
  command: string;
  machine: string[];
  /** Settings, data and token-count lines. */
  header: string[];
  maxLength: number;
  sweepSize: string;
  /** Seconds to read each size's checkpoint once. */
  fileS: Record<string, number>;
}

export const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const cell = (s: string) => s.replace(/\|/g, '\\|');
const COLS = '| load s | first step s | s/step | peak RSS GB | estimate GB | estimate/peak | RSS ours/TRL | s/step ours/TRL | GEMM GFLOPS before | note |';

export function renderReport(c: ReportContext, rows: Row[]): string {
  const ratio = (r: Row, k: 'peakGb' | 'stepS') => {
    const t = rows.find((x) => x.run === TRL && x.ok && x.table === r.table && x.size === r.size && x.length === r.length && x.gc === r.gc);
    return r.run === TRL || !t || !r.ok ? '-' : fmt(r[k] / t[k], 2);
  };
  const line = (r: Row) => `| ${r.table === 'sweep' ? `${r.length} | ${fmt(r.meanRow, 0)}` : r.size} | ${r.run} | ${r.gc} | ${fmt(r.loadS)} | ${fmt(r.firstS)} | ${fmt(r.stepS)} | ${fmt(r.peakGb, 2)} | ${fmt(r.estGb, 2)} | ${fmt(r.estGb / r.peakGb, 2)} | ${ratio(r, 'peakGb')} | ${ratio(r, 'stepS')} | ${fmt(r.gflops ?? NaN, 0)} | ${cell(r.note)} |`;
  const md = ['# Scaling benchmark (issue 14)', '', `date: ${c.started}`, '', `command: \`${c.command}\``, '', ...c.machine, '', ...c.header, ''];
  const main = rows.filter((r) => r.table === 'main'), sw = rows.filter((r) => r.table === 'sweep');
  if (main.length) md.push(`## Shapes × storage (max_length ${c.maxLength})`, '', `| shape | run | grad ckpt ${COLS}`, `|${'---|'.repeat(13)}`, ...main.map(line), '', ...targetLines(main, c.fileS), '');
  if (sw.length) md.push(`## Sequence length at ${c.sweepSize} (max_length = length; rows fill ~95% of it)`, '', `| length | mean row tokens | run | grad ckpt ${COLS}`, `|${'---|'.repeat(14)}`, ...sw.map(line), '');
  return md.join('\n');
}

/** The issue's targets from the rows measured (a target whose rows did not run is left out). */
export function targetLines(main: Row[], fileS: Record<string, number>): string[] {
  const get = (size: string, run: string, gc: string) => main.find((r) => r.size === size && r.run === run && r.gc === gc && r.ok);
  const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const t: string[] = [];
  const gcs = [...new Set(main.map((r) => r.gc))], sizes = [...new Set(main.map((r) => r.size))];
  const modes = [...new Set(main.map((r) => r.run))].filter((m) => m !== TRL);
  for (const gc of gcs) {
    const q = get('3b', 'nf4', gc), b = get('3b', 'bf16', gc);
    if (q) t.push(`- 3B load_in_4bit, gc ${gc}: peak RSS ${fmt(q.peakGb, 2)} GB (target ≤ 4): ${mark(q.peakGb <= 4)}`);
    if (b) t.push(`- 3B dtype bfloat16, gc ${gc}: peak RSS ${fmt(b.peakGb, 2)} GB (target ≤ 8): ${mark(b.peakGb <= 8)}`);
    const trl = get('1.5b', TRL, gc);
    for (const m of modes) {
      const o = get('1.5b', m, gc);
      if (o && trl) t.push(`- 1.5B ${m}, gc ${gc}: RSS ×${fmt(o.peakGb / trl.peakGb, 2)} of TRL's (target ≤ 0.35): ${mark(o.peakGb / trl.peakGb <= 0.35)}; s/step ×${fmt(o.stepS / trl.stepS, 2)} (target ≤ 0.6): ${mark(o.stepS / trl.stepS <= 0.6)}`);
    }
    for (const size of sizes) {
      const n = get(size, 'nf4', gc), bb = get(size, 'bf16', gc);
      if (n && bb) t.push(`- ${size} gc ${gc}: 4-bit s/step ×${fmt(n.stepS / bb.stepS, 2)} of bf16 storage's (target ≤ 1.3): ${mark(n.stepS / bb.stepS <= 1.3)}`);
    }
  }
  for (const size of sizes) {
    const ours = main.filter((r) => r.size === size && r.run !== TRL && r.ok);
    if (!ours.length || !fileS[size]) continue;
    const worst = ours.reduce((a, r) => (r.loadS > a.loadS ? r : a));
    t.push(`- ${size} load: slowest ${fmt(worst.loadS)} s (${worst.run}, gc ${worst.gc}) = ×${fmt(worst.loadS / fileS[size], 1)} the file read once (${fmt(fileS[size])} s, page cache as it is; target ≤ 2; the load time includes starting the process and reading the data): ${mark(worst.loadS <= 2 * fileS[size])}`);
  }
  return t.length ? ['Targets (issue 14):', '', ...t] : [];
}
