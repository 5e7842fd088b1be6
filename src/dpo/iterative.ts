/**
 * Iterative (online) DPO: rounds of  sample pairs from the current policy with the judge
 * (generatePairs) → train on them (DPOTrainer) → evaluate on held-out prompts (judgeEval). It
 * composes generate/ and the trainer; the trainer knows nothing of rounds.
 *
 * Reference: `round` (default) is the policy as it was when the round began, i.e. the previous
 * round's model, as in Xiong et al. 2024 (iterative preference learning) and Yuan et al. 2024
 * (self-rewarding); `initial` keeps the starting model for every round. Held-out KL is always
 * measured against the starting model, so the rounds trace one reward–KL curve.
 *
 * Layout under args.output_dir: round-0/round.json (the starting model's evaluation), then per
 * round k: round-k/pairs.jsonl, the trainer's files (checkpoint-N/, model, trainer_state.json) and
 * round-k/round.json, written last: a round with round.json is complete. A resumed run skips
 * complete rounds (loading the last one's weights), reuses an interrupted round's pairs and
 * continues its training from its latest checkpoint-N.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import type { CausalLM } from '../models/causal-lm.js';
import { loadCausalLM } from '../models/load.js';
import type { HfTokenizer } from '../tokenizer/tokenizer.js';
import type { Row } from '../data/load.js';
import { Dataset } from '../data/dataset.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loraLayers } from '../lora/apply.js';
import { normaliseJudge, type Judge, type NormalJudge } from '../generate/judge.js';
import { generatePairs, sampleSeed, type PairsStats } from '../generate/pairs.js';
import { judgeEval, type SampledSet } from '../generate/judge-eval.js';
import { DPOConfig } from './config.js';
import { DPOTrainer, type DPOTrainerInit, type LogEntry } from './trainer.js';
import { checkpointDirs } from './checkpoint.js';
import { cloneModel } from './reference.js';

export type RefUpdate = 'round' | 'initial';
export const REF_UPDATES: readonly RefUpdate[] = ['round', 'initial'];

export interface RoundGeneration {
  numGenerations?: number;
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  judgeTimeout?: number;
}

export interface HeldOutOptions {
  prompts: readonly Row[];
  /** Samples per prompt (default 4), drawn at temperature 1 without filters (y ~ π). */
  numSamples?: number;
  maxNewTokens?: number;
}

/** What one round did; round 0 is the starting model (no pairs, no training). */
export interface RoundRecord {
  round: number;
  beta: number;
  pairs: number;
  ties: number;
  judge_failures: number;
  steps: number;
  train_loss: number | null;
  'rewards/accuracies': number | null;
  'rewards/margins': number | null;
  /** Held-out: mean judge score, the starting model's, win-rate against it, KL(π‖π_0) and its standard error. */
  heldout_score?: number;
  heldout_ref_score?: number;
  heldout_win_rate?: number;
  heldout_kl?: number;
  heldout_kl_stderr?: number;
  /** Whatever `evaluate` returned. */
  [extra: string]: number | null | undefined;
}

export interface IterativeDPOOptions {
  /** The starting policy (trained in place, full fine-tuning). */
  model: CausalLM;
  tokenizer: HfTokenizer;
  /** Training prompts (a `prompt` column), or a function giving round k's prompts (k = 1..iterations). */
  prompts: readonly Row[] | ((round: number) => readonly Row[]);
  judge: Judge | NormalJudge;
  iterations: number;
  /** Per-round training settings; output_dir is the run's root, each round trains in output_dir/round-k. */
  args: DPOConfig;
  refUpdate?: RefUpdate;
  generation?: RoundGeneration;
  heldOut?: HeldOutOptions | null;
  /** More per-round metrics (round 0 = before training), e.g. greedy accuracy; merged into the record. */
  evaluate?: (model: CausalLM, round: number) => Record<string, number> | Promise<Record<string, number>>;
  /** Continue a run in output_dir (complete rounds are skipped, an interrupted one continues). */
  resume?: boolean;
  /** How a round's trainer runs (default: new DPOTrainer(init).train()); the CLI passes its progress/signals runner. Returns null when interrupted. */
  train?: (init: DPOTrainerInit, resumeFromCheckpoint: string | null, round: number) => Promise<DPOTrainer | null>;
  onPairs?: (round: number, stats: PairsStats) => void;
  onRound?: (r: RoundRecord) => void;
  warn?: (msg: string) => void;
  modelNameOrPath?: string;
}

export interface IterativeDPOResult {
  records: RoundRecord[];
  /** False when a round's training was interrupted (its checkpoint is saved; resume continues it). */
  completed: boolean;
}

export const roundDir = (outputDir: string, k: number) => join(outputDir, `round-${k}`);

function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new DpoError(`${path}: cannot be read (${(e as Error).message.split('\n')[0]}); delete that round's directory to redo it`);
  }
}

/** Copies `src`'s parameters into `dst` (same architecture). */
function copyWeights(dst: CausalLM, src: CausalLM): void {
  const from = new Map(src.namedParameters());
  for (const [name, p] of dst.namedParameters()) {
    const s = from.get(name);
    if (!s || s.size !== p.size) throw new DpoError(`resume: parameter ${name} of the saved round does not match the model; resume with the same --model_name_or_path`);
    p.data.set(s.data);
  }
}

/**
 * Runs `iterations` rounds of sample → judge → train → evaluate. Returns every round's record
 * (round 0 first); each is also in output_dir/round-k/round.json.
 *
 * @example
 * const { records } = await iterativeDPO({
 *   model, tokenizer, prompts, judge: (p, c) => (isRight(p, c) ? 1 : 0), iterations: 3,
 *   args: new DPOConfig({ output_dir: 'runs/online', per_device_train_batch_size: 8, learning_rate: 5e-6 }),
 *   heldOut: { prompts: heldOutPrompts },
 * });
 */
export async function iterativeDPO(o: IterativeDPOOptions): Promise<IterativeDPOResult> {
  const K = o.iterations;
  if (!Number.isInteger(K) || K < 1) throw new DpoError(`iterations must be a whole number ≥ 1, got ${K}`);
  const refUpdate = o.refUpdate ?? 'round';
  if (!REF_UPDATES.includes(refUpdate)) throw new DpoError(`ref_update must be one of ${REF_UPDATES.join(', ')}, got ${String(refUpdate)}`);
  if (loraLayers(o.model).length) throw new DpoError('iterative DPO trains the full model; merge the adapter first (dpo merge) and start from the merged model');
  const judge: NormalJudge = typeof o.judge === 'object' && o.judge !== null && 'kind' in o.judge ? (o.judge as NormalJudge) : normaliseJudge(o.judge);
  const root = o.args.outputDir;
  mkdirSync(root, { recursive: true });
  if (!o.resume && existsSync(join(roundDir(root, 1), 'round.json'))) {
    throw new DpoError(`${root} already holds a finished round of an iterative run; continue it with --resume_from_checkpoint true, or choose another --output_dir`);
  }
  const g = o.generation ?? {};
  const seed = o.args.seed;
  const initial = cloneModel(o.model);
  let refSamples: SampledSet | null = null;
  const evaluateRound = async (k: number, base: Omit<RoundRecord, 'round'>): Promise<RoundRecord> => {
    const rec = { round: k, ...base } as RoundRecord;
    if (o.heldOut) {
      const r = await judgeEval({
        model: o.model, refModel: initial, tokenizer: o.tokenizer, prompts: o.heldOut.prompts, judge,
        numSamples: o.heldOut.numSamples ?? 4, maxNewTokens: o.heldOut.maxNewTokens ?? g.maxNewTokens, seed: sampleSeed(seed, 7777, 0),
        judgeTimeout: g.judgeTimeout, refSamples,
      });
      refSamples = r.refSamples;
      Object.assign(rec, { heldout_score: r.score, heldout_ref_score: r.refScore, heldout_win_rate: r.winRate, heldout_kl: r.kl, heldout_kl_stderr: r.klStderr });
    }
    if (o.evaluate) Object.assign(rec, await o.evaluate(o.model, k));
    return rec;
  };
  const records: RoundRecord[] = [];
  const finish = (dir: string, rec: RoundRecord) => {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, 'round.json'), `${JSON.stringify(rec, null, 1)}\n`);
    records.push(rec);
    o.onRound?.(rec);
  };
  const empty = { beta: o.args.beta, pairs: 0, ties: 0, judge_failures: 0, steps: 0, train_loss: null, 'rewards/accuracies': null, 'rewards/margins': null };
  // Round 0: the starting model.
  const r0 = join(roundDir(root, 0), 'round.json');
  if (o.resume && existsSync(r0)) records.push(readJson<RoundRecord>(r0));
  else finish(roundDir(root, 0), await evaluateRound(0, empty));
  // Complete rounds are skipped; the model continues from the last one's weights.
  let start = 1;
  while (o.resume && start <= K && existsSync(join(roundDir(root, start), 'round.json'))) records.push(readJson<RoundRecord>(join(roundDir(root, start++), 'round.json')));
  if (start > 1) {
    copyWeights(o.model, loadCausalLM(roundDir(root, start - 1)).model);
    refSamples = null;
  }
  for (let k = start; k <= K; k++) {
    const dir = roundDir(root, k);
    mkdirSync(dir, { recursive: true });
    // 1. Fresh pairs from the current policy (kept, so a resumed round trains on the same ones).
    const pairsPath = join(dir, 'pairs.jsonl');
    let rows: Row[];
    let stats: Pick<PairsStats, 'written' | 'ties' | 'failed'>;
    if (o.resume && existsSync(pairsPath) && existsSync(join(dir, 'pairs_stats.json'))) {
      rows = readFileSync(pairsPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Row);
      stats = readJson(join(dir, 'pairs_stats.json'));
    } else {
      const prompts = typeof o.prompts === 'function' ? o.prompts(k) : o.prompts;
      const res = await generatePairs({
        model: o.model, tokenizer: o.tokenizer, prompts, judge, numGenerations: g.numGenerations ?? 4, maxNewTokens: g.maxNewTokens,
        temperature: g.temperature ?? 1, topK: g.topK, topP: g.topP, judgeTimeout: g.judgeTimeout, seed: sampleSeed(seed, 1000 + k, 0),
      });
      rows = res.rows;
      stats = res.stats;
      writeFileAtomic(pairsPath, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
      writeFileAtomic(join(dir, 'pairs_stats.json'), `${JSON.stringify({ written: stats.written, ties: stats.ties, failed: stats.failed })}\n`);
    }
    o.onPairs?.(k, stats as PairsStats);
    const failures = stats.failed.error + stats.failed['non-finite'] + stats.failed.timeout;
    const base = { ...empty, pairs: rows.length, ties: stats.ties, judge_failures: failures };
    if (!rows.length) {
      o.warn?.(`round ${k}: no pairs (${stats.ties} ties, ${failures} judge failures); the policy is unchanged this round`);
      finish(dir, await evaluateRound(k, base));
      continue;
    }
    // 2. Train on them: the reference is this round's starting policy, or the initial model.
    const args = new DPOConfig({ ...o.args.toJSON(), output_dir: dir, resume_from_checkpoint: null });
    const init: DPOTrainerInit = {
      model: o.model, args, trainDataset: Dataset.fromList(rows.map(({ prompt, chosen, rejected }) => ({ prompt, chosen, rejected }))),
      processingClass: o.tokenizer, refModel: refUpdate === 'initial' ? initial : null, modelNameOrPath: o.modelNameOrPath, warn: o.warn,
    };
    const resumeFrom = o.resume && checkpointDirs(dir).some((d) => existsSync(join(d, 'trainer_state.json'))) ? 'latest' : null;
    const trainer = o.train ? await o.train(init, resumeFrom, k) : await trainRound(init, resumeFrom);
    if (!trainer) return { records, completed: false };
    const last = [...trainer.state.log_history].reverse().find((e) => 'rewards/accuracies' in e && 'loss' in e);
    const end = trainer.state.log_history.find((e) => 'train_loss' in e);
    finish(dir, await evaluateRound(k, {
      ...base, steps: trainer.state.global_step, train_loss: end?.train_loss ?? null,
      'rewards/accuracies': last?.['rewards/accuracies'] ?? null, 'rewards/margins': last?.['rewards/margins'] ?? null,
    }));
  }
  return { records, completed: true };
}

async function trainRound(init: DPOTrainerInit, resumeFrom: string | null): Promise<DPOTrainer | null> {
  const t = new DPOTrainer(init);
  const out = await t.train({ resumeFromCheckpoint: resumeFrom });
  return out.interrupted ? null : t;
}

/**
 * Every round's logged training entries in one history: steps continue across rounds (round k's
 * step s is the sum of the earlier rounds' steps + s) and each entry carries its `round`.
 */
export function iterativeHistory(outputDir: string, iterations: number): LogEntry[] {
  const out: LogEntry[] = [];
  let offset = 0;
  for (let k = 1; k <= iterations; k++) {
    const p = join(roundDir(outputDir, k), 'trainer_state.json');
    if (!existsSync(p)) continue;
    const s = readJson<{ log_history: LogEntry[]; global_step: number }>(p);
    for (const e of s.log_history) out.push({ ...e, step: e.step + offset, round: k });
    offset += s.global_step;
  }
  return out;
}
