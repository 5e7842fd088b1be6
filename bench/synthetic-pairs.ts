/**
 * Seeded synthetic preference data of realistic shape: English-like prose from a fixed word list,
 * prompts and completions of chosen word counts, in TRL's standard (explicit prompt strings) or
 * conversational (message lists) format. Used by bench/prepare-data.ts and the large-data tests.
 */
import { createWriteStream } from 'node:fs';
import { Rng } from '../src/tensor/rng.js';

const WORDS = (
  'the of and to in is that it was for on are as with his they at be this from have or by one had not but what all were when we there can an your which their said if do will each about how up out them then she many some so these would other into has more her two like him see time could no make than first been its who now people my made over did down only way find use may water long little very after words called just where most know get through back much go good new write our me man too any day same right look think also around another came come work three word must because does part even place well such here take why things help put years different away again off went old number great tell men say small every found still between name should home big give air line set own under read last never us left end along while might next sound below saw something thought both few those always looked show large often together asked house world going want school important until form food keep children feet land side without boy once animals life enough took sometimes four head above kind began almost live page got earth need far hand high year mother light parts country father let night following picture being study second eyes soon times story boys since white days ever paper hard near sentence better best across during today others however sure means knew'
).split(' ');
const PUNCT = ['.', '.', '.', ',', ',', '?', '!', ';'];

export interface SyntheticOptions {
  format?: 'standard' | 'conversational';
  seed?: number;
  /** Word counts [min, max] of a prompt and of a completion. */
  promptWords?: [number, number];
  completionWords?: [number, number];
}

function between(rng: Rng, [a, b]: [number, number]): number {
  return a + rng.nextInt(b - a + 1);
}

function prose(rng: Rng, n: number): string {
  const out: string[] = [];
  let capital = true;
  for (let i = 0; i < n; i++) {
    let w = WORDS[rng.nextInt(WORDS.length)];
    if (capital) w = w[0].toUpperCase() + w.slice(1);
    capital = false;
    if (i === n - 1) w += '.';
    else if (rng.nextInt(9) === 0) {
      const p = PUNCT[rng.nextInt(PUNCT.length)];
      w += p;
      capital = p !== ',' && p !== ';';
    }
    out.push(w);
  }
  return out.join(' ');
}

/** Row `i` of the synthetic set (rows are independent, so any slice is reproducible). */
export function syntheticRow(i: number, o: SyntheticOptions = {}): Record<string, unknown> {
  const rng = new Rng((o.seed ?? 0) * 7919 + i);
  const prompt = prose(rng, between(rng, o.promptWords ?? [40, 150]));
  const chosen = ` ${prose(rng, between(rng, o.completionWords ?? [80, 230]))}`;
  const rejected = ` ${prose(rng, between(rng, o.completionWords ?? [80, 230]))}`;
  if (o.format === 'conversational') {
    return {
      prompt: [{ role: 'user', content: prompt }],
      chosen: [{ role: 'assistant', content: chosen.trim() }],
      rejected: [{ role: 'assistant', content: rejected.trim() }],
    };
  }
  return { prompt, chosen, rejected };
}

export function syntheticRows(n: number, o: SyntheticOptions = {}): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => syntheticRow(i, o));
}

/** Streams n rows to a .jsonl file (no whole-file string in memory). */
export async function writeSyntheticJsonl(path: string, n: number, o: SyntheticOptions = {}): Promise<void> {
  const ws = createWriteStream(path);
  for (let i = 0; i < n; i++) {
    if (!ws.write(`${JSON.stringify(syntheticRow(i, o))}\n`)) await new Promise<void>((r) => ws.once('drain', () => r()));
  }
  await new Promise<void>((res, rej) => ws.end((e?: Error | null) => (e ? rej(e) : res())));
}
