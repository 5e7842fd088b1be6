/** Replays one pinned TRL run (test/fixtures/trl/<name>, from tools/fixtures/make_trl_runs.py) with our trainer. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCausalLM } from '../../src/models/load.js';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { Dataset } from '../../src/data/dataset.js';
import { DPOConfig } from '../../src/dpo/config.js';
import { DPOTrainer } from '../../src/dpo/trainer.js';
import { loadAdapter } from '../../src/lora/peft-io.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import type { StorageSpec } from '../../src/quant/load-stored.js';

export const TRL_FIXTURES = 'test/fixtures/trl';
const seed = JSON.parse(readFileSync('examples/dpo_example.json', 'utf8')) as Record<string, string[]>;
const conv = {
  prompt: seed.prompt.map((p) => [{ role: 'user', content: p }]),
  chosen: seed.chosen.map((c) => [{ role: 'assistant', content: c }]),
  rejected: seed.rejected.map((r) => [{ role: 'assistant', content: r }]),
};

export interface TrlRun {
  case: { name: string; model: string; data: string; lora?: string; args: Record<string, unknown> };
  common: Record<string, unknown>;
  log_history: Record<string, number>[];
}

/** Our training logs (entries with a loss) for TRL's run `name`, with `overrides` on its arguments. */
/** `load.storage`: the base linears' storage (quant/load-stored.ts); `load.prepare` edits the loaded model first. */
export async function replayTrlRun(name: string, overrides: Record<string, unknown> = {}, load: { storage?: StorageSpec; prepare?: (m: CausalLM) => void } = {}): Promise<{ run: TrlRun; ours: Record<string, number>[]; model: CausalLM }> {
  const run = JSON.parse(readFileSync(join(TRL_FIXTURES, name, 'run.json'), 'utf8')) as TrlRun;
  const dir = join('test/fixtures/models', run.case.model);
  const { model } = loadCausalLM(dir, { storage: load.storage });
  load.prepare?.(model);
  const tok = HfTokenizer.fromDir(dir);
  if (run.case.lora === 'continued') loadAdapter(model, join(TRL_FIXTURES, name, 'initial_adapter'));
  // TRL's recorded arguments as they are (bf16 false included, so our defaults do not matter); report_to / use_cpu mean nothing here.
  const { report_to: _r, use_cpu: _u, ...common } = run.common;
  const args = new DPOConfig({ ...common, ...run.case.args, ...overrides, output_dir: mkdtempSync(join(tmpdir(), 'dpo-parity-')) });
  const data = run.case.data === 'standard' ? seed : conv;
  const trainer = new DPOTrainer({ model, args, trainDataset: Dataset.fromDict(data), processingClass: tok, warn: () => {} });
  await trainer.train();
  return { run, ours: trainer.state.log_history.filter((h) => 'loss' in h) as Record<string, number>[], model };
}
