/**
 * Judges: plain user code behind one small interface. A reward judge scores one completion; a
 * pairwise judge says which of two is better. Every call is guarded: a throw, a rejection, a
 * non-finite score or a timeout becomes a per-call failure the caller counts, never a crash.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DpoError } from '../errors.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';

/** A prompt as the data set holds it: a string (standard) or a list of chat messages (conversational). */
export type JudgePrompt = string | ChatMessage[];

/** A reward: higher is better. */
export type RewardFn = (prompt: JudgePrompt, completion: string) => number | Promise<number>;

/** A pairwise judge: returns 0 when `a` is better, 1 when `b` is better (-1 or 0.5: a tie). */
export interface PairwiseJudge {
  compare(prompt: JudgePrompt, a: string, b: string): number | Promise<number>;
}

/** What `generatePairs` accepts: a reward function, `{ score }` or `{ compare }`. */
export type Judge = RewardFn | { score: RewardFn } | PairwiseJudge;

export type JudgeFailure = 'error' | 'non-finite' | 'timeout';

export type Guarded = { ok: true; value: number } | { ok: false; kind: JudgeFailure; message: string };

/** A judge in normal form. */
export type NormalJudge = { kind: 'reward'; score: RewardFn } | { kind: 'pairwise'; compare: PairwiseJudge['compare'] };

/** Brings any accepted shape to normal form; `where` names the source in the error. */
export function normaliseJudge(j: unknown, where = 'judge'): NormalJudge {
  if (typeof j === 'function') return { kind: 'reward', score: j as RewardFn };
  if (j && typeof j === 'object') {
    const o = j as Record<string, unknown>;
    if (typeof o.compare === 'function') return { kind: 'pairwise', compare: (o.compare as PairwiseJudge['compare']).bind(o) };
    if (typeof o.score === 'function') return { kind: 'reward', score: (o.score as RewardFn).bind(o) };
  }
  throw new DpoError(`${where}: expected \`export default (prompt, completion) => number\` (a reward) or \`export default { compare(prompt, a, b) }\` (pairwise), got ${j === null ? 'null' : typeof j}`);
}

/**
 * Loads a judge module (.mjs/.js; .ts only where Node strips types) by dynamic import of its file
 * URL and normalises its default export. Any failure is a one-line DpoError.
 */
export async function loadJudge(path: string): Promise<NormalJudge> {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new DpoError(`--judge ${path}: file not found`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    const msg = ((e as Error)?.message ?? String(e)).split('\n')[0];
    throw new DpoError(`--judge ${path}: the module failed to load (${msg})${/\.ts$/.test(path) ? '; compile it to .mjs or run Node with type stripping' : ''}`);
  }
  if (!('default' in mod)) throw new DpoError(`--judge ${path}: no default export; write \`export default (prompt, completion) => score\` or \`export default { compare(prompt, a, b) }\``);
  return normaliseJudge(mod.default, `--judge ${path}`);
}

/** Calls `f` with a deadline (seconds; 0 = none) and checks the result is a finite number. */
export async function guardedCall(f: () => unknown, timeoutS: number): Promise<Guarded> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const call = Promise.resolve().then(f);
    const timeout = new Promise<'timeout'>((res) => {
      if (timeoutS > 0) timer = setTimeout(() => res('timeout'), timeoutS * 1000);
    });
    const v = await (timeoutS > 0 ? Promise.race([call, timeout]) : call);
    if (v === 'timeout') return { ok: false, kind: 'timeout', message: `no answer within ${timeoutS} s` };
    if (typeof v !== 'number' || !Number.isFinite(v)) return { ok: false, kind: 'non-finite', message: `returned ${typeof v === 'number' ? String(v) : JSON.stringify(v) ?? typeof v}, not a finite number` };
    return { ok: true, value: v };
  } catch (e) {
    return { ok: false, kind: 'error', message: `threw ${((e as Error)?.message ?? String(e)).split('\n')[0]}` };
  } finally {
    clearTimeout(timer);
  }
}

/** Scores of one prompt's completions, or the first failure. */
export type Scored = { ok: true; scores: number[] } | { ok: false; kind: JudgeFailure; message: string };

/**
 * Scores the completions of one prompt. Reward: one call per completion (concurrently). Pairwise:
 * a round robin, every pair (i < j) compared once; a completion's score is its number of wins
 * (a tie gives each ½). Any failed call fails the whole prompt.
 */
export async function scoreCompletions(judge: NormalJudge, prompt: JudgePrompt, completions: string[], timeoutS: number): Promise<Scored> {
  if (judge.kind === 'reward') {
    const rs = await Promise.all(completions.map((c) => guardedCall(() => judge.score(prompt, c), timeoutS)));
    const bad = rs.find((r) => !r.ok);
    if (bad && !bad.ok) return bad;
    return { ok: true, scores: rs.map((r) => (r as { value: number }).value) };
  }
  const pairs: [number, number][] = [];
  for (let i = 0; i < completions.length; i++) for (let j = i + 1; j < completions.length; j++) pairs.push([i, j]);
  const rs = await Promise.all(pairs.map(([i, j]) => guardedCall(() => judge.compare(prompt, completions[i], completions[j]), timeoutS)));
  const wins = new Array<number>(completions.length).fill(0);
  for (let p = 0; p < pairs.length; p++) {
    const r = rs[p];
    if (!r.ok) return r;
    const [i, j] = pairs[p];
    if (r.value === 0) wins[i] += 1;
    else if (r.value === 1) wins[j] += 1;
    else if (r.value === -1 || r.value === 0.5) { wins[i] += 0.5; wins[j] += 0.5; }
    else return { ok: false, kind: 'non-finite', message: `compare returned ${r.value}; expected 0 (first better), 1 (second better) or -1 (tie)` };
  }
  return { ok: true, scores: wins };
}

/** Chosen = the first highest score, rejected = the first lowest; null when all scores are equal (a tie). */
export function pickBestWorst(scores: readonly number[]): { best: number; worst: number } | null {
  let best = 0, worst = 0;
  for (let i = 1; i < scores.length; i++) {
    if (scores[i] > scores[best]) best = i;
    if (scores[i] < scores[worst]) worst = i;
  }
  return scores[best] === scores[worst] ? null : { best, worst };
}
