import test from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../../src/errors.js';
import { openCheckpointWeights } from '../../src/io/checkpoint-files.js';
import { writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { parseSize, planShards, readShardIndex, shardFileName, writeWeights } from '../../src/io/sharded.js';
import { tempDir } from './helpers.js';

const root = tempDir();
const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'models');

function tensors(n: number, size: number): [string, TensorToWrite][] {
  return Array.from({ length: n }, (_, i) => [`layer.${i}.weight`, { shape: [size], data: new Float32Array(size).fill(i) }]);
}

test('shard sizes and names follow huggingface_hub', () => {
  assert.equal(parseSize('5GB'), 5e9);
  assert.equal(parseSize('40KB'), 40_000);
  assert.equal(parseSize('2GiB'), 2 ** 31);
  assert.equal(parseSize(1234), 1234);
  assert.throws(() => parseSize('5 parsecs'), /cannot read "5 parsecs" as a size/);
  assert.throws(() => parseSize(0), DpoError);
  assert.equal(shardFileName('model.safetensors', 1, 2), 'model-00001-of-00002.safetensors');
  // [6, 6, 2, 6, 2, 2] with limit 10 -> [6], [6+2], [6+2+2] (greedy, in order); 12 alone.
  const items = [6, 6, 2, 6, 2, 2, 12].map((bytes, i) => ({ name: `t${i}`, bytes }));
  assert.deepEqual(planShards(items, 10), [['t0'], ['t1', 't2'], ['t6'], ['t3', 't4', 't5']]);
});

test('sharded write + read round trip; switching layouts removes stale files', () => {
  const dir = join(root, 'rt');
  mkdirSync(dir);
  const ts = tensors(5, 100); // 400 bytes each
  const w = writeWeights(dir, ts, { maxShardSize: 1000 });
  assert.deepEqual(w.files, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
  assert.equal(w.index, 'model.safetensors.index.json');
  const index = JSON.parse(readFileSync(join(dir, w.index!), 'utf8'));
  assert.deepEqual(index.metadata, { total_parameters: 500, total_size: 2000 });
  assert.equal(index.weight_map['layer.4.weight'], 'model-00003-of-00003.safetensors');
  const cw = openCheckpointWeights(dir);
  try {
    assert.equal(cw.sharded, true);
    assert.equal(cw.files.length, 3);
    assert.deepEqual(cw.entries.map(([n]) => n).sort(), ts.map(([n]) => n).sort());
    for (const [name, , load] of cw.entries) assert.equal(load()[99], Number(name.split('.')[1]));
    assert.equal(cw.read('layer.2.weight')[0], 2);
    assert.throws(() => cw.read('nope'), /has no tensor named "nope"/);
  } finally {
    cw.close();
  }
  // Fewer shards: the third shard file is removed; one shard: plain model.safetensors and no index.
  writeWeights(dir, ts.slice(0, 4), { maxShardSize: 1000 });
  assert.deepEqual(readdirSync(dir).sort(), ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
  writeWeights(dir, ts, { maxShardSize: '1GB' });
  assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  const cw2 = openCheckpointWeights(dir);
  assert.equal(cw2.sharded, false);
  assert.equal(cw2.entries.length, 5);
  cw2.close();
  writeWeights(dir, ts, { maxShardSize: 1000 });
  assert.ok(!existsSync(join(dir, 'model.safetensors')), 'a stale single file would shadow the shards');
});

test('reproduces transformers save_pretrained(max_shard_size="40KB") byte for byte (llama-sharded fixture)', { skip: !existsSync(join(FIXTURES, 'llama-sharded')) }, () => {
  const src = openCheckpointWeights(join(FIXTURES, 'llama'));
  const dir = join(root, 'llama-sharded');
  mkdirSync(dir);
  try {
    // transformers 5 iterates the state dict in sorted order when sharding.
    const ts = src.entries.map(([name, info, load]) => [name, { shape: info.shape, data: load() }] as [string, TensorToWrite]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const w = writeWeights(dir, ts, { maxShardSize: '40KB' });
    for (const f of [...w.files, w.index!]) {
      assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(FIXTURES, 'llama-sharded', f))), `${f} differs from transformers' file`);
    }
  } finally {
    src.close();
  }
});

test('bad index files and shards: one-line DpoErrors', async (t) => {
  const good = join(root, 'good');
  mkdirSync(good);
  writeWeights(good, tensors(3, 100), { maxShardSize: 1000 }); // shards [0, 1], [2]
  const indexText = readFileSync(join(good, 'model.safetensors.index.json'), 'utf8');
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['index not JSON', (d) => writeFileSync(join(d, 'model.safetensors.index.json'), '{"weight_map": '), /model\.safetensors\.index\.json: not valid JSON/],
    ['no weight_map', (d) => writeFileSync(join(d, 'model.safetensors.index.json'), '{"metadata": {}}'), /"weight_map" must be an object mapping tensor names to shard files/],
    ['weight_map an array', (d) => writeFileSync(join(d, 'model.safetensors.index.json'), '{"weight_map": []}'), /"weight_map" must be an object/],
    ['empty weight_map', (d) => writeFileSync(join(d, 'model.safetensors.index.json'), '{"weight_map": {}}'), /"weight_map" lists no tensors/],
    ['shard name not a string', (d) => writeFileSync(join(d, 'model.safetensors.index.json'), '{"weight_map": {"a": 3}}'), /weight_map\["a"\] must be a file name, got 3/],
    ['shard path escapes the directory', (d) => writeFileSync(join(d, 'model.safetensors.index.json'), '{"weight_map": {"a": "../other/model.safetensors"}}'), /is not a plain file name in this directory/],
    ['pytorch .bin shard', (d) => writeFileSync(join(d, 'model.safetensors.index.json'), '{"weight_map": {"a": "pytorch_model-00001-of-00002.bin"}}'), /is not a \.safetensors file; convert the checkpoint/],
    ['tensor mapped twice', (d) => writeFileSync(join(d, 'model.safetensors.index.json'), indexText.replace('"weight_map": {', '"weight_map": {\n    "layer.0.weight": "model-00002-of-00002.safetensors",')), /duplicate key "layer\.0\.weight"/],
    ['missing shard', (d) => writeFileSync(join(d, 'model.safetensors.index.json'), indexText.replace(/model-00002-of-00002/g, 'model-00002-of-00009')), /shard "model-00002-of-00009\.safetensors" is listed but missing from .* \(incomplete download\?\)/],
    ['tensor listed but absent from its shard', (d) => writeFileSync(join(d, 'model.safetensors.index.json'), indexText.replace('"layer.1.weight"', '"layer.7.weight"')), /tensor "layer\.7\.weight" is mapped to model-00001-of-00002\.safetensors, but that shard does not contain it/],
    ['tensor in two shards', (d) => writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), { 'layer.2.weight': { shape: [1], data: Float32Array.of(1) }, 'layer.0.weight': { shape: [1], data: Float32Array.of(1) } }), /tensor "layer\.0\.weight" appears in both .*model-00001-of-00002\.safetensors and .*model-00002-of-00002\.safetensors/],
    ['corrupt shard', (d) => writeFileSync(join(d, 'model-00002-of-00002.safetensors'), Buffer.alloc(5)), /model-00002-of-00002\.safetensors: not a valid safetensors file: the file is 5 bytes/],
    ['no weights at all', (d) => writeSafetensors(join(d, 'weights.safetensors'), {}), /no model\.safetensors or model\.safetensors\.index\.json \(found weights\.safetensors; rename a full-model file to model\.safetensors\)/],
  ];
  let k = 0;
  for (const [name, breakIt, pattern] of cases) {
    await t.test(name, () => {
      const d = join(root, `bad-${k++}`);
      mkdirSync(d);
      for (const f of readdirSync(good)) if (name !== 'no weights at all') copyFileSync(join(good, f), join(d, f));
      breakIt(d);
      assert.throws(() => openCheckpointWeights(d).close(), (e: unknown) => e instanceof DpoError && pattern.test(e.message) && !e.message.includes('\n'));
    });
  }
  assert.throws(() => readShardIndex(join(root, 'absent.json')), /cannot read the shard index \(ENOENT\)/);
});

test('missing weights: helpful messages for adapters and .bin checkpoints', () => {
  const a = join(root, 'adapter');
  mkdirSync(a);
  writeFileSync(join(a, 'adapter_config.json'), '{}');
  assert.throws(() => openCheckpointWeights(a), /holds a PEFT adapter \(adapter_config\.json\), not full weights/);
  const b = join(root, 'bin');
  mkdirSync(b);
  writeFileSync(join(b, 'pytorch_model.bin'), '');
  assert.throws(() => openCheckpointWeights(b), /only PyTorch \.bin weights found; convert them to safetensors/);
  assert.throws(() => openCheckpointWeights(join(root, 'no-such-dir')), /directory not found/);
});
