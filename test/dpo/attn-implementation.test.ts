/**
 * Gemma 2's attention soft-cap and attn_implementation (test/fixtures/softcap/gemma2-attn-implementation.json,
 * tools/fixtures/make_softcap.py): transformers 5.17 and TRL 1.13 load it with sdpa by default, silently
 * (no warning), and sdpa drops the soft-cap; dpo always applies it (= eager), says so when a TRL config
 * asks for sdpa, and dpo export-trl pins eager.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { noGrad } from '../../src/autograd/tape.js';
import { loadCausalLM } from '../../src/models/load.js';
import { attnImplementationNote, trlAttnImplementation } from '../../src/dpo/attn-implementation.js';
import { tempDir } from '../io/helpers.js';

const fx = JSON.parse(readFileSync('test/fixtures/softcap/gemma2-attn-implementation.json', 'utf8')) as {
  attn_logit_softcapping: number; transformers_default: string; trl_default: string; warnings: string[]; input_ids: number[][]; sdpa_logits: number[]; eager_logits: number[];
};
const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const GEMMA2 = 'test/fixtures/models/gemma2';
const dpo = (...a: string[]) => spawnSync(process.execPath, [CLI, ...a], { encoding: 'utf8', timeout: 300_000 });
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test('transformers and TRL default to sdpa for Gemma 2 without a word; our logits are eager\'s (soft-capped), not sdpa\'s', () => {
  assert.deepEqual([fx.transformers_default, fx.trl_default, fx.warnings], ['sdpa', 'sdpa', []]);
  const { model } = loadCausalLM(GEMMA2);
  assert.equal(model.arch.attnSoftcap, fx.attn_logit_softcapping);
  const ids = Int32Array.from(fx.input_ids.flat());
  const ours = noGrad(() => model.logits({ ids, B: 1, T: ids.length })).data;
  assert.ok(maxDiff(ours, fx.eager_logits) < 1e-4, `vs eager ${maxDiff(ours, fx.eager_logits)}`);
  assert.ok(maxDiff(ours, fx.sdpa_logits) > 0.1, 'sdpa (no soft-cap) gives other logits on this fixture');
});

test('the note and the recipe value', () => {
  assert.equal(attnImplementationNote(50, 'sdpa'), "attn_implementation sdpa: transformers' sdpa kernel ignores this model's attn_logit_softcapping (50); dpo applies the soft-cap always, as eager attention does, so TRL with sdpa computes other log-probs (use attn_implementation eager there)");
  for (const [cap, impl] of [[50, 'eager'], [50, 'flash_attention_2'], [50, 'flex_attention'], [50, null], [0, 'sdpa']] as const) assert.equal(attnImplementationNote(cap, impl), null, `${cap} ${impl}`);
  assert.deepEqual([trlAttnImplementation(50, null), trlAttnImplementation(50, 'sdpa'), trlAttnImplementation(0, null)], ['eager', 'sdpa', null]);
});

test('dpo train on gemma2 with --attn_implementation sdpa prints the one-line note (instead of the generic one); llama keeps the generic one', () => {
  const common = ['--dataset_name', 'examples/dpo_example.json', '--max_steps', '1', '--per_device_train_batch_size', '2', '--max_length', '32', '--attn_implementation', 'sdpa'];
  const g = dpo('train', '--model_name_or_path', GEMMA2, '--output_dir', tempDir('dpo-attn-g-'), ...common);
  assert.equal(g.status, 0, g.stderr);
  const lines = g.stdout.split('\n').filter((l) => l.startsWith('warning: attn_implementation'));
  assert.deepEqual(lines, [`warning: ${attnImplementationNote(2, 'sdpa')}`]);
  const l = dpo('train', '--model_name_or_path', 'test/fixtures/models/llama', '--output_dir', tempDir('dpo-attn-l-'), ...common);
  assert.equal(l.status, 0, l.stderr);
  assert.match(l.stdout, /^warning: attn_implementation sdpa: accepted; /m);
});

test('dpo export-trl pins attn_implementation eager for gemma2 (TRL\'s default sdpa would drop the soft-cap), not for llama', () => {
  const args = (m: string, job: string) => ['export-trl', '--model_name_or_path', m, '--dataset_name', 'examples/dpo_example.json', '--output_dir', job];
  const gj = tempDir('dpo-attn-ge-');
  const g = dpo(...args(GEMMA2, gj));
  assert.equal(g.status, 0, g.stderr);
  assert.equal((parseYaml(readFileSync(join(gj, 'dpo.yaml'), 'utf8')) as Record<string, unknown>).attn_implementation, 'eager');
  assert.match(g.stdout, /^warning: attn_implementation eager written: this model soft-caps its attention logits \(2\), which transformers' default sdpa kernel drops$/m);
  const lj = tempDir('dpo-attn-le-');
  assert.equal(dpo(...args('test/fixtures/models/llama', lj)).status, 0);
  assert.ok(!('attn_implementation' in (parseYaml(readFileSync(join(lj, 'dpo.yaml'), 'utf8')) as Record<string, unknown>)));
});
