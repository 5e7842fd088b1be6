/**
 * prepareRows on several threads. The rows are cut into contiguous chunks; worker threads, each
 * with its own copy of the tokenizer, take all but the first, which this thread does meanwhile.
 * Chunks join in row order, so the pairs, the dropped rows and the warnings equal those of one
 * prepareRows call (its once-only warning stays once). It blocks (Atomics.wait and
 * receiveMessageOnPort) so that callers such as the trainer's constructor stay synchronous.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { DpoError } from '../errors.js';
import type { HfTokenizer } from '../tokenizer/tokenizer.js';
import type { Row } from './load.js';
import { prepareRows, type PrepareOptions, type Prepared } from './prepare.js';

/** Below this many rows a worker's start-up (loading its tokenizer) costs more than it saves. */
export const MIN_ROWS_PER_THREAD = 1000;
/** A worker that advances no row for this long has died (a blocked thread sees no 'exit' event). */
const STALL_MS = 300_000;

type Warning = [msg: string, kind: 'mismatch' | 'special-split' | undefined];

/** What a worker gets (structured-cloned) and sends back. */
export interface ChunkJob {
  tokenizer: { json: Record<string, unknown>; config: Record<string, unknown>; chatTemplate: string | null; padToken: string | null; sourceDir: string | null };
  rows: readonly Row[];
  opts: { maxLength: number | null; truncationMode: string; indexBase: number };
  conversational: boolean;
  /** Int32Array over a SharedArrayBuffer: [rows done, finished flag] at slot·2. */
  shared: SharedArrayBuffer;
  slot: number;
}
export type ChunkResult = { ok: true; prepared: Prepared; warnings: Warning[] } | { ok: false; message: string; userError: boolean };

/** Threads to use: dataset_num_proc if set, else one per core when every thread gets enough rows. */
export function prepareThreads(rows: number, numProc: number | null): number {
  const want = numProc ?? availableParallelism();
  return Math.max(1, Math.min(want, Math.floor(rows / MIN_ROWS_PER_THREAD)));
}

export function prepareRowsParallel(rows: readonly Row[], tok: HfTokenizer, opts: PrepareOptions, conversational: boolean, threads: number): Prepared {
  if (threads <= 1) return prepareRows(rows, tok, opts, conversational);
  const n = rows.length;
  const bounds = Array.from({ length: threads + 1 }, (_, i) => Math.round((i * n) / threads));
  const shared = new SharedArrayBuffer(4 * 2 * threads);
  const state = new Int32Array(shared);
  const workers: { worker: Worker; port: MessagePort }[] = [];
  try {
    for (let t = 1; t < threads; t++) {
      const { port1, port2 } = new MessageChannel();
      const job: ChunkJob = {
        tokenizer: { json: tok.tokenizerJson, config: tok.config, chatTemplate: tok.chatTemplate, padToken: tok.padToken, sourceDir: tok.sourceDir },
        rows: rows.slice(bounds[t], bounds[t + 1]),
        opts: { maxLength: opts.maxLength, truncationMode: opts.truncationMode, indexBase: (opts.indexBase ?? 0) + bounds[t] },
        conversational, shared, slot: t,
      };
      const worker = new Worker(new URL('./prepare-worker.js', import.meta.url), { workerData: { job, port: port2 }, transferList: [port2] });
      worker.unref();
      workers.push({ worker, port: port1 });
    }
    const othersDone = () => {
      let d = 0;
      for (let t = 1; t < threads; t++) d += Atomics.load(state, 2 * t);
      return d;
    };
    const warnings: Warning[][] = [];
    const first: Warning[] = [];
    const mine = prepareRows(rows.slice(bounds[0], bounds[1]), tok, {
      ...opts, warn: (m, k) => first.push([m, k]), onProgress: (d) => opts.onProgress?.(d + othersDone(), n),
    }, conversational);
    const parts: Prepared[] = [mine];
    warnings.push(first);
    for (let t = 1; t < threads; t++) {
      let seen = -1, since = Date.now();
      while (Atomics.load(state, 2 * t + 1) === 0) {
        Atomics.wait(state, 2 * t + 1, 0, 200);
        opts.onProgress?.(bounds[1] + othersDone(), n);
        const done = Atomics.load(state, 2 * t);
        if (done !== seen) [seen, since] = [done, Date.now()];
        else if (Date.now() - since > STALL_MS) throw new Error(`data preparation thread ${t} stopped at row ${bounds[t] + done} (out of memory?); set dataset_num_proc to 1 to prepare in one thread`);
      }
      const msg = receiveMessageOnPort(workers[t - 1].port) as { message: ChunkResult } | undefined;
      if (!msg) throw new Error(`data preparation thread ${t} finished without a result`);
      const r = msg.message;
      if (!r.ok) throw r.userError ? new DpoError(r.message) : new Error(`data preparation thread ${t}: ${r.message}`);
      parts.push(r.prepared);
      warnings.push(r.warnings);
    }
    let warnedMismatch = false;
    for (const [m, k] of warnings.flat()) {
      if (k === 'mismatch') {
        if (warnedMismatch) continue;
        warnedMismatch = true;
      }
      opts.warn?.(m, k);
    }
    const out: Prepared = { pairs: [], dropped: [] };
    for (const p of parts) {
      for (const x of p.pairs) out.pairs.push(x);
      for (const x of p.dropped) out.dropped.push(x);
    }
    return out;
  } finally {
    for (const w of workers) void w.worker.terminate();
  }
}
