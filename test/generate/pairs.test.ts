/** generatePairs(): expected pairs from a deterministic judge, ties, judge failures, timeouts, pairwise judges, seeding. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCausalLM } from '../../src/models/load.js';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { generate } from '../../src/generate/generate.js';
import { generatePairs, sampleSeed } from '../../src/generate/pairs.js';
import { pickBestWorst } from '../../src/generate/judge.js';
import { detectFormat, validateRows } from '../../src/data/validate.js';

const DIR = 'test/fixtures/models/llama';
const { model } = loadCausalLM(DIR);
const tokenizer = HfTokenizer.fromDir(DIR);
const PROMPTS = [{ prompt: 'hello' }, { prompt: 'how are you', id: 7 }, { prompt: 'What is your name?' }];
const base = { model, tokenizer, numGenerations: 4, maxNewTokens: 8, temperature: 1, topK: 50, seed: 5, judgeTimeout: 5 };

/** The completions generatePairs samples for prompt i, recomputed independently. */
function completionsOf(ids: number[], i: number): string[] {
  return Array.from({ length: 4 }, (_, k) => {
    const out = generate(model, ids, { maxNewTokens: 8, temperature: 1, topK: 50, topP: 1, seed: sampleSeed(5, i, k), eosTokenIds: [tokenizer.eosTokenId!] });
    if (out[out.length - 1] === tokenizer.eosTokenId) out.pop();
    return tokenizer.decode(out, { skipSpecialTokens: true });
  });
}

test('reward judge (length): chosen is the longest completion, rejected the shortest, scores kept; TRL-valid rows', async () => {
  const { rows, stats } = await generatePairs({ ...base, prompts: PROMPTS, judge: (_p, c) => c.length });
  assert.equal(stats.written + stats.ties, 3);
  let checked = 0;
  PROMPTS.forEach((p, i) => {
    const cs = completionsOf(tokenizer.encode(p.prompt), i);
    const lens = cs.map((c) => c.length);
    const pick = pickBestWorst(lens);
    const r = rows.find((x) => x.prompt === p.prompt);
    if (!pick) return assert.equal(r, undefined);
    checked++;
    assert.deepEqual(r, { ...p, chosen: cs[pick.best], rejected: cs[pick.worst], score_chosen: lens[pick.best], score_rejected: lens[pick.worst], scores: lens });
    assert.ok(lens[pick.best] > lens[pick.worst]);
  });
  assert.ok(checked >= 2, 'the sampled lengths should differ for most prompts');
  assert.equal(rows[1].id, 7, 'extra input columns are carried over');
  assert.deepEqual(validateRows(rows), []);
  assert.deepEqual(detectFormat(rows), { conversational: false, explicitPrompt: true });
});

test('same seed, same pairs; another seed, other completions', async () => {
  const judge = (_p: unknown, c: string) => c.length;
  const a = await generatePairs({ ...base, prompts: PROMPTS, judge });
  const b = await generatePairs({ ...base, prompts: PROMPTS, judge });
  const c = await generatePairs({ ...base, prompts: PROMPTS, judge, seed: 6 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.rows, c.rows);
});

test('conversational prompts: the chat template is applied and completions are assistant messages', async () => {
  const prompts = [{ prompt: [{ role: 'user', content: 'hello' }] }, { prompt: [{ role: 'user', content: 'hi nice to meet you' }] }];
  const { rows } = await generatePairs({ ...base, prompts, judge: (_p, c) => c.length });
  assert.ok(rows.length >= 1);
  const ids = tokenizer.applyChatTemplateIds(prompts[0].prompt, { addGenerationPrompt: true });
  const cs = completionsOf(ids, 0);
  const r0 = rows.find((r) => JSON.stringify(r.prompt) === JSON.stringify(prompts[0].prompt));
  if (r0) {
    const pick = pickBestWorst(cs.map((c) => c.length))!;
    assert.deepEqual(r0.chosen, [{ role: 'assistant', content: cs[pick.best] }]);
    assert.deepEqual(r0.rejected, [{ role: 'assistant', content: cs[pick.worst] }]);
  }
  assert.deepEqual(validateRows(rows), []);
  assert.equal(detectFormat(rows).conversational, true);
});

test('a constant judge: every prompt is a tie, skipped and counted', async () => {
  const { rows, stats } = await generatePairs({ ...base, prompts: PROMPTS, judge: () => 1 });
  assert.equal(rows.length, 0);
  assert.equal(stats.ties, 3);
});

test('judge exceptions, rejections, NaN / Infinity / non-numbers and timeouts are counted per row, never thrown', async () => {
  let call = 0;
  const judge = (p: unknown, c: string) => {
    call++;
    if (p === 'hello') throw new Error('boom');
    if (p === 'how are you') return c.length === -1 ? 0 : NaN;
    return c.length;
  };
  const r1 = await generatePairs({ ...base, prompts: PROMPTS, judge });
  assert.ok(call > 0);
  assert.equal(r1.stats.failed.error, 1);
  assert.equal(r1.stats.failed['non-finite'], 1);
  assert.equal(r1.stats.written + r1.stats.ties, 1);
  assert.match(r1.stats.messages[0], /^row 0: judge threw boom/);
  assert.match(r1.stats.messages[1], /^row 1: judge returned NaN/);
  const r2 = await generatePairs({ ...base, prompts: PROMPTS, judge: async (p) => { if (p === 'hello') throw new Error('rejected'); return p === 'how are you' ? Infinity : ('x' as unknown as number); } });
  assert.deepEqual(r2.stats.failed, { error: 1, 'non-finite': 2, timeout: 0 });
  const t0 = Date.now();
  const r3 = await generatePairs({ ...base, prompts: PROMPTS, judgeTimeout: 0.2, judge: (p, c) => (p === 'hello' ? new Promise<number>(() => {}) : c.length) });
  assert.equal(r3.stats.failed.timeout, 1);
  assert.match(r3.stats.messages[0], /row 0: judge no answer within 0.2 s/);
  assert.ok(Date.now() - t0 < 5000);
});

test('pairwise judge: round robin wins; chosen has the most wins, rejected the fewest', async () => {
  const judge = { compare: async (_p: unknown, a: string, b: string) => (a.length >= b.length ? 0 : 1) };
  const { rows, stats } = await generatePairs({ ...base, prompts: PROMPTS, judge });
  assert.ok(rows.length >= 2);
  for (const r of rows) {
    const scores = r.scores as number[];
    assert.equal(scores.reduce((a, b) => a + b, 0), 6, 'C(4,2) = 6 comparisons');
    assert.ok((r.chosen as string).length >= (r.rejected as string).length);
    assert.equal(r.score_chosen, Math.max(...scores));
  }
  const ties = await generatePairs({ ...base, prompts: PROMPTS, judge: { compare: () => -1 } });
  assert.equal(ties.stats.ties, 3);
  const bad = await generatePairs({ ...base, prompts: PROMPTS, judge: { compare: () => 7 } });
  assert.equal(bad.stats.failed['non-finite'], 3);
  assert.equal(stats.prompts, 3);
});

test('bad inputs are one-line errors', async () => {
  await assert.rejects(generatePairs({ ...base, prompts: [{ prompt: 'a' }, { text: 'b' }], judge: () => 1 }), /row 1: prompt is missing/);
  await assert.rejects(generatePairs({ ...base, prompts: PROMPTS, judge: 42 as never }), /expected `export default/);
  await assert.rejects(generatePairs({ ...base, prompts: PROMPTS, numGenerations: 1, judge: () => 1 }), /≥ 2/);
});
