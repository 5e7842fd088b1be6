/** `dpo pairs` end to end: a judge module, the pairs file loads back as TRL data, and `dpo train` trains on it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRows } from '../../src/data/load.js';
import { detectFormat, validateRows } from '../../src/data/validate.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const LLAMA = 'test/fixtures/models/llama';

function dpo(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function setup(judge: string, prompts = ['hello', 'how are you', 'What is your name?', 'Python']): { dir: string; data: string; judge: string; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-pairs-'));
  writeFileSync(join(dir, 'prompts.jsonl'), prompts.map((p) => JSON.stringify({ prompt: p })).join('\n'));
  writeFileSync(join(dir, 'judge.mjs'), judge);
  return { dir, data: join(dir, 'prompts.jsonl'), judge: join(dir, 'judge.mjs'), out: join(dir, 'pairs.jsonl') };
}
const pairsArgs = (s: ReturnType<typeof setup>, ...extra: string[]) => ['pairs', '--model_name_or_path', LLAMA, '--dataset_name', s.data, '--judge', s.judge, '--output_path', s.out, '--max_new_tokens', '8', '--num_generations', '3', '--seed', '1', ...extra];

test('dpo pairs: a reward judge module → TRL pairs that load, validate, repeat with the seed, and train for a step', async () => {
  const s = setup('export default (prompt, completion) => completion.length;\n');
  const r = dpo(...pairsArgs(s));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /of 4 prompts gave a pair; \d+ ties skipped; judge failures: 0/);
  const rows = await loadRows(s.out);
  assert.ok(rows.length >= 3, r.out);
  assert.deepEqual(validateRows(rows), []);
  assert.deepEqual(detectFormat(rows), { conversational: false, explicitPrompt: true });
  for (const row of rows) {
    assert.equal(row.score_chosen, (row.chosen as string).length);
    assert.equal(row.score_rejected, Math.min(...(row.scores as number[])));
  }
  const first = readFileSync(s.out, 'utf8');
  assert.equal(dpo(...pairsArgs(s)).code, 0);
  assert.equal(readFileSync(s.out, 'utf8'), first, 'same seed, same file');
  const train = dpo('train', '--model_name_or_path', LLAMA, '--dataset_name', s.out, '--output_dir', join(s.dir, 'run'), '--max_steps', '1', '--per_device_train_batch_size', '2', '--max_length', '64', '--save_strategy', 'no');
  assert.equal(train.code, 0, train.err);
  assert.ok(existsSync(join(s.dir, 'run', 'model.safetensors')));
});

test('dpo pairs: ties, throws and timeouts are summarised, not fatal; a pairwise module works; .json output', () => {
  const s = setup(`export default {
  async compare(prompt, a, b) {
    if (prompt === 'hello') throw new Error('no opinion');
    if (prompt === 'how are you') return new Promise(() => {});
    if (prompt === 'Python') return -1;
    return a.length >= b.length ? 0 : 1;
  },
};\n`);
  const out = join(s.dir, 'pairs.json');
  const r = dpo(...pairsArgs(s, '--output_path', out, '--judge_timeout', '0.3'));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /1 of 4 prompts gave a pair; 1 ties skipped; judge failures: 2 \(1 errors, 0 non-finite scores, 1 timeouts\)/);
  assert.match(r.out, /row 0: judge threw no opinion/);
  assert.match(r.out, /row 1: judge no answer within 0.3 s/);
  const rows = JSON.parse(readFileSync(out, 'utf8')) as { prompt: string; scores: number[] }[];
  assert.equal(rows.length, 1);
  assert.equal(rows[0].prompt, 'What is your name?');
  assert.equal(rows[0].scores.reduce((a, b) => a + b, 0), 3);
});

test('dpo pairs: a constant judge skips every prompt as a tie and says so (exit 2, nothing to train on)', () => {
  const s = setup('export default () => 0.5;\n');
  const r = dpo(...pairsArgs(s));
  assert.equal(r.code, 2);
  assert.match(r.out, /0 of 4 prompts gave a pair; 4 ties skipped/);
  assert.match(r.err, /no pairs written \(4 ties/);
});

test('dpo pairs: a judge module that fails to load or has the wrong shape is a one-line error', () => {
  const cases: [string, RegExp][] = [
    ['export default 42;\n', /expected `export default \(prompt, completion\) => number`/],
    ['export const score = () => 1;\n', /no default export/],
    ['export default (() => {\n', /the module failed to load/],
    ['throw new Error("bad import");\n', /the module failed to load \(bad import\)/],
  ];
  for (const [src, re] of cases) {
    const s = setup(src);
    const r = dpo(...pairsArgs(s));
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, re);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  }
  const s = setup('export default () => 1;\n');
  assert.match(dpo(...pairsArgs(s, '--judge', join(s.dir, 'nope.mjs'))).err, /nope.mjs: file not found/);
  assert.match(dpo(...pairsArgs(s, '--temperature', '0')).err, /--temperature must be > 0/);
});

test('dpo pairs: conversational prompts from parquet → assistant-message pairs that validate and train', async () => {
  const s = setup('export default async (prompt, completion) => completion.split("e").length;\n');
  const r = dpo(...pairsArgs(s, '--dataset_name', 'test/fixtures/data/conversational.parquet', '--num_generations', '4'));
  assert.equal(r.code, 0, r.err);
  const rows = await loadRows(s.out);
  assert.ok(rows.length >= 4, r.out);
  assert.deepEqual(validateRows(rows), []);
  assert.deepEqual(detectFormat(rows), { conversational: true, explicitPrompt: true });
  for (const row of rows) {
    assert.equal((row.chosen as { role: string }[])[0].role, 'assistant');
    assert.equal(row.score_chosen, (row.chosen as { content: string }[])[0].content.split('e').length);
    assert.equal((row.prompt as { role: string }[])[0].role, 'user');
  }
  const train = dpo('train', '--model_name_or_path', LLAMA, '--dataset_name', s.out, '--output_dir', join(s.dir, 'run'), '--max_steps', '1', '--per_device_train_batch_size', '2', '--max_length', '64', '--save_strategy', 'no');
  assert.equal(train.code, 0, train.err);
});
