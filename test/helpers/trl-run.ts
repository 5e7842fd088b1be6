/**
 * Replays one pinned TRL run (test/fixtures/trl/<name>, from tools/fixtures/make_trl_runs.py) with our
 * trainer: the same data, eval sets, resume and final evaluation as the TRL run recorded.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCausalLM } from '../../src/models/load.js';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { Dataset } from '../../src/data/dataset.js';
import { DPOConfig } from '../../src/dpo/config.js';
import { DPOTrainer } from '../../src/dpo/trainer.js';
import { loadAdapter } from '../../src/lora/peft-io.js';
import { LoraConfig } from '../../src/lora/config.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import type { StorageSpec } from '../../src/quant/load-stored.js';

export const TRL_FIXTURES = 'test/fixtures/trl';
const seed = JSON.parse(readFileSync('examples/dpo_example.json', 'utf8')) as Record<string, string[]>;
const conv = {
  prompt: seed.prompt.map((p) => [{ role: 'user', content: p }]),
  chosen: seed.chosen.map((c) => [{ role: 'assistant', content: c }]),
  rejected: seed.rejected.map((r) => [{ role: 'assistant', content: r }]),
};
/** The eval sets of the fixture script (EVAL_SETS): "swapped" exchanges chosen and rejected. */
const EVAL_SETS: Record<string, Record<string, unknown[]>> = { standard: seed, swapped: { prompt: seed.prompt, chosen: seed.rejected, rejected: seed.chosen } };

export interface TrlRun {
  case: { name: string; model: string; data: string; lora?: string; peft?: Record<string, unknown>; eval?: string | Record<string, string>; resume_at?: number; evaluate_after?: boolean; args: Record<string, unknown> };
  common: Record<string, unknown>;
  /** Every log entry but the run summary: training steps and evaluations. */
  log_history: Record<string, number>[];
  /** trainer.evaluate() after training (evaluate_after). */
  evaluate_after?: Record<string, number>;
  /** trainer_state's best-model fields (best_model_checkpoint as checkpoint-N), when checkpoints were saved. */
  state?: { best_metric: number | null; best_global_step: number | null; best_model_checkpoint: string | null };
  /** The checkpoint-N directories left in output_dir. */
  checkpoints?: string[];
}

export interface TrlReplay {
  run: TrlRun;
  /** Our log entries (the run summary left out), as the fixture's log_history. */
  ours: Record<string, number>[];
  trainer: DPOTrainer;
  evaluateAfter?: Record<string, number>;
  /** The model loaded for the first trainer (a resume trains another). */
  model: CausalLM;
}

/** Our training logs (entries with a loss) for TRL's run `name`, with `overrides` on its arguments. */
/** `opts.storage`: the base linears' storage (quant/load-stored.ts); `opts.prepare` edits the loaded model first; `opts.resumeAt` overrides the case's resume step. */
export async function replayTrlRun(name: string, overrides: Record<string, unknown> = {}, opts: { resumeAt?: number; storage?: StorageSpec; prepare?: (m: CausalLM) => void } = {}): Promise<TrlReplay> {
  const run = JSON.parse(readFileSync(join(TRL_FIXTURES, name, 'run.json'), 'utf8')) as TrlRun;
  const dir = join('test/fixtures/models', run.case.model);
  const { model } = loadCausalLM(dir, { storage: opts.storage });
  opts.prepare?.(model);
  const tok = HfTokenizer.fromDir(dir);
  // continued / peft: the adapter TRL started from (PEFT saved it); fresh: TRL's peft_config, applied by our trainer.
  if (run.case.lora === 'continued' || run.case.lora === 'peft') loadAdapter(model, join(TRL_FIXTURES, name, 'initial_adapter'));
  const peftConfig = run.case.lora === 'fresh' ? new LoraConfig({ ...run.case.peft, task_type: 'CAUSAL_LM' }) : null;
  // TRL's recorded arguments as they are (bf16 false included, so our defaults do not matter); report_to / use_cpu mean nothing here.
  const { report_to: _r, use_cpu: _u, ...common } = run.common;
  const args = new DPOConfig({ ...common, ...run.case.args, ...overrides, output_dir: mkdtempSync(join(tmpdir(), 'dpo-parity-')) });
  const data = run.case.data === 'standard' ? seed : conv;
  const ev = run.case.eval;
  const evalDataset = ev === undefined ? null : typeof ev === 'string' ? Dataset.fromDict(EVAL_SETS[ev]) : Object.fromEntries(Object.entries(ev).map(([k, v]) => [k, Dataset.fromDict(EVAL_SETS[v])]));
  const make = (m: typeof model) => new DPOTrainer({ model: m, args, trainDataset: Dataset.fromDict(data), evalDataset, processingClass: tok, peftConfig, warn: () => {} });
  let trainer = make(model);
  await trainer.train();
  const resumeAt = opts.resumeAt ?? run.case.resume_at;
  if (resumeAt) {
    // TRL resumed on the initial model; this resume starts from checkpoint-N's own (trained) weights, so
    // only the reference log-probs stored in the checkpoint can give TRL's numbers.
    const ck = join(args.outputDir, `checkpoint-${resumeAt}`);
    const resumed = run.case.lora === 'continued' ? loadCausalLM(dir).model : loadCausalLM(ck).model;
    if (run.case.lora === 'continued') loadAdapter(resumed, ck);
    trainer = make(resumed);
    await trainer.train({ resumeFromCheckpoint: ck });
  }
  const ours = trainer.state.log_history.filter((h) => !('train_runtime' in h)) as Record<string, number>[];
  const evaluateAfter = run.case.evaluate_after ? (trainer.evaluate() as Record<string, number>) : undefined;
  return { run, ours, trainer, evaluateAfter, model };
}

const SKIP = new Set(['step', 'epoch']);
/** Wall-clock metrics (eval_runtime, eval_samples_per_second, ...). */
export const TIMING = /_(runtime|per_second)$/;
export const relErr = (a: number, b: number, floor = 1e-3) => Math.abs(a - b) / Math.max(Math.abs(b), floor);
/**
 * The rewards are β·(differences of log-prob sums of magnitude ~10²): their float32 rounding is
 * absolute (GEMM summation order differs between TRL's padded rows and our packed ones), so a
 * near-zero reward at step 1 is compared against a floor of 1e-2, not against itself.
 */
const floorOf = (k: string) => (k.startsWith('rewards/') || k.startsWith('eval_rewards/') ? 1e-2 : 1e-3);

/**
 * Every logged metric of `ours` against TRL's log_history: within 1e-4 relative at step 1 (and an
 * evaluation at step 0), 1e-3 later. Returns one line per metric outside; `skip` leaves metrics out.
 */
export function metricsOutside(reference: Record<string, number>[], ours: Record<string, number>[], skip: (k: string, step: number) => boolean = () => false): string[] {
  const worst: string[] = [];
  reference.forEach((ref, i) => {
    const tol = ref.step <= 1 ? 1e-4 : 1e-3;
    for (const [k, v] of Object.entries(ref)) {
      if (SKIP.has(k) || TIMING.test(k) || typeof v !== 'number' || skip(k, ref.step)) continue;
      if (!(k in (ours[i] ?? {}))) {
        worst.push(`entry ${i} (step ${ref.step}) lacks metric ${k}`);
        continue;
      }
      const err = relErr(ours[i][k], v, floorOf(k));
      if (err > tol) worst.push(`step ${ref.step} ${k}: ours ${ours[i][k]} vs TRL ${v} (rel ${err.toExponential(2)})`);
    }
    if (ours[i]?.step !== ref.step || Math.abs(ours[i].epoch - ref.epoch) > 1e-9) worst.push(`entry ${i}: step/epoch ${ours[i]?.step}/${ours[i]?.epoch} vs TRL ${ref.step}/${ref.epoch}`);
  });
  return worst;
}
