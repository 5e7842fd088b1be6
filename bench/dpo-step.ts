/**
 * Side-by-side DPO step benchmark (issue: performance). Workload A: full fine-tuning f32, 4 pairs per
 * step, max_length 512. Workload B: the seed's settings (LoRA r=64, alpha=16, dropout 0.1 on the
 * default targets, batch 1 × GA 8, lr 2e-4, beta 0.1). Each run is its own process (so peak RSS is
 * its own), in f32 and with bf16 (ours: bf16 GEMMs; TRL: bf16 autocast). Prints seconds per optimizer
 * step (median after the first), tokens/s, peak RSS and achieved GFLOPS against oneDNN's f32 / bf16
 * ceilings measured in this run; TRL 1.13 runs when the reference stack is installed (.venv-ref).
 * --gradient_checkpointing turns it on for both sides. Our batches are packed (no padding), each pair's
 * prompt once unless --no-share_prompt (or dropout is on). Achieved GFLOPS are effective: the
 * FLOPs of the padding-free, unshared step (8·params·tokens) over the time, so sharing raises them.
 *   node dist/bench/dpo-step.js [--steps 4] [--workload A|B|AB] [--no-trl] [--no-bf16] [--gradient_checkpointing] [--no-share_prompt] [--dir /tmp/dpo-bench]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadCausalLM } from '../src/models/load.js';
import { HfTokenizer } from '../src/tokenizer/tokenizer.js';
import { Dataset } from '../src/data/dataset.js';
import { DPOConfig } from '../src/dpo/config.js';
import { DPOTrainer } from '../src/dpo/trainer.js';
import { LoraConfig } from '../src/lora/config.js';
import { makeWorkload } from './workload.js';
import { printMachine } from './machine.js';

const argv = process.argv.slice(2);
const opt = (k: string, d: string) => (argv.includes(`--${k}`) ? argv[argv.indexOf(`--${k}`) + 1] : d);
const steps = Number(opt('steps', '4'));
const workloads = opt('workload', 'AB');
const dir = opt('dir', '/tmp/dpo-bench');
const runTrl = !argv.includes('--no-trl') && existsSync('.venv-ref/bin/python');
const precisions = argv.includes('--no-bf16') ? [false] : [false, true];
const child = argv.includes('--child') ? opt('child', '') : null;
const gradientCheckpointing = argv.includes('--gradient_checkpointing');
const sharePrompt = !argv.includes('--no-share_prompt');

interface Result {
  name: string;
  sPerStep: number;
  tokensPerS: number;
  peakRssGB: number;
  gflops: number;
}

const SETTINGS: Record<string, Record<string, unknown>> = {
  A: { per_device_train_batch_size: 4, gradient_accumulation_steps: 1, learning_rate: 1e-6, beta: 0.1, max_length: 512 },
  B: { per_device_train_batch_size: 1, gradient_accumulation_steps: 8, learning_rate: 2e-4, beta: 0.1, max_length: 512 },
};
const LORA = { r: 64, lora_alpha: 16, lora_dropout: 0.1 };

/** One of our runs, in this process (the --child side). */
async function ours(w: 'A' | 'B', bf16: boolean, modelDir: string, dataPath: string): Promise<Result> {
  const { model } = loadCausalLM(modelDir);
  const nParams = model.parameters().reduce((a, p) => a + p.size, 0);
  const tok = HfTokenizer.fromDir(modelDir);
  const ds = await Dataset.fromFile(dataPath);
  const args = new DPOConfig({ ...SETTINGS[w], output_dir: join(dir, `out-${w}`), max_steps: steps, logging_steps: 1, save_strategy: 'no', lr_scheduler_type: 'constant', seed: 42, bf16, gradient_checkpointing: gradientCheckpointing, share_prompt: sharePrompt });
  const times: number[] = [];
  const tokens: number[] = [];
  let t0 = performance.now();
  let stepTokens = 0;
  const t = new DPOTrainer({
    model, args, trainDataset: ds, processingClass: tok, warn: () => {},
    peftConfig: w === 'B' ? new LoraConfig(LORA) : null,
    callbacks: {
      onStep(p) {
        times.push((performance.now() - t0) / 1000);
        tokens.push(p.tokens);
        stepTokens = p.tokens;
        t0 = performance.now();
        process.stderr.write(`  ours ${w}${bf16 ? ' bf16' : ''} step ${p.step}: ${times[times.length - 1].toFixed(2)} s, ${stepTokens} tokens\n`);
      },
    },
  });
  t0 = performance.now();
  await t.train();
  const rest = times.slice(1).sort((a, b) => a - b);
  const mid = rest.length >> 1;
  const med = rest.length === 0 ? times[0] : rest.length % 2 ? rest[mid] : (rest[mid - 1] + rest[mid]) / 2;
  const tok1 = tokens.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, tokens.length - 1);
  const flop = (w === 'A' ? 8 : 6) * nParams * tok1;
  return { name: `ours ${w}${bf16 ? ' bf16' : ' f32'}`, sPerStep: med, tokensPerS: tok1 / med, peakRssGB: process.resourceUsage().maxRSS / 1024 ** 2, gflops: flop / med / 1e9 };
}

function trl(w: 'A' | 'B', modelDir: string, dataPath: string, bf16: boolean): Result | null {
  const args = [join('bench', 'trl_step.py'), '--model', modelDir, '--data', dataPath, '--steps', String(steps), '--workload', w, ...(bf16 ? ['--bf16'] : []), ...(gradientCheckpointing ? ['--gradient_checkpointing'] : [])];
  const r = spawnSync('.venv-ref/bin/python', args, { encoding: 'utf8', timeout: 3 * 3600 * 1000, maxBuffer: 1 << 26 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    process.stderr.write(`TRL ${w} failed:\n${r.stderr.slice(-3000)}\n`);
    return null;
  }
  const j = JSON.parse(line.slice(7));
  return { name: `TRL ${w}${bf16 ? ' bf16' : ' f32'}`, sPerStep: j.s_per_step, tokensPerS: j.tokens_per_s, peakRssGB: j.peak_rss_gb, gflops: NaN };
}

/** Runs one of ours in a fresh process so its peak RSS is its own. */
function oursInChild(w: 'A' | 'B', bf16: boolean): Result | null {
  const r = spawnSync(process.execPath, [process.argv[1], ...argv, '--child', `${w}${bf16 ? '-bf16' : ''}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    process.stderr.write(`ours ${w} failed (exit ${r.status})\n`);
    return null;
  }
  return JSON.parse(line.slice(7)) as Result;
}

async function main(): Promise<void> {
  const { modelDir, dataPath } = makeWorkload(dir);
  if (child) {
    const r = await ours(child[0] as 'A' | 'B', child.endsWith('-bf16'), modelDir, dataPath);
    console.log(`RESULT ${JSON.stringify(r)}`);
    return;
  }
  const legs = printMachine();
  const ceiling = legs[0] ?? { f32: NaN, bf16: NaN };
  const results: Result[] = [];
  for (const w of ['A', 'B'] as const) {
    if (!workloads.includes(w)) continue;
    for (const bf16 of precisions) {
      const r = oursInChild(w, bf16);
      if (r) results.push(r);
    }
    if (runTrl) {
      for (const bf16 of precisions) {
        const r = trl(w, modelDir, dataPath, bf16);
        if (r) results.push(r);
      }
    }
  }
  console.log(`\noneDNN matmul ceiling in this run (2048×1536×576): f32 ${ceiling.f32.toFixed(0)} GFLOPS, bf16 ${ceiling.bf16.toFixed(0)} GFLOPS; steps per run: ${steps}; gradient checkpointing: ${gradientCheckpointing ? 'on' : 'off'}; our batches: packed, ${sharePrompt ? 'prompts shared' : 'prompts not shared'}`);
  console.log('| run | s/step (median after first) | tokens/s | peak RSS (GB) | achieved GFLOPS (% of ceiling) |');
  console.log('|---|---|---|---|---|');
  for (const r of results) {
    const c = r.name.endsWith('bf16') ? ceiling.bf16 : ceiling.f32;
    const g = Number.isFinite(r.gflops) ? `${r.gflops.toFixed(0)} (${((100 * r.gflops) / c).toFixed(0)}%)` : '-';
    console.log(`| ${r.name} | ${r.sPerStep.toFixed(2)} | ${r.tokensPerS.toFixed(0)} | ${r.peakRssGB.toFixed(2)} | ${g} |`);
  }
  for (const w of ['A', 'B']) {
    for (const p of precisions.map((b) => (b ? 'bf16' : 'f32'))) {
      const o = results.find((r) => r.name === `ours ${w} ${p}`);
      for (const r of results.filter((x) => x.name.startsWith(`TRL ${w}`))) if (o) console.log(`ours ${w} ${p} / ${r.name}: time ×${(o.sPerStep / r.sPerStep).toFixed(2)}, peak RSS ×${(o.peakRssGB / r.peakRssGB).toFixed(2)}`);
    }
  }
}

main();
