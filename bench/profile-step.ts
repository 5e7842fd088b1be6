/**
 * Where a DPO step's time goes: wraps every kernel of the active backend with a timer, runs a few
 * steps of workload A or B (bench/workload.ts, bench/dpo-step.ts) and prints time per kernel, plus the rest (TypeScript
 * bookkeeping, allocation, data).
 *   node dist/bench/profile-step.js [--steps 2] [--workload A|B] [--bf16] [--gradient_checkpointing] [--no-share_prompt] [--first] [--dir /tmp/dpo-bench]
 */
import { performance } from 'node:perf_hooks';
import { getBackend } from '../src/backend/index.js';
import type { Kernels } from '../src/backend/types.js';
import { loadCausalLM } from '../src/models/load.js';
import { HfTokenizer } from '../src/tokenizer/tokenizer.js';
import { Dataset } from '../src/data/dataset.js';
import { DPOConfig } from '../src/dpo/config.js';
import { DPOTrainer } from '../src/dpo/trainer.js';
import { LoraConfig } from '../src/lora/config.js';
import { makeWorkload } from './workload.js';

const argv = process.argv.slice(2);
const opt = (k: string, d: string) => (argv.includes(`--${k}`) ? argv[argv.indexOf(`--${k}`) + 1] : d);
const steps = Number(opt('steps', '2'));
const { modelDir, dataPath } = makeWorkload(opt('dir', '/tmp/dpo-bench'));

const spent = new Map<string, number>();
const k = getBackend().kernels as unknown as Record<string, (...a: unknown[]) => unknown>;
let on = false;
for (const name of Object.keys(k)) {
  const f = k[name];
  k[name] = (...args: unknown[]) => {
    if (!on) return f(...args);
    const t0 = performance.now();
    const r = f(...args);
    spent.set(name, (spent.get(name) ?? 0) + performance.now() - t0);
    return r;
  };
}
void (null as unknown as Kernels);

const { model } = loadCausalLM(modelDir);
// Workload B (the seed's LoRA settings) with --workload B; A otherwise.
const B = opt('workload', 'A') === 'B';
const t = new DPOTrainer({
  model, peftConfig: B ? new LoraConfig({ r: 64, lora_alpha: 16, lora_dropout: 0.1 }) : null,
  args: new DPOConfig({ output_dir: '/tmp/dpo-bench/profile', per_device_train_batch_size: B ? 1 : 4, gradient_accumulation_steps: B ? 8 : 1, learning_rate: B ? 2e-4 : 1e-6,
    max_steps: steps + 1, max_length: 512, save_strategy: 'no', logging_steps: 1,
    bf16: argv.includes('--bf16'), gradient_checkpointing: argv.includes('--gradient_checkpointing'),
    share_prompt: !argv.includes('--no-share_prompt') }),
  trainDataset: await Dataset.fromFile(dataPath), processingClass: HfTokenizer.fromDir(modelDir), warn: () => {},
});
// --first profiles the first step alone (warm-up: allocation, primitive creation); else the steps after it.
const first = argv.includes('--first');
let t0 = performance.now();
let total = 0;
if (first) on = true;
t.callbacks.onStep = (p) => {
  if (first) {
    if (p.step === 1) {
      total = performance.now() - t0;
      on = false;
      t.stopRequested = true;
    }
  } else if (p.step === 1) {
    on = true;
    t0 = performance.now();
  } else total = performance.now() - t0;
};
t0 = performance.now();
await t.train();
const perStep = first ? 1 : steps;
const sum = [...spent.values()].reduce((a, b) => a + b, 0);
console.log(`| kernel | s/step | share |\n|---|---|---|`);
for (const [name, ms] of [...spent].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`| ${name} | ${(ms / perStep / 1000).toFixed(2)} | ${((100 * ms) / total).toFixed(1)}% |`);
console.log(`| (everything outside kernels) | ${((total - sum) / perStep / 1000).toFixed(2)} | ${((100 * (total - sum)) / total).toFixed(1)}% |`);
console.log(`| total | ${(total / perStep / 1000).toFixed(2)} | 100% |`);
