/** Tokenising on several threads gives exactly one prepareRows call's pairs, dropped rows, warnings and errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { prepareRows, type PrepareOptions } from '../../src/data/prepare.js';
import { prepareRowsParallel, prepareThreads } from '../../src/data/prepare-parallel.js';
import { syntheticRows } from '../../bench/synthetic-pairs.js';
import { DpoError } from '../../src/errors.js';

const TOK = 'test/fixtures/tokenizers/tiny-bpe';

test('2 and 3 threads equal one thread: pairs, dropped rows, warnings (the once-only one once), progress', () => {
  const tok = HfTokenizer.fromDir(TOK);
  const rows = syntheticRows(2500, { seed: 9, promptWords: [3, 30], completionWords: [3, 20] });
  // Prompts cut inside a word make prompt+completion merge across the boundary (TRL's mismatch warning).
  for (const i of [7, 1500, 2400]) rows[i] = { prompt: 'Tell me: hel', chosen: 'lo there', rejected: 'lp me' };
  const run = (threads: number) => {
    const warnings: string[] = [];
    let last = 0;
    const opts: PrepareOptions = { maxLength: 100, truncationMode: 'keep_start', warn: (m) => warnings.push(m), onProgress: (d, t) => { assert.ok(d >= last && d <= t); last = d; } };
    const out = threads === 1 ? prepareRows(rows, tok, opts, false) : prepareRowsParallel(rows, tok, opts, false, threads);
    assert.equal(last, rows.length);
    return { ...out, warnings };
  };
  const one = run(1);
  assert.ok(one.dropped.length > 0 && one.pairs.length > 1500, `dropped ${one.dropped.length}`);
  assert.deepEqual(one.warnings.map((w) => w.slice(0, 7)), ['row 7: ']);
  for (const threads of [2, 3]) assert.deepEqual(run(threads), one, `${threads} threads`);
});

test('a user error in a worker thread arrives as the same DpoError', () => {
  const tok = HfTokenizer.fromDir(TOK);
  const rows = syntheticRows(2000, { format: 'conversational', promptWords: [3, 5], completionWords: [3, 5] });
  const noTemplate = new HfTokenizer(tok.tokenizerJson, { ...tok.config, chat_template: undefined });
  const opts = { maxLength: null, truncationMode: 'keep_start' };
  // Serially the first row fails; give the worker's chunk the only conversational rows.
  const mixed = [...syntheticRows(1000, { promptWords: [3, 5], completionWords: [3, 5] }), ...rows.slice(0, 1000)];
  const serial = (() => { try { prepareRows(rows, noTemplate, opts, true); } catch (e) { return e as Error; } })();
  assert.ok(serial instanceof DpoError);
  assert.throws(() => prepareRowsParallel(mixed, noTemplate, opts, true, 2), (e: Error) => e instanceof DpoError && e.message === serial.message && !e.message.includes('thread'));
});

test('threads: dataset_num_proc wins; by default one per core, each with enough rows', () => {
  assert.equal(prepareThreads(500, null), 1);
  assert.equal(prepareThreads(100_000, 1), 1);
  assert.equal(prepareThreads(100_000, 3), 3);
  assert.equal(prepareThreads(2500, 8), 2);
});
