/** judgeEval: KL(π‖π_ref) on sampled completions (0 for π = π_ref; equal to a direct log-softmax computation), score and win-rate. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad } from '../../src/autograd/tape.js';
import { loadPolicy } from '../../src/cli/load-policy.js';
import { cloneModel } from '../../src/dpo/reference.js';
import { judgeEval } from '../../src/generate/judge-eval.js';
import { Rng } from '../../src/tensor/rng.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { saveCausalLM } from '../../src/models/load.js';

const ADDER = 'assets/demo-adder';
const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const prompts = ['12+35=', '47+38=', '99+99=', '50+61=', '23+19='].map((prompt) => ({ prompt }));
const judge = (p: unknown, c: string) => {
  const [a, b] = String(p).slice(0, -1).split('+').map(Number);
  return c.trim() === String(a + b) ? 1 : 0;
};

/** log π(y|x) from the full logits, token by token (no fused op, no batching). */
function directLogp(model: CausalLM, x: number[], y: number[]): number {
  const ids = [...x, ...y];
  const V = model.arch.vocabSize;
  const lg = noGrad(() => model.logits({ ids: Int32Array.from(ids), B: 1, T: ids.length }).data);
  let s = 0;
  for (let t = x.length; t < ids.length; t++) {
    const o = (t - 1) * V;
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, lg[o + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(lg[o + v] - m);
    s += lg[o + ids[t]] - m - Math.log(z);
  }
  return s;
}

function perturbed(model: CausalLM, scale: number): CausalLM {
  const m = cloneModel(model);
  const rng = new Rng(3);
  for (const [, p] of m.namedParameters()) for (let i = 0; i < p.size; i++) p.data[i] += scale * (rng.nextFloat() - 0.5);
  return m;
}

test('judgeEval: policy = reference gives KL exactly 0, equal scores and win-rate ½', async () => {
  const { model, tokenizer } = loadPolicy(ADDER);
  const r = await judgeEval({ model, refModel: cloneModel(model), tokenizer, prompts, judge, numSamples: 3, maxNewTokens: 5, seed: 1 });
  assert.equal(r.samples, 15);
  assert.equal(r.kl, 0);
  assert.equal(r.score, r.refScore);
  assert.equal(r.winRate, 0.5);
  assert.ok(r.score > 0 && r.score < 1, String(r.score));
});

test('judgeEval: KL equals the mean of log π(y|x) − log π_ref(y|x) computed directly on the same samples', async () => {
  const { model: ref, tokenizer } = loadPolicy(ADDER);
  const model = perturbed(ref, 0.05);
  const r = await judgeEval({ model, refModel: ref, tokenizer, prompts, judge, numSamples: 4, maxNewTokens: 5, seed: 2 });
  const s = r.policySamples;
  const d = s.tokens.map((y, j) => directLogp(model, s.promptIds[j], y) - directLogp(ref, s.promptIds[j], y));
  const kl = d.reduce((a, b) => a + b, 0) / d.length;
  assert.ok(Math.abs(r.kl - kl) < 1e-4, `${r.kl} vs ${kl}`);
  assert.ok(r.kl > 0.01, String(r.kl));
  // Samples end with EOS (counted in log π(y|x)) or stop at max_new_tokens.
  assert.ok(s.tokens.every((y) => y.length <= 5 && y.length > 0));
});

test('dpo eval --judge: score, base_score, win_rate and KL lines; KL 0 against itself; one-line errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-evaljudge-'));
  writeFileSync(join(dir, 'judge.mjs'), "export default (p, c) => { const [a, b] = p.slice(0, -1).split('+').map(Number); return c.trim() === String(a + b) ? 1 : 0; };\n");
  writeFileSync(join(dir, 'heldout.jsonl'), prompts.map((p) => JSON.stringify(p)).join('\n'));
  const other = join(dir, 'other');
  const base = loadPolicy(ADDER);
  saveCausalLM(perturbed(base.model, 0.05), other);
  base.tokenizer.save(other);
  const run = (...a: string[]) => spawnSync(process.execPath, [CLI, 'eval', ...a], { encoding: 'utf8', timeout: 120_000 });
  const same = run('--model_name_or_path', ADDER, '--base', ADDER, '--judge', join(dir, 'judge.mjs'), '--prompts', join(dir, 'heldout.jsonl'), '--max_new_tokens', '5');
  assert.equal(same.status, 0, same.stderr);
  assert.match(same.stdout, /^5 held-out prompts × 4 samples/);
  assert.match(same.stdout, /\nwin_rate +0\.500000\n/);
  assert.match(same.stdout, /\nkl +0\.000000 ± 0\.000000 nats per sequence\n/);
  const diff = run('--model_name_or_path', other, '--base', ADDER, '--judge', join(dir, 'judge.mjs'), '--prompts', join(dir, 'heldout.jsonl'), '--max_new_tokens', '5', '--temperature', '0.7');
  assert.equal(diff.status, 0, diff.stderr);
  assert.match(diff.stdout, /\nkl +[0-9.]+ ± [0-9.]+ nats per sequence \(samples not from π itself/);
  const noBase = run('--model_name_or_path', ADDER, '--judge', join(dir, 'judge.mjs'), '--prompts', join(dir, 'heldout.jsonl'));
  assert.equal(noBase.status, 2);
  assert.equal(noBase.stderr.trim(), "dpo: dpo eval: --base <model> is required for a full model (the base to compare with); an adapter's base is found by itself");
  const noJudge = run('--model_name_or_path', ADDER, '--prompts', join(dir, 'heldout.jsonl'));
  assert.equal(noJudge.status, 2);
  assert.equal(noJudge.stderr.trim(), 'dpo: dpo eval: --judge is required with --judge / --prompts (see dpo eval --judge x --help)');
  const t0 = run('--model_name_or_path', ADDER, '--base', ADDER, '--judge', join(dir, 'judge.mjs'), '--prompts', join(dir, 'heldout.jsonl'), '--temperature', '0');
  assert.equal(t0.status, 2);
  assert.equal(t0.stderr.trim(), 'dpo: dpo eval: --temperature must be > 0 (the KL is estimated on sampled completions)');
});
