/**
 * Turning user data into what the training loop consumes: validation, TRL-identical tokenisation,
 * the collator settings, and seeded epoch orders.
 */
import type { Hash } from 'node:crypto';
import { DpoError } from '../errors.js';
import { Rng } from '../tensor/rng.js';
import type { HfTokenizer } from '../tokenizer/tokenizer.js';
import { Dataset } from '../data/dataset.js';
import { detectFormat, invalidDataError, validateRows, type RowError } from '../data/validate.js';
import type { TokenizedPair } from '../data/prepare.js';
import { prepareRowsParallel, prepareThreads } from '../data/prepare-parallel.js';
import { collate, type CollateOptions, type CollatedBatch } from '../data/collate.js';
import type { DPOConfig } from './config.js';

/** Progress of tokenisation: rows of split `split` done so far (for a progress bar). */
export type PrepareProgress = (split: string, done: number, total: number) => void;

export interface PreparedSplit {
  pairs: TokenizedPair[];
  /** Row numbers dropped because the prompt alone fills max_length. */
  dropped: number[];
  /** Invalid rows skipped with skip_invalid_rows. */
  skipped: RowError[];
  conversational: boolean;
}

/** One eval set: `name` null for a single eval_dataset, its key when eval_dataset is a mapping (metrics eval_<name>_loss, ...). */
export interface EvalSet {
  name: string | null;
  pairs: TokenizedPair[];
}

export interface TrainingData {
  train: TokenizedPair[];
  /** The (first) eval set's pairs; all of them, named, in evalSets. */
  eval: TokenizedPair[] | null;
  /** Every eval set in order (absent: just `eval`, unnamed). */
  evalSets?: EvalSet[];
  collate: CollateOptions;
  report: { train: PreparedSplit; eval: PreparedSplit | null };
}

export function prepareSplit(ds: Dataset, tok: HfTokenizer, args: DPOConfig, name: string, warn: (m: string) => void, onProgress?: PrepareProgress): PreparedSplit {
  const format = detectFormat(ds.rows);
  const errors = validateRows(ds.rows, format);
  let rows = ds.rows;
  if (errors.length) {
    if (!args.skipInvalidRows) throw invalidDataError(`${name} data (${ds.source})`, errors, ds.length);
    const bad = new Set(errors.map((e) => e.row));
    rows = rows.filter((_, i) => !bad.has(i));
    warn(`${name}: skipped ${bad.size} invalid rows`);
  }
  const { pairs, dropped } = prepareRowsParallel(rows, tok, { maxLength: args.maxLength, truncationMode: args.truncationMode, warn, onProgress: onProgress && ((d, t) => onProgress(name, d, t)) }, format.conversational, prepareThreads(rows.length, args.datasetNumProc));
  if (dropped.length) warn(`${name}: dropped ${dropped.length} rows whose prompt alone fills max_length=${args.maxLength}`);
  if (!pairs.length) throw new DpoError(`${name}: no usable preference pairs left (all rows invalid or truncated away); raise max_length or fix the data`);
  return { pairs, dropped, skipped: errors, conversational: format.conversational };
}

/** The eval sets of `data`, named as given (a TrainingData built without evalSets has at most its one unnamed set). */
export function evalSetsOf(data: TrainingData): EvalSet[] {
  return data.evalSets ?? (data.eval ? [{ name: null, pairs: data.eval }] : []);
}

/**
 * Validates and tokenises the data sets; the pad token falls back to EOS as in TRL. `eval` is one
 * data set or, as TRL's eval_dataset dict, a mapping name → data set (each evaluated and logged apart).
 */
export function prepareTrainingData(p: { train: Dataset; eval?: Dataset | Record<string, Dataset> | null; tokenizer: HfTokenizer; args: DPOConfig; warn?: (m: string) => void; onProgress?: PrepareProgress }): TrainingData {
  const warn = p.warn ?? ((m: string) => process.emitWarning(m, { code: 'DPO_DATA' }));
  const tok = p.tokenizer;
  if (tok.padToken === null) tok.padToken = tok.eosToken;
  const padTokenId = tok.padTokenId;
  if (padTokenId === null) throw new DpoError('the tokenizer has neither a pad_token nor an eos_token in its vocabulary; set pad_token in tokenizer_config.json');
  const train = prepareSplit(p.train, tok, p.args, 'train', warn, p.onProgress);
  const given: [string | null, Dataset][] = !p.eval ? [] : p.eval instanceof Dataset ? [[null, p.eval]] : Object.entries(p.eval);
  const evals = given.map(([name, ds]) => ({ name, split: prepareSplit(ds, tok, p.args, name === null ? 'eval' : `eval ${name}`, warn, p.onProgress) }));
  const ev = evals[0]?.split ?? null;
  return {
    train: train.pairs,
    eval: ev?.pairs ?? null,
    evalSets: evals.map((e) => ({ name: e.name, pairs: e.split.pairs })),
    collate: { padTokenId, maxLength: p.args.maxLength, truncationMode: p.args.truncationMode, padToMultipleOf: p.args.padToMultipleOf },
    report: { train, eval: ev },
  };
}

/** Throws when a token id (or the pad id) is outside the model's vocabulary: the tokenizer is not the model's. */
export function checkVocabulary(data: TrainingData, vocabSize: number): void {
  // A loop, not Math.max(...ids): a real data set holds millions of ids, past any argument limit.
  let maxId = data.collate.padTokenId;
  for (const pairs of [data.train, ...evalSetsOf(data).map((e) => e.pairs)]) {
    for (const p of pairs) {
      for (const ids of [p.promptIds, p.chosenIds, p.rejectedIds]) for (const t of ids) if (t > maxId) maxId = t;
    }
  }
  if (maxId >= vocabSize) throw new DpoError(`the tokenizer produces token id ${maxId} but the model's vocabulary has ${vocabSize} entries; the tokenizer does not belong to this model`);
}

/** Feeds the token ids of `pairs` to a hash pair by pair (one JSON string of a whole split can pass V8's string limit). */
export function hashPairs(h: Hash, pairs: readonly TokenizedPair[]): void {
  const lens = new Int32Array(3);
  for (const p of pairs) {
    lens[0] = p.promptIds.length;
    lens[1] = p.chosenIds.length;
    lens[2] = p.rejectedIds.length;
    h.update(new Uint8Array(lens.buffer));
    for (const ids of [p.promptIds, p.chosenIds, p.rejectedIds]) h.update(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
  }
}

/** The order of pairs in `epoch`: a seeded permutation (reproducible, so resuming skips exactly). */
export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  return new Rng(seed * 1000003 + epoch).permutation(n);
}

/**
 * Batch `batchIndex` of a split taken in `order`. Its `indices` are the pairs' positions in the
 * split (what the precomputed reference log-probs are stored by), not their data-set rows: the two
 * differ once a row is dropped or skipped. Every pass that makes or reads that cache batches here.
 */
export function batchOf(pairs: readonly TokenizedPair[], opts: CollateOptions, order: Int32Array, batchIndex: number, batchSize: number): CollatedBatch {
  const idx = Array.from(order.subarray(batchIndex * batchSize, (batchIndex + 1) * batchSize));
  return { ...collate(idx.map((i) => pairs[i]), opts), indices: idx };
}
