/**
 * The demo's task: two-digit addition, "47+38=" → "85". The answer is checkable, so the judge is a
 * few lines of TypeScript. Problems are split once, by a fixed rule, into prompts the demo trains on
 * and held-out prompts it is only measured on (disjoint; see `split`).
 */
import type { JudgePrompt } from '../generate/judge.js';

export interface Problem {
  a: number;
  b: number;
  prompt: string;
  answer: string;
}

export const problem = (a: number, b: number): Problem => ({ a, b, prompt: `${a}+${b}=`, answer: String(a + b) });

/** Whether the units digits carry into the tens. */
export const carries = (p: Problem): boolean => (p.a % 10) + (p.b % 10) >= 10;

/** The classic mistake: the carry from the units is forgotten (47+38 → 75, 47+68 → 105). */
export const forgotCarry = (p: Problem): string => String(p.a + p.b - (carries(p) ? 10 : 0));

/** Every a+b with 10 ≤ a, b ≤ 99 (8,100 problems). */
export function allProblems(): Problem[] {
  const out: Problem[] = [];
  for (let a = 10; a <= 99; a++) for (let b = 10; b <= 99; b++) out.push(problem(a, b));
  return out;
}

/**
 * A fixed split: a problem is held out when (7a + 3b) mod 10 is 0 or 1 (about 20%, spread over every
 * digit pattern and over carries); the rest are training problems. The two sets never share a prompt.
 */
export const isHeldOut = (p: Problem): boolean => (7 * p.a + 3 * p.b) % 10 < 2;

export function split(): { train: Problem[]; heldOut: Problem[] } {
  const all = allProblems();
  return { train: all.filter((p) => !isHeldOut(p)), heldOut: all.filter(isHeldOut) };
}

/** `n` problems of `from`, picked by a seeded shuffle (deterministic). */
export function sample(from: readonly Problem[], n: number, seed: number): Problem[] {
  const a = [...from];
  let s = seed >>> 0 || 1;
  for (let i = a.length - 1; i > 0; i--) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, Math.min(n, a.length));
}

/** The judge: 1 when the completion is the right sum (surrounding spaces allowed), else 0. */
export function additionJudge(prompt: JudgePrompt, completion: string): number {
  const text = typeof prompt === 'string' ? prompt : String(prompt[prompt.length - 1].content);
  const m = /^(\d+)\+(\d+)=$/.exec(text);
  if (!m) throw new Error(`not an addition prompt: ${JSON.stringify(prompt)}`);
  return completion.trim() === String(Number(m[1]) + Number(m[2])) ? 1 : 0;
}
