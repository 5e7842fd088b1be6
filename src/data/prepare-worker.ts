/** A worker thread of prepareRowsParallel: tokenises one chunk of rows with its own tokenizer. */
import { workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { DpoError } from '../errors.js';
import { HfTokenizer } from '../tokenizer/tokenizer.js';
import { prepareRows } from './prepare.js';
import type { ChunkJob, ChunkResult } from './prepare-parallel.js';

const { job, port } = workerData as { job: ChunkJob; port: MessagePort };
const state = new Int32Array(job.shared);
let result: ChunkResult;
try {
  const t = job.tokenizer;
  const tok = new HfTokenizer(t.json, t.config, t.chatTemplate, t.sourceDir);
  tok.padToken = t.padToken;
  const warnings: [string, 'mismatch' | 'special-split' | undefined][] = [];
  const prepared = prepareRows(job.rows, tok, { ...job.opts, warn: (m, k) => warnings.push([m, k]), onProgress: (d) => Atomics.store(state, 2 * job.slot, d) }, job.conversational);
  result = { ok: true, prepared, warnings };
} catch (e) {
  result = { ok: false, message: (e as Error).message, userError: e instanceof DpoError };
}
// The ids move to the main thread without a copy.
port.postMessage(result, result.ok ? result.prepared.pairs.flatMap((p) => [p.promptIds.buffer, p.chosenIds.buffer, p.rejectedIds.buffer] as ArrayBuffer[]) : []);
Atomics.store(state, 2 * job.slot + 1, 1);
Atomics.notify(state, 2 * job.slot + 1);
