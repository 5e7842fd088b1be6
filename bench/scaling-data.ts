/**
 * The scaling benchmark's data (bench/quant-scaling.ts): synthetic pairs of a chosen word count,
 * the token counts our trainer sees with the checkpoint's tokenizer (prepareTrainingData: the same
 * tokenization, EOS and keep_start truncation as `dpo train` and TRL's collator), and for the
 * sequence-length sweep the word counts that fill a given total length.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Dataset } from '../src/data/dataset.js';
import { DPOConfig } from '../src/dpo/config.js';
import { prepareTrainingData } from '../src/dpo/training-data.js';
import { HfTokenizer } from '../src/tokenizer/tokenizer.js';
import { writeSyntheticJsonl } from './synthetic-pairs.js';

/** Token sums over the training pairs; `*Row` = prompt + completion cut at max_length (what a step sees). */
export interface TokenStats {
  pairs: number;
  prompt: number;
  chosen: number;
  rejected: number;
  chosen_row: number;
  rejected_row: number;
}

export const STAT_KEYS = ['pairs', 'prompt', 'chosen', 'rejected', 'chosen_row', 'rejected_row'] as const;

/** `rows` pairs with prompts of pw ± 1 words and completions of cw ± 3 (written once per shape). */
export async function pairsFile(dir: string, pw: number, cw: number, rows: number): Promise<string> {
  const path = join(dir, `pairs-${pw}-${cw}-${rows}.jsonl`);
  if (!existsSync(path)) await writeSyntheticJsonl(path, rows, { seed: 7, promptWords: [pw - 1, pw + 1], completionWords: [cw - 3, cw + 3] });
  return path;
}

export async function tokenStats(modelDir: string, data: string, maxLength: number): Promise<TokenStats> {
  const prepared = prepareTrainingData({ train: await Dataset.fromFile(data), tokenizer: HfTokenizer.fromDir(modelDir), args: new DPOConfig({ max_length: maxLength }), warn: () => {} });
  const s: TokenStats = { pairs: prepared.train.length, prompt: 0, chosen: 0, rejected: 0, chosen_row: 0, rejected_row: 0 };
  for (const p of prepared.train) {
    s.prompt += p.promptIds.length;
    s.chosen += p.chosenIds.length;
    s.rejected += p.rejectedIds.length;
    s.chosen_row += Math.min(p.promptIds.length + p.chosenIds.length, maxLength);
    s.rejected_row += Math.min(p.promptIds.length + p.rejectedIds.length, maxLength);
  }
  return s;
}

/** "prompt 199.6, chosen 300.3, rejected 302.4 tokens (rows after truncation 500.0 / 502.0)" */
export function describeStats(s: TokenStats): string {
  const m = (k: keyof TokenStats) => (s[k] / s.pairs).toFixed(1);
  return `mean tokens per pair: prompt ${m('prompt')}, chosen ${m('chosen')}, rejected ${m('rejected')} (with EOS); rows after truncation: chosen ${m('chosen_row')}, rejected ${m('rejected_row')}`;
}

/** Which counts differ between ours and TRL's dataset ('' when all agree). */
export function statsDiffer(ours: TokenStats, trl: Record<string, unknown>): string {
  return STAT_KEYS.filter((k) => Number(trl[k]) !== ours[k]).map((k) => `${k} ours ${ours[k]} TRL ${String(trl[k])}`).join(', ');
}

/**
 * Word counts for rows that fill about 95% of `length` (prompt 38%, completion 57%), from the
 * tokens per word measured on the base data (`base` made with pw / cw words).
 */
export function wordsFor(length: number, base: TokenStats, pw: number, cw: number): { pw: number; cw: number } {
  const perPromptWord = base.prompt / base.pairs / pw, perCompletionWord = (base.chosen + base.rejected) / (2 * base.pairs) / cw;
  return { pw: Math.max(2, Math.round((0.38 * length) / perPromptWord)), cw: Math.max(4, Math.round((0.57 * length) / perCompletionWord)) };
}
