/**
 * Preference pairs from a policy and a judge: for each prompt, sample N completions, score them,
 * keep the best as chosen and the worst as rejected (ties skipped). Composes generate/ and a judge;
 * the trainer is not involved.
 */
import { DpoError } from '../errors.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { ChatMessage, HfTokenizer } from '../tokenizer/tokenizer.js';
import type { Row } from '../data/load.js';
import { refuseImages } from '../data/validate.js';
import { generateBatch } from './generate.js';
import { normaliseJudge, pickBestWorst, scoreCompletions, type Judge, type JudgeFailure, type JudgePrompt, type NormalJudge } from './judge.js';

export interface GeneratePairsOptions {
  model: CausalLM;
  tokenizer: HfTokenizer;
  /** Rows with a `prompt` column: all strings (standard) or all message lists (conversational). Other columns are carried over. */
  prompts: readonly Row[];
  /** A reward `(prompt, completion) => number`, `{ score }`, `{ compare(prompt, a, b) }`, or a loaded judge. */
  judge: Judge | NormalJudge;
  /** Completions sampled per prompt (default 4). */
  numGenerations?: number;
  maxNewTokens?: number;
  /** Default 1 (transformers' default); 0 is greedy and makes every completion identical. */
  temperature?: number;
  /** Default 50, as transformers' GenerationConfig. 0 = all tokens. */
  topK?: number;
  topP?: number;
  /** The whole output is a function of the seed: sample k of prompt i uses its own derived seed. */
  seed?: number;
  /** Seconds one judge call may take (0 = no limit; default 30). Only asynchronous judges can be cut off. */
  judgeTimeout?: number;
  /** Called after each prompt. */
  onProgress?: (done: number, total: number, stats: PairsStats) => void;
}

export interface PairsStats {
  prompts: number;
  written: number;
  /** Prompts whose completions all scored the same. */
  ties: number;
  /** Standard-format prompts whose chosen or rejected completion decoded to an empty string. */
  empty: number;
  /** Prompts skipped because a judge call failed, by kind. */
  failed: Record<JudgeFailure, number>;
  /** The first few failure messages, "row i: …". */
  messages: string[];
}

export interface PairsResult {
  /** TRL preference rows: prompt, chosen, rejected (+ score_chosen, score_rejected, scores). */
  rows: Row[];
  stats: PairsStats;
}

const MAX_MESSAGES = 5;

/** A seed of its own for sample k of prompt i (splitmix-style mixing, stable across runs). */
export function sampleSeed(seed: number, i: number, k: number): number {
  let x = (seed >>> 0) ^ Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(k + 1, 0x85ebca77);
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The prompt's token ids exactly as `dpo train` tokenizes it (TRL: chat template with the generation prompt, or plain encode). */
export function promptIds(tok: HfTokenizer, row: Row): number[] {
  const p = row.prompt as JudgePrompt;
  if (typeof p === 'string') return tok.encode(p);
  let tools: unknown[] | undefined;
  if (typeof row.tools === 'string') try { tools = JSON.parse(row.tools) as unknown[]; } catch { tools = undefined; }
  else if (Array.isArray(row.tools)) tools = row.tools;
  return tok.applyChatTemplateIds(p, { addGenerationPrompt: true, tools, extra: (row.chat_template_kwargs as Record<string, unknown> | undefined) ?? undefined });
}

/** Checks every row has a prompt of one representation; returns whether it is conversational. */
export function checkPrompts(rows: readonly Row[]): boolean {
  if (!rows.length) throw new DpoError('generatePairs: no prompts');
  refuseImages(rows, 'prompts');
  const conv = Array.isArray(rows[0].prompt);
  rows.forEach((r, i) => {
    const p = r.prompt;
    if (conv ? !Array.isArray(p) || !p.length : typeof p !== 'string') {
      throw new DpoError(`row ${i}: prompt is ${p === undefined ? 'missing' : Array.isArray(p) ? 'a message list' : typeof p}; every row needs a \`prompt\` ${conv ? 'message list (like row 0)' : 'string (like row 0)'}`);
    }
  });
  return conv;
}

/**
 * Samples `numGenerations` completions per prompt from the policy (the prompt prefilled once, the
 * N samples decoded together through a batched KV cache), scores them with the judge and returns
 * TRL-format preference rows: chosen = the highest score (first on equal scores), rejected = the
 * lowest; a prompt whose scores are all equal is a tie and skipped. A judge that throws, rejects, returns a non-finite value or times out skips that
 * prompt and is counted in `stats.failed` (never thrown).
 *
 * @example
 * const { rows, stats } = await generatePairs({
 *   model, tokenizer, prompts: [{ prompt: 'Write a haiku' }],
 *   judge: (prompt, completion) => -Math.abs(completion.length - 60),
 *   numGenerations: 4, temperature: 0.8, seed: 1,
 * });
 */
export async function generatePairs(o: GeneratePairsOptions): Promise<PairsResult> {
  const judge: NormalJudge = typeof o.judge === 'object' && o.judge !== null && 'kind' in o.judge ? (o.judge as NormalJudge) : normaliseJudge(o.judge);
  const n = o.numGenerations ?? 4;
  if (!Number.isInteger(n) || n < 2) throw new DpoError(`num_generations must be an integer ≥ 2 (a pair needs two completions), got ${n}`);
  const conversational = checkPrompts(o.prompts);
  const tok = o.tokenizer;
  const eosId = tok.eosTokenId;
  const cfg = { maxNewTokens: o.maxNewTokens ?? 64, temperature: o.temperature ?? 1, topK: o.topK ?? 50, topP: o.topP ?? 1, eosTokenIds: eosId === null ? [] : [eosId] };
  const timeout = o.judgeTimeout ?? 30;
  const stats: PairsStats = { prompts: o.prompts.length, written: 0, ties: 0, empty: 0, failed: { error: 0, 'non-finite': 0, timeout: 0 }, messages: [] };
  const rows: Row[] = [];
  const seed = o.seed ?? 42;
  for (let i = 0; i < o.prompts.length; i++) {
    const row = o.prompts[i];
    const ids = promptIds(tok, row);
    const seeds = Array.from({ length: n }, (_, k) => sampleSeed(seed, i, k));
    const completions = generateBatch(o.model, ids, seeds, cfg).map((out) => {
      if (eosId !== null && out[out.length - 1] === eosId) out.pop();
      return tok.decode(out, { skipSpecialTokens: true });
    });
    const prompt = row.prompt as JudgePrompt;
    const s = await scoreCompletions(judge, prompt, completions, timeout);
    if (!s.ok) {
      stats.failed[s.kind]++;
      if (stats.messages.length < MAX_MESSAGES) stats.messages.push(`row ${i}: judge ${s.message}`);
    } else {
      const pick = pickBestWorst(s.scores);
      if (!pick) stats.ties++;
      else if (!conversational && (!completions[pick.best] || !completions[pick.worst])) stats.empty++;
      else {
        const asCompletion = (t: string): string | ChatMessage[] => (conversational ? [{ role: 'assistant', content: t }] : t);
        rows.push({
          ...row,
          prompt,
          chosen: asCompletion(completions[pick.best]),
          rejected: asCompletion(completions[pick.worst]),
          score_chosen: s.scores[pick.best],
          score_rejected: s.scores[pick.worst],
          scores: s.scores,
        });
        stats.written++;
      }
    }
    o.onProgress?.(i + 1, o.prompts.length, stats);
  }
  return { rows, stats };
}

/** One line: written / ties / failures by kind, e.g. for a CLI summary. */
export function summarisePairs(s: PairsStats): string {
  const f = s.failed;
  const failed = f.error + f['non-finite'] + f.timeout;
  return `${s.written} of ${s.prompts} prompts gave a pair; ${s.ties} ties skipped${s.empty ? `, ${s.empty} with an empty completion skipped` : ''}; judge failures: ${failed} (${f.error} errors, ${f['non-finite']} non-finite scores, ${f.timeout} timeouts)`;
}
