/**
 * TRL 1.13's DPOTrainer._prepare_dataset, step for step: extract_prompt (implicit prompts),
 * add_eos (standard format), tokenize_fn (prompt with the generation prompt; prompt+completion;
 * completion ids = the tail after the prompt ids), then drop rows whose prompt fills max_length
 * (keep_start only).
 */
import { DpoError } from '../errors.js';
import type { HfTokenizer, ChatMessage } from '../tokenizer/tokenizer.js';
import type { Row } from './load.js';

/** Ids as Int32Array: half the memory of number[] at 10⁷–10⁸ ids, and worker threads hand them over without a copy. */
export interface TokenizedPair {
  promptIds: Int32Array;
  chosenIds: Int32Array;
  rejectedIds: Int32Array;
  /** Index of the row in the loaded data set. */
  index: number;
}

export interface PrepareOptions {
  maxLength: number | null;
  truncationMode: string;
  /** Called once per warning (TRL logs these); `kind` lets a caller joining chunks keep "once" warnings once. */
  warn?: (msg: string, kind?: 'mismatch' | 'special-split') => void;
  /** Row number of rows[0] in the whole data set (for a chunk prepared on its own). */
  indexBase?: number;
  /** Called after every row with the rows done so far (progress bars throttle their own drawing). */
  onProgress?: (done: number, total: number) => void;
}

export interface Prepared {
  pairs: TokenizedPair[];
  /** Rows dropped because the prompt alone fills max_length. */
  dropped: number[];
}

/**
 * trl.data_utils.extract_prompt: the longest common prefix of chosen and rejected (element-wise for
 * message lists, character-wise for strings), moved one step back over a separating space.
 * Mirrors Python exactly, including its loop-variable quirks (a full match stops one short, and a
 * negative index reads from the end).
 */
export function extractPrompt<T extends string | unknown[]>(chosen: T, rejected: T): { prompt: T; chosen: T; rejected: T } {
  const n = Math.min(chosen.length, rejected.length);
  const same = (a: unknown, b: unknown) => (typeof a === 'string' ? a === b : JSON.stringify(a) === JSON.stringify(b));
  let idx = 0;
  for (idx = 0; idx < n; idx++) {
    if (!same(chosen[idx], rejected[idx])) {
      const prev = idx - 1 >= 0 ? chosen[idx - 1] : chosen[chosen.length - 1];
      if (prev === ' ') idx -= 1;
      break;
    }
  }
  if (idx === n && n > 0) idx = n - 1; // Python's `for idx in range(n)` leaves idx = n − 1
  const cut = (s: T, a: number, b?: number): T => {
    const from = a < 0 ? Math.max(s.length + a, 0) : a;
    const to = b === undefined ? s.length : b < 0 ? Math.max(s.length + b, 0) : b;
    return s.slice(from, to) as T;
  };
  return { prompt: cut(chosen, 0, idx), chosen: cut(chosen, idx), rejected: cut(rejected, idx) };
}

/** Where a string split lands inside a special token (TRL does not check; we warn). */
function splitInsideSpecial(prompt: string, full: string, specials: string[]): string | null {
  const at = prompt.length;
  for (const s of specials) {
    let i = full.indexOf(s);
    while (i >= 0) {
      if (i < at && at < i + s.length) return s;
      i = full.indexOf(s, i + 1);
    }
  }
  return null;
}

export function prepareRows(rows: readonly Row[], tok: HfTokenizer, opts: PrepareOptions, conversational: boolean): Prepared {
  const pairs: TokenizedPair[] = [];
  const dropped: number[] = [];
  const eos = tok.eosToken;
  if (!conversational && eos === null) throw new DpoError('the tokenizer has no eos_token; TRL appends it to every completion of standard-format data (set eos_token in tokenizer_config.json)');
  const specials = [tok.bosToken, tok.eosToken, tok.padToken, tok.unkToken].filter((s): s is string => !!s);
  let warnedMismatch = false;
  const base = opts.indexBase ?? 0;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i], index = base + i;
    let prompt = row.prompt as string | ChatMessage[] | undefined;
    let chosen = row.chosen as string | ChatMessage[];
    let rejected = row.rejected as string | ChatMessage[];
    if (prompt === undefined) {
      const ex = extractPrompt(chosen as never, rejected as never) as { prompt: string | ChatMessage[]; chosen: typeof chosen; rejected: typeof rejected };
      if (typeof chosen === 'string') {
        const inside = splitInsideSpecial(ex.prompt as string, chosen, specials);
        if (inside) opts.warn?.(`row ${index}: the implicit prompt ends inside the special token ${inside}; give the data an explicit prompt column`, 'special-split');
      }
      ({ prompt, chosen, rejected } = ex);
    }
    let promptIds: number[], pc: number[], pr: number[];
    if (Array.isArray(prompt)) {
      const tools = parseTools(row.tools);
      const extra = (row.chat_template_kwargs as Record<string, unknown> | undefined) ?? undefined;
      promptIds = tok.applyChatTemplateIds(prompt, { addGenerationPrompt: true, tools, extra });
      pc = tok.applyChatTemplateIds([...prompt, ...(chosen as ChatMessage[])], { tools, extra });
      pr = tok.applyChatTemplateIds([...prompt, ...(rejected as ChatMessage[])], { tools, extra });
    } else {
      // add_eos: standard format only
      const c = (chosen as string).endsWith(eos!) ? (chosen as string) : `${chosen}${eos}`;
      const r = (rejected as string).endsWith(eos!) ? (rejected as string) : `${rejected}${eos}`;
      promptIds = tok.encode(prompt as string);
      pc = tok.encode(`${prompt}${c}`);
      pr = tok.encode(`${prompt}${r}`);
    }
    const prefixOk = (ids: number[]) => promptIds.every((t, i) => ids[i] === t);
    if (!warnedMismatch && (!prefixOk(pc) || !prefixOk(pr))) {
      warnedMismatch = true;
      opts.warn?.(`row ${index}: the tokenized prompt is not a prefix of the tokenized prompt+completion (tokenizer merges across the boundary); completion ids are taken after the prompt length, as TRL does`, 'mismatch');
    }
    const P = promptIds.length;
    const pair = { promptIds: Int32Array.from(promptIds), chosenIds: tail(pc, P), rejectedIds: tail(pr, P), index };
    if (opts.maxLength !== null && opts.truncationMode === 'keep_start' && P >= opts.maxLength) dropped.push(index);
    else pairs.push(pair);
    opts.onProgress?.(i + 1, rows.length);
  }
  return { pairs, dropped };
}

/** ids[from:] as its own Int32Array. */
function tail(ids: readonly number[], from: number): Int32Array {
  const out = new Int32Array(Math.max(0, ids.length - from));
  for (let i = 0; i < out.length; i++) out[i] = ids[from + i];
  return out;
}

function parseTools(t: unknown): unknown[] | undefined {
  if (typeof t === 'string') {
    try {
      return JSON.parse(t) as unknown[];
    } catch {
      return undefined;
    }
  }
  return Array.isArray(t) ? t : undefined;
}
