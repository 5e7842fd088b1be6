/** Loaders (json list / dict of lists, jsonl, parquet, dataset dirs) and row validation messages. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dataset } from '../../src/data/dataset.js';
import { detectFormat, invalidDataError, validateRows } from '../../src/data/validate.js';
import { extractPrompt } from '../../src/data/prepare.js';

const tmp = mkdtempSync(join(tmpdir(), 'dpo-data-'));

test('json dict of lists (the seed example), json list, jsonl and parquet give the same rows', async () => {
  const seed = await Dataset.fromFile('examples/dpo_example.json');
  assert.equal(seed.length, 7);
  assert.deepEqual(seed.rows[6], { prompt: 'Which is the best programming language?', chosen: 'Java', rejected: 'C++' });
  const list = join(tmp, 'list.json');
  writeFileSync(list, JSON.stringify(seed.rows));
  assert.deepEqual((await Dataset.fromFile(list)).rows, seed.rows);
  const jl = join(tmp, 'd.jsonl');
  writeFileSync(jl, seed.rows.map((r) => JSON.stringify({ ...r, extra: 1 })).join('\n') + '\n');
  assert.deepEqual((await Dataset.fromFile(jl)).rows.map(({ extra: _e, ...r }) => r), seed.rows);
  assert.deepEqual((await Dataset.fromFile('test/fixtures/data/seed.parquet')).rows, seed.rows);
  const conv = await Dataset.fromFile('test/fixtures/data/conversational.parquet');
  assert.deepEqual(conv.rows[0].chosen, [{ role: 'assistant', content: 'hi nice to meet you' }]);
});

test('dataset directories pick the split and list the others when missing', async () => {
  assert.equal((await Dataset.fromFile('test/fixtures/data/hfdir')).length, 7);
  assert.equal((await Dataset.fromFile('test/fixtures/data/hfdir', { split: 'test' })).length, 2);
  await assert.rejects(Dataset.fromFile('test/fixtures/data/hfdir', { split: 'validation' }), /no "validation" split; found splits test, train/);
});

test('bad files give one clear line', async () => {
  const bad = join(tmp, 'bad.jsonl');
  writeFileSync(bad, '{"prompt": "a", "chosen": "b", "rejected": "c"}\n{oops\n');
  await assert.rejects(Dataset.fromFile(bad), /bad\.jsonl:2: line is not valid JSON/);
  const uneven = join(tmp, 'uneven.json');
  writeFileSync(uneven, JSON.stringify({ prompt: ['a', 'b'], chosen: ['c'], rejected: ['d', 'e'] }));
  await assert.rejects(Dataset.fromFile(uneven), /column "chosen" has 1 values but "prompt" has 2/);
  await assert.rejects(Dataset.fromFile(join(tmp, 'missing.json')), /not found/);
  const csv = join(tmp, 'x.csv');
  writeFileSync(csv, 'a,b');
  await assert.rejects(Dataset.fromFile(csv), /unsupported data file type ".csv"/);
});

test('validation reports every bad row with its number and field', () => {
  const rows = [
    { prompt: 'ok', chosen: 'fine', rejected: 'bad' },
    { prompt: 'x', chosen: '', rejected: 'r' },
    { prompt: 'y', rejected: 'r' },
    { prompt: 'z', chosen: 3, rejected: 'r' },
    { prompt: 'w', chosen: [{ role: 'assistant', content: 'c' }], rejected: 'r' },
  ];
  const errs = validateRows(rows);
  assert.deepEqual(errs.map((e) => [e.row, e.field]), [[1, 'chosen'], [2, 'chosen'], [3, 'chosen'], [4, 'chosen']]);
  const msg = invalidDataError('data.json', errs, rows.length).message;
  assert.match(msg, /^data\.json: 4 of 5 rows are invalid; fix them or pass --skip_invalid_rows/);
  assert.match(msg, /row 1, chosen: empty completion/);
  assert.match(msg, /row 2, chosen: missing/);
  assert.match(msg, /row 4, chosen: expected a string \(standard format\), got a list; mixed standard and conversational rows/);
  const conv = [
    { prompt: [{ role: 'user', content: 'q' }], chosen: [{ role: 'user', content: 'a' }], rejected: [{ role: 'assistant', content: 'b' }] },
    { prompt: [{ role: 'user', content: 'q' }], chosen: [{ role: 'bot', content: 'a' }], rejected: [{ role: 'assistant' }] },
  ];
  const ce = validateRows(conv, detectFormat(conv));
  assert.deepEqual(ce.map((e) => `${e.row}:${e.field}`), ['0:chosen', '1:chosen[0].role', '1:rejected[0].content']);
  assert.match(ce[0].reason, /role mismatch/);
});

test('extract_prompt mirrors TRL, including its quirks', () => {
  assert.deepEqual(extractPrompt('What color is the sky? It is blue.', 'What color is the sky? It is green.'), { prompt: 'What color is the sky? It is', chosen: ' blue.', rejected: ' green.' });
  const c = [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }];
  const r = [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'b' }];
  assert.deepEqual(extractPrompt(c, r), { prompt: [c[0]], chosen: [c[1]], rejected: [r[1]] });
});

test('seeded shuffle is reproducible and a permutation', async () => {
  const ds = await Dataset.fromFile('examples/dpo_example.json');
  const a = ds.shuffle(3).rows, b = ds.shuffle(3).rows, c = ds.shuffle(4).rows;
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.equal(new Set(a).size, 7);
});

test('an implicit string prompt that splits a special token is warned about', async () => {
  const { HfTokenizer } = await import('../../src/tokenizer/tokenizer.js');
  const { prepareRows } = await import('../../src/data/prepare.js');
  const tok = HfTokenizer.fromDir('test/fixtures/tokenizers/tiny-bpe');
  const warnings: string[] = [];
  prepareRows([{ chosen: 'hi<|im_end|> yes', rejected: 'hi<|im_start|> no' }], tok, { maxLength: null, truncationMode: 'keep_start', warn: (m) => warnings.push(m) }, false);
  assert.ok(warnings.some((w) => /row 0: the implicit prompt ends inside the special token <\|im_end\|>/.test(w)), warnings.join('\n'));
});

test('gzipped .jsonl / .json (Anthropic/hh-rlhf\'s */train.jsonl.gz) read as the datasets library reads them; bad ones give one line', async () => {
  // test/fixtures/recipe-cache (tools/fixtures/make_recipe_cache.py): the rows load_dataset read from the snapshot.
  const fx = JSON.parse(readFileSync('test/fixtures/recipe-cache/expected.json', 'utf8'));
  const snap = `test/fixtures/recipe-cache/hub/datasets--anthropic--hh-rlhf/snapshots/${fx.commits['anthropic/hh-rlhf']}`;
  for (const split of ['train', 'test']) {
    const ds = await Dataset.fromFile(snap, { split });
    assert.equal(ds.length, fx.loads['anthropic/hh-rlhf'][split].rows);
    assert.deepEqual(ds.rows[0], fx.loads['anthropic/hh-rlhf'][split].first);
  }
  const seed = await Dataset.fromFile('examples/dpo_example.json');
  const jgz = join(tmp, 'list.json.gz');
  writeFileSync(jgz, gzipSync(JSON.stringify(seed.rows)));
  assert.deepEqual((await Dataset.fromFile(jgz)).rows, seed.rows);
  const corrupt = join(tmp, 'corrupt.jsonl.gz');
  writeFileSync(corrupt, 'not gzip');
  await assert.rejects(Dataset.fromFile(corrupt), /corrupt\.jsonl\.gz: cannot decompress gzip \(/);
  const csv = join(tmp, 'd.csv.gz');
  writeFileSync(csv, gzipSync('prompt,chosen,rejected\n'));
  await assert.rejects(Dataset.fromFile(csv), /d\.csv\.gz: unsupported data file type "\.csv\.gz"; gzip is read for \.json\.gz and \.jsonl\.gz only/);
});
