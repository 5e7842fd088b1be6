/**
 * The finished runs of the scaling benchmark (bench/quant-scaling.ts), one JSON line each in
 * DIR/quant-scaling-runs.jsonl, written as each run ends. The full benchmark takes most of a day on
 * two cores, so it can be stopped and started again: a run whose table, shape, mode, gradient
 * checkpointing, length, steps, accumulation, learning rate, data file and CPU model match a finished
 * one is not run again; its row comes back with the date and commit it was measured at in its note.
 * Failed and skipped runs are not kept (they are tried again). `--resume off` measures every row anew.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { cpus } from 'node:os';
import type { Row } from './scaling-report.js';

export interface RunKey {
  table: Row['table'];
  size: string;
  run: string;
  gc: string;
  length: number;
  steps: number;
  accum: number;
  learningRate: number;
  /** The pairs file (its name encodes the words per prompt and completion and the row count). */
  data: string;
}

interface Stored { key: RunKey & { cpu: string }; at: string; commit: string; row: Row }

const cpuModel = () => cpus()[0]?.model?.trim() ?? 'unknown';

/** The checkout's short commit, with "+" when the tree has changes; '' outside git. */
function commitOf(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  if (head.status !== 0) return '';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' });
  return `${head.stdout.trim()}${dirty.stdout.trim() ? '+' : ''}`;
}

const same = (a: RunKey & { cpu: string }, b: RunKey & { cpu: string }) =>
  a.table === b.table && a.size === b.size && a.run === b.run && a.gc === b.gc && a.length === b.length && a.steps === b.steps &&
  a.accum === b.accum && a.learningRate === b.learningRate && basename(a.data) === basename(b.data) && a.cpu === b.cpu;

export class RunStore {
  private readonly runs: Stored[] = [];
  private readonly commit = commitOf();

  /** `resume` false: nothing earlier is reused (finished runs are still appended). */
  constructor(readonly path: string, private readonly resume: boolean) {
    if (!existsSync(path)) return;
    for (const [i, line] of readFileSync(path, 'utf8').split('\n').entries()) {
      if (!line.trim()) continue;
      try {
        this.runs.push(JSON.parse(line) as Stored);
      } catch {
        // A line cut by a kill mid-write: the run is measured again.
        console.warn(`${path}:${i + 1}: not a finished run (cut short?); ignored`);
      }
    }
  }

  /** The finished run with this key on this CPU model, its note saying when it was measured. */
  find(key: RunKey): Row | null {
    if (!this.resume) return null;
    const k = { ...key, cpu: cpuModel() };
    const s = [...this.runs].reverse().find((r) => r.row?.ok && same(r.key, k));
    if (!s) return null;
    const when = `measured ${s.at.slice(0, 16).replace('T', ' ')} UTC${s.commit ? ` at ${s.commit}` : ''}`;
    return { ...s.row, note: s.row.note ? `${s.row.note}; ${when}` : when };
  }

  /** Keeps a finished run (failed runs are not kept). */
  add(key: RunKey, row: Row): void {
    if (!row.ok) return;
    const s: Stored = { key: { ...key, data: basename(key.data), cpu: cpuModel() }, at: new Date().toISOString(), commit: this.commit, row };
    this.runs.push(s);
    appendFileSync(this.path, `${JSON.stringify(s)}\n`);
  }
}
