/**
 * Data sets by Hub id from a local HF cache (test/fixtures/hub-cache, from
 * tools/fixtures/make_hub_datasets.py): every split of every snapshot / revision / configuration
 * equals the rows `datasets.load_dataset` read from the same tree offline; TRL's get_dataset
 * mixtures give TRL's rows; missing ids, revisions, configurations and splits are one-line errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readSplit, resolveDataset } from '../../src/data/hub-dataset.js';
import { loadMixture, parseMixture, type MixtureEntry } from '../../src/data/mixture.js';
import { globToRegExp } from '../../src/data/data-files.js';
import { readArrowRows } from '../../src/data/arrow-ipc.js';
import { scriptDatasets } from '../../src/data/script-data.js';

const FIX = resolve('test/fixtures/hub-cache');
interface Expected {
  versions: Record<string, string>;
  loads: { repo_id: string; revision: string; config: string | null; splits: Record<string, Record<string, unknown>[]> }[];
  errors: Record<string, string>;
  mixtures: { config: { datasets: MixtureEntry[] }; train: Record<string, unknown>[] }[];
}
const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8')) as Expected;
const home = mkdtempSync(join(tmpdir(), 'dpo-hubds-home-'));
// HOME points at an empty folder so the real ~/.cache is never read.
const ENV = { HOME: home, HF_HOME: FIX };

test('the fixture was read by datasets 5 offline', () => {
  assert.match(expected.versions.datasets, /^5\./);
  assert.equal(expected.loads.length, 6);
  // datasets itself, offline, cannot open a Hub id from the hub cache (only its processed Arrow cache): we can.
  assert.match(expected.errors.hub_id_offline, /ConnectionError/);
});

for (const l of expected.loads) {
  test(`${l.repo_id}@${l.revision}${l.config ? ` (${l.config})` : ''}: the splits and rows datasets.load_dataset gives`, async () => {
    const ds = resolveDataset({ path: l.repo_id, name: l.config, revision: l.revision }, ENV);
    assert.deepEqual([...ds.splits.keys()].sort(), Object.keys(l.splits).sort());
    for (const [split, rows] of Object.entries(l.splits)) assert.deepEqual(await readSplit(ds, split), rows, split);
  });
}

test('cache roots as huggingface_hub: HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub', async () => {
  const rows = expected.loads[0].splits.train;
  assert.deepEqual(await readSplit(resolveDataset({ path: 'trl-lib/tiny-prefs' }, { HOME: home, HF_HUB_CACHE: join(FIX, 'hub') }), 'train'), rows);
  const h = mkdtempSync(join(tmpdir(), 'dpo-hubds-'));
  mkdirSync(join(h, '.cache', 'huggingface'), { recursive: true });
  spawnSync('cp', ['-a', join(FIX, 'hub'), join(h, '.cache', 'huggingface', 'hub')]);
  assert.deepEqual(await readSplit(resolveDataset({ path: 'trl-lib/tiny-prefs' }, { HOME: h }), 'train'), rows);
  // A commit hash names its snapshot directly.
  const c2 = resolveDataset({ path: 'trl-lib/tiny-prefs', revision: '2222222222222222222222222222222222222222' }, ENV);
  assert.deepEqual(await readSplit(c2, 'train'), expected.loads[1].splits.train);
});

test('a missing id says where it looked and how to fetch it; the processed Arrow cache is named', () => {
  assert.throws(() => resolveDataset({ path: 'trl-lib/ultrafeedback_binarized' }, ENV),
    /data set "trl-lib\/ultrafeedback_binarized" not found; looked in .*hub-cache\/hub\/datasets--trl-lib--ultrafeedback_binarized.*Nothing is downloaded: fetch it with `huggingface-cli download --repo-type dataset trl-lib\/ultrafeedback_binarized`/);
  const dc = mkdtempSync(join(tmpdir(), 'dpo-dscache-'));
  mkdirSync(join(dc, 'trl-lib___ultra_feedback', 'default', '0.0.0', 'abc'), { recursive: true });
  assert.throws(() => resolveDataset({ path: 'trl-lib/UltraFeedback' }, { ...ENV, HF_DATASETS_CACHE: dc }), /looked in .*datasets--trl-lib--UltraFeedback, .*trl-lib___ultra_feedback/);
  assert.throws(() => resolveDataset({ path: 'trl-lib/tiny-prefs', revision: 'v9' }, ENV), /datasets--trl-lib--tiny-prefs has no snapshot for revision "v9".*--revision v9/);
  assert.throws(() => resolveDataset({ path: 'test/fixtures/data/hfdir', revision: 'v1' }, ENV), /dataset_revision v1: test\/fixtures\/data\/hfdir is a local path, which has no revisions/);
  assert.throws(() => resolveDataset({ path: 'nope.jsonl' }, ENV), /nope\.jsonl: data file or directory not found/);
});

test('the datasets library\'s processed Arrow cache (HF_HOME/datasets/org___arrow_only): the rows load_dataset read from it offline', async () => {
  const a = (expected as unknown as { arrow_cache: { repo_id: string; splits: Record<string, Record<string, unknown>[]>; files: string[] } }).arrow_cache;
  assert.ok(a.files.some((f) => f.endsWith('arrow_only-train.arrow')));
  const ds = resolveDataset({ path: a.repo_id }, ENV);
  assert.match(ds.processed!, /org___arrow_only\/default\/0\.0\.0\/0123456789abcdef$/);
  assert.deepEqual([...ds.splits.keys()].sort(), Object.keys(a.splits).sort());
  for (const [split, rows] of Object.entries(a.splits)) assert.deepEqual(await readSplit(ds, split), rows, split);
  assert.throws(() => resolveDataset({ path: a.repo_id, name: 'fr' }, ENV), /the datasets cache .*org___arrow_only has no configuration "fr"; it has default/);
});

test('Arrow IPC reader: every type pyarrow wrote (nulls, several batches, the file format) as to_pylist gives; others refused', () => {
  const rows = (expected as unknown as { typed_arrow_rows: Record<string, unknown>[] }).typed_arrow_rows;
  assert.deepEqual(readArrowRows(readFileSync(join(FIX, 'typed.arrow')), 'typed.arrow'), rows);
  assert.deepEqual(readArrowRows(readFileSync(join(FIX, 'typed-file.arrow')), 'typed-file.arrow'), rows);
  assert.throws(() => readArrowRows(readFileSync(join(FIX, 'timestamp.arrow')), 'timestamp.arrow'), /^DpoError: timestamp\.arrow: column t has Arrow type timestamp, which is not read here; export the data set to parquet or jsonl$/);
  assert.throws(() => readArrowRows(new Uint8Array(16).fill(7), 'junk.arrow'), /junk\.arrow: not an Arrow IPC stream/);
});

test('configurations and splits: unknown ones are one-line errors listing what there is', async () => {
  assert.match(expected.errors.unknown_config_yaml, /'nope' not found. Available: \['default', 'fr', 'all_en'\]/);
  assert.throws(() => resolveDataset({ path: 'org/with-configs', name: 'nope' }, ENV), /no configuration "nope"; its README declares default, fr, all_en \(choose one with --dataset_config\)/);
  assert.match(expected.errors.unknown_config_no_yaml, /Available: \['default'\]/);
  assert.throws(() => resolveDataset({ path: 'trl-lib/tiny-prefs', name: 'nope' }, ENV), /no configuration "nope" \(its README declares no configs; the only one is "default"\)/);
  resolveDataset({ path: 'trl-lib/tiny-prefs', name: 'default' }, ENV);
  await assert.rejects(readSplit(resolveDataset({ path: 'org/with-configs', name: 'fr' }, ENV), 'test', '--dataset_test_split'), /no "test" split in configuration fr; found splits train, validation \(choose one with --dataset_test_split\)/);
});

test('globs as fsspec: ** spans folders, * and [..] stay within a name', () => {
  assert.ok(globToRegExp('**/train[-._ 0-9]*').test('train.jsonl'));
  assert.ok(globToRegExp('**/train[-._ 0-9]*').test('a/b/train-0.parquet'));
  assert.ok(!globToRegExp('**/train[-._ 0-9]*').test('trainx.jsonl'));
  assert.ok(globToRegExp('data/**').test('data/x/y.json'));
  assert.ok(!globToRegExp('en/*.jsonl').test('en/x/y.jsonl'));
});

const abs = (c: { datasets: MixtureEntry[] }) => ({ datasets: c.datasets.map((d) => ({ ...d, path: join(FIX, d.path) })) });

for (const [i, m] of expected.mixtures.entries()) {
  test(`TRL's get_dataset mixture ${i + 1} (split slices, columns, data_files, fraction): TRL's rows`, async () => {
    const got = await loadMixture({ datasets: parseMixture(abs(m.config).datasets, 'datasets') }, 42, ENV);
    assert.deepEqual(got.train.rows, m.train);
  });
}

test('mixture: test_split_size splits off a seeded test set; bad entries are one-line errors', async () => {
  const entries = parseMixture(abs(expected.mixtures[0].config).datasets, 'datasets');
  const s = await loadMixture({ datasets: entries, test_split_size: 0.25 }, 42, ENV);
  assert.equal(s.test.length, 2);
  assert.equal(s.train.length + s.test.length, expected.mixtures[0].train.length);
  assert.deepEqual((await loadMixture({ datasets: entries, test_split_size: 0.25 }, 42, ENV)).test.rows, s.test.rows);
  assert.throws(() => parseMixture([{ path: 'x', subset: 'a' }], 'datasets'), /datasets\[0\] has unknown key subset; TRL's DatasetConfig takes path, name, data_dir/);
  assert.throws(() => parseMixture({ path: 'x' }, 'datasets'), /datasets must be a list/);
  assert.throws(() => parseMixture([{ name: 'x' }], 'datasets'), /datasets\[0\] needs a path/);
  await assert.rejects(loadMixture({ datasets: [{ path: 'trl-lib/tiny-prefs', fraction: 1 }, { path: 'org/with-configs' }] }, 42, ENV), /fraction must be set for either all datasets in the mixture or none of them/);
  await assert.rejects(loadMixture({ datasets: [{ path: 'trl-lib/tiny-prefs', split: 'train[a:]' }] }, 42, ENV), /split bound "a" is not a row number or a percent/);
  await assert.rejects(loadMixture({ datasets: [{ path: 'trl-lib/tiny-prefs' }], test_split_size: 7 }, 42, ENV), /test_split_size 7 must be a fraction in \(0, 1\) or a row count smaller than the 5 rows/);
  await assert.rejects(loadMixture({ datasets: [{ path: 'trl-lib/tiny-prefs', columns: ['prompt', 'answer'] }] }, 42, ENV), /columns answer not in the data/);
});

test('TRL\'s script: datasets wins over dataset_name (noted); the mixture has only train unless test_split_size', async () => {
  const base = { dataset_train_split: 'train', dataset_test_split: 'test' };
  const d = await scriptDatasets({ ...base, dataset_name: 'x', datasets: [{ path: 'trl-lib/tiny-prefs' }] }, false, 42, ENV);
  assert.equal(d.train.length, 5);
  assert.match(d.notes[0], /the datasets mixture is used and dataset_name x is ignored/);
  await assert.rejects(scriptDatasets({ ...base, datasets: [{ path: 'trl-lib/tiny-prefs' }] }, true, 42, ENV), /the datasets mixture has no "test" split \(it has train\); set test_split_size/);
  await assert.rejects(scriptDatasets({ ...base, dataset_name: 'trl-lib/tiny-prefs', test_split_size: 0.1 }, true, 42, ENV), /test_split_size splits a datasets: mixture/);
  await assert.rejects(scriptDatasets({ ...base }, false, 42, ENV), /--dataset_name is required/);
  const h = await scriptDatasets({ ...base, dataset_name: 'trl-lib/tiny-prefs', dataset_revision: 'v1' }, true, 42, ENV);
  assert.equal(h.train.length, 4);
  assert.equal(h.eval!.length, 1);
  assert.match(h.label, /trl-lib\/tiny-prefs@v1 from the HF cache \(snapshot 222222222222\)/);
});

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
test('dpo train --dataset_name <Hub id> --dataset_config, and a YAML datasets: mixture, train from the cache', () => {
  const out = mkdtempSync(join(tmpdir(), 'dpo-hubds-run-'));
  const run = (...a: string[]) => spawnSync(process.execPath, [CLI, 'train', '--model_name_or_path', 'test/fixtures/models/llama', '--output_dir', out, '--max_steps', '1', '--no_gradient_checkpointing', '--no_bf16', ...a],
    { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...ENV } });
  const r = run('--dataset_name', 'org/with-configs', '--dataset_config', 'fr', '--dataset_test_split', 'validation', '--eval_strategy', 'steps', '--eval_steps', '1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /data org\/with-configs \(fr\) from the HF cache \(snapshot 333333333333\): 2 training pairs, 1 eval pairs/);
  const yml = join(out, 'mix.yaml');
  writeFileSync(yml, `datasets:\n  - path: trl-lib/tiny-prefs\n    split: train[:2]\n  - path: org/with-configs\n    columns: [prompt, chosen, rejected]\ntest_split_size: 0.2\n`);
  const m = run('--config', yml, '--eval_strategy', 'steps');
  assert.equal(m.status, 0, m.stderr);
  assert.match(m.stdout, /data mixture of trl-lib\/tiny-prefs, org\/with-configs: 4 training pairs, 1 eval pairs/);
  const bad = run('--dataset_name', 'trl-lib/ultrafeedback_binarized');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^dpo: dpo train: data set "trl-lib\/ultrafeedback_binarized" not found; looked in .*huggingface-cli download --repo-type dataset trl-lib\/ultrafeedback_binarized/m);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
});
