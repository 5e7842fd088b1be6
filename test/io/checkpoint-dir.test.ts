import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyTokenizerFiles, saveModelDir, writeDirAtomically, writeFileAtomic } from '../../src/io/checkpoint-dir.js';
import { openCheckpointWeights } from '../../src/io/checkpoint-files.js';
import { readModelConfig } from '../../src/io/config.js';
import { SafetensorsFile, type TensorToWrite } from '../../src/io/safetensors.js';
import { tempDir } from './helpers.js';

const root = tempDir();
const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'models');

test('copyTokenizerFiles copies what exists', () => {
  const src = join(root, 'src-tok');
  const dst = join(root, 'dst-tok');
  mkdirSync(src);
  mkdirSync(dst);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'generation_config.json', 'model.safetensors']) writeFileSync(join(src, f), f);
  assert.deepEqual(copyTokenizerFiles(src, dst), ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'generation_config.json']);
  assert.equal(readFileSync(join(dst, 'chat_template.jinja'), 'utf8'), 'chat_template.jinja');
  assert.ok(!existsSync(join(dst, 'model.safetensors')));
  assert.deepEqual(copyTokenizerFiles(dst, dst), [], 'copying onto itself is a no-op, not a truncation');
  assert.equal(readFileSync(join(dst, 'tokenizer.json'), 'utf8'), 'tokenizer.json');
});

test('saveModelDir: config with dtype, bf16 weights, tokenizer files; loads back (llama fixture)', { skip: !existsSync(join(FIXTURES, 'llama')) }, () => {
  const srcDir = join(FIXTURES, 'llama');
  const cfg = readModelConfig(srcDir);
  const w = openCheckpointWeights(srcDir);
  const weights = w.entries.map(([n, info, load]) => [n, { shape: info.shape, data: load() }] as [string, TensorToWrite]);
  w.close();
  const out = join(root, 'saved-bf16');
  const saved = saveModelDir(out, { config: cfg.raw, floatPaths: cfg.floatPaths, weights, dtype: 'BF16', sourceDir: srcDir });
  assert.deepEqual(saved.files, ['model.safetensors']);
  assert.ok(saved.copied.includes('tokenizer.json') && saved.copied.includes('chat_template.jinja'));
  // Same bytes as transformers' model.to(torch.bfloat16).save_pretrained() (the llama-bf16 fixture), config included.
  assert.ok(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(FIXTURES, 'llama-bf16', 'model.safetensors'))), 'bf16 weights match transformers byte for byte');
  assert.equal(readFileSync(join(out, 'config.json'), 'utf8'), readFileSync(join(FIXTURES, 'llama-bf16', 'config.json'), 'utf8'));
  const back = readModelConfig(out);
  assert.equal(back.raw.dtype ?? back.raw.torch_dtype, 'bfloat16');
  // Sharded F32 save reads back to the same values.
  const out2 = join(root, 'saved-sharded');
  const s2 = saveModelDir(out2, { config: cfg.raw, weights, maxShardSize: '40KB' });
  assert.equal(s2.index, 'model.safetensors.index.json');
  const r = openCheckpointWeights(out2);
  try {
    for (const [n, t] of weights) assert.deepEqual(r.read(n), t.data);
  } finally {
    r.close();
  }
});

test('writeDirAtomically: all or nothing', () => {
  const d = join(root, 'checkpoint-1');
  writeDirAtomically(d, (tmp) => writeFileSync(join(tmp, 'a.txt'), 'one'));
  assert.equal(readFileSync(join(d, 'a.txt'), 'utf8'), 'one');
  // A failing fill leaves the old directory untouched and no temp directory behind.
  assert.throws(() => writeDirAtomically(d, (tmp) => {
    writeFileSync(join(tmp, 'a.txt'), 'half');
    throw new Error('disk full');
  }), /disk full/);
  assert.equal(readFileSync(join(d, 'a.txt'), 'utf8'), 'one');
  // A successful one replaces it completely.
  writeDirAtomically(d, (tmp) => {
    writeFileSync(join(tmp, 'b.txt'), 'two');
    const f = join(tmp, 'x.safetensors');
    saveModelDir(tmp, { config: { model_type: 'llama' }, weights: [['w', { shape: [1], data: Float32Array.of(1) }]] });
    assert.ok(!existsSync(f));
  });
  assert.deepEqual(readdirSync(d).sort(), ['b.txt', 'config.json', 'model.safetensors']);
  assert.deepEqual(readdirSync(root).filter((f) => f.includes('.tmp-') || f.includes('.old-')), []);
  const sf = new SafetensorsFile(join(d, 'model.safetensors'));
  assert.deepEqual(sf.metadata, { format: 'pt' });
  sf.close();
});

test('writeFileAtomic replaces a file and reports unwritable places in one line', () => {
  const p = join(root, 'f.json');
  writeFileAtomic(p, 'a');
  writeFileAtomic(p, 'b');
  assert.equal(readFileSync(p, 'utf8'), 'b');
  assert.throws(() => writeFileAtomic(join(root, 'no', 'such', 'f.json'), 'x'), /cannot write .*f\.json \(ENOENT\); check that its directory exists and is writable/);
});
