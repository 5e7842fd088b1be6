/** Reading the tiny checkpoints transformers wrote (tools/fixtures/make_models.py). */
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpointWeights } from '../../src/io/checkpoint-files.js';
import { readModelConfig } from '../../src/io/config.js';
import { archFromConfig } from '../../src/models/registry.js';
import { encodeHalf } from '../../src/io/half.js';

const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'models');
const have = (name: string): boolean => existsSync(join(FIXTURES, name, 'config.json'));

test('every fixture checkpoint opens; shapes agree with its config', { skip: !existsSync(FIXTURES) }, () => {
  for (const name of readdirSync(FIXTURES).filter(have)) {
    const cfg = archFromConfig(readModelConfig(join(FIXTURES, name)).raw);
    const w = openCheckpointWeights(join(FIXTURES, name));
    try {
      const embed = cfg.modelType === 'gpt2' ? 'transformer.wte.weight' : `${cfg.weightPrefix ?? 'model.'}embed_tokens.weight`;
      assert.deepEqual(w.info(embed).shape, [cfg.vocabSize, cfg.hiddenSize], `${name}: ${embed}`);
      assert.equal(w.has('lm_head.weight'), !cfg.tieEmbeddings, `${name}: lm_head stored exactly when not tied`);
      for (const [n, info, load] of w.entries) {
        const x = load();
        assert.equal(x.length, info.shape.reduce((a, d) => a * d, 1), n);
        assert.ok(x.every(Number.isFinite), `${name}/${n} finite`);
      }
    } finally {
      w.close();
    }
  }
});

test('llama-sharded holds exactly the llama weights; llama-bf16 holds them rounded like torch', { skip: !have('llama') || !have('llama-sharded') || !have('llama-bf16') }, () => {
  const ref = openCheckpointWeights(join(FIXTURES, 'llama'));
  const sh = openCheckpointWeights(join(FIXTURES, 'llama-sharded'));
  const bf = openCheckpointWeights(join(FIXTURES, 'llama-bf16'));
  try {
    assert.equal(sh.sharded, true);
    assert.ok(sh.files.length > 1);
    assert.deepEqual(sh.entries.map(([n]) => n).sort(), ref.entries.map(([n]) => n).sort());
    let count = 0;
    for (const [n, info, load] of ref.entries) {
      const x = load();
      assert.deepEqual(sh.read(n), x, `${n} sharded`);
      assert.equal(bf.info(n).dtype, 'BF16');
      assert.deepEqual(bf.info(n).shape, info.shape);
      const want = new Uint16Array(x.length);
      encodeHalf('BF16', x, 0, want);
      assert.deepEqual(bf.readRawBf16(n), want, `${n}: our bf16 rounding = torch's`);
      const wide = bf.read(n);
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(wide[i] - x[i]) <= Math.abs(x[i]) * 2 ** -8, `${n}[${i}]`);
      count += x.length;
    }
    assert.ok(count > 10_000);
  } finally {
    ref.close();
    sh.close();
    bf.close();
  }
});
