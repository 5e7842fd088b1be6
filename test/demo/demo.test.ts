/**
 * `dpo demo`: online DPO makes the built-in adder better on held-out problems it never trained on
 * (a smaller configuration than the default: 2 rounds, 200 held-out problems).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { additionJudge, allProblems, forgotCarry, isHeldOut, problem, split } from '../../src/demo/addition.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');

test('addition task: held-out and training problems are disjoint and cover every problem; the judge checks sums', () => {
  const { train, heldOut } = split();
  const seen = new Set(train.map((p) => p.prompt));
  assert.ok(heldOut.every((p) => !seen.has(p.prompt)));
  assert.equal(train.length + heldOut.length, allProblems().length);
  assert.ok(heldOut.length > 1500 && heldOut.length < 1700, String(heldOut.length));
  assert.equal(additionJudge('47+38=', '85'), 1);
  assert.equal(additionJudge('47+38=', ' 85 '), 1);
  assert.equal(additionJudge('47+38=', '75'), 0);
  assert.equal(additionJudge('47+38=', ''), 0);
  assert.equal(forgotCarry(problem(47, 38)), '75');
  assert.equal(forgotCarry(problem(47, 68)), '105');
  assert.equal(forgotCarry(problem(41, 38)), '79');
  assert.throws(() => additionJudge('hello', '1'), /not an addition prompt/);
});

test('dpo demo: held-out greedy accuracy rises by 20+ points in 2 rounds; pairs come only from training problems', () => {
  const out = mkdtempSync(join(tmpdir(), 'dpo-demo-'));
  const r = spawnSync(process.execPath, [CLI, 'demo', '--output_dir', out, '--iterations', '2', '--heldout_size', '200'], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const rec = (k: number) => JSON.parse(readFileSync(join(out, `round-${k}`, 'round.json'), 'utf8')) as Record<string, number>;
  const before = rec(0).heldout_accuracy, after = rec(2).heldout_accuracy;
  assert.ok(before < 0.6, `base accuracy ${before}`);
  assert.ok(after >= before + 0.2, `held-out accuracy ${before} → ${after}`);
  // KL to the base grows from 0 as the policy moves.
  assert.equal(rec(0).heldout_kl, 0);
  assert.ok(rec(2).heldout_kl > 0);
  for (const k of [1, 2]) {
    const rows = readFileSync(join(out, `round-${k}`, 'pairs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
    assert.ok(rows.length > 10);
    for (const row of rows) {
      const [a, b] = row.prompt.slice(0, -1).split('+').map(Number);
      assert.ok(!isHeldOut(problem(a, b)), `round ${k} trained on held-out ${row.prompt}`);
      assert.equal(additionJudge(row.prompt, row.chosen), 1);
      assert.equal(additionJudge(row.prompt, row.rejected), 0);
    }
  }
  assert.match(r.stdout, /held-out greedy accuracy: [0-9.]+% → [0-9.]+%/);
  assert.match(r.stdout, /some held-out answers, before → after:/);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /Reward–KL frontier/);
  assert.match(html, /data-key="heldout_accuracy@0" data-points="3"/);
  assert.ok(existsSync(join(out, 'round-2', 'model.safetensors')));
});

test('dpo demo: bad option values are one-line errors', () => {
  const r = spawnSync(process.execPath, [CLI, 'demo', '--iterations', '0'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), 'dpo: dpo demo: --iterations must be ≥ 1, got 0');
});
