/**
 * The scaling benchmark of frozen-weight storage (issue 14): for each Qwen2.5 shape and storage
 * mode (float32, dtype bfloat16, load_in_8bit, load_in_4bit nf4 + nested quant), with and without
 * gradient checkpointing, one `dpo train` process each (LoRA r=16 on all linear layers): load time,
 * first-step time, s/step (median after the first), peak RSS and the printed estimate, in one table.
 * Checkpoints are made by bench/make-qwen-checkpoint.ts (random bf16 weights, fixed seed) unless
 * present. Figures on a shared machine are indicative.
 *
 *   node dist/bench/quant-scaling.js [--sizes 0.5b,1.5b] [--modes f32,bf16,int8,nf4] [--gc on,off]
 *     [--steps 3] [--grad_accum 8] [--max_length 1024] [--prompt_words 49] [--completion_words 73] [--dir /tmp/dpo-quant-bench]
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeQwenCheckpoint } from './make-qwen-checkpoint.js';
import { writeSyntheticJsonl } from './synthetic-pairs.js';

const MODES: Record<string, string[]> = {
  f32: [],
  bf16: ['--dtype', 'bfloat16'],
  int8: ['--load_in_8bit'],
  nf4: ['--load_in_4bit', '--bnb_4bit_quant_type', 'nf4', '--use_bnb_nested_quant'],
};

function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}

interface Row { size: string; mode: string; gc: string; loadS: number; firstS: number; stepS: number; peakGb: number; estGb: number; ok: boolean; note: string }

/** Seconds to read `path` once (page cache as it is), the bound for load time. */
function readOnce(path: string): number {
  const t = performance.now(), fd = openSync(path, 'r'), buf = Buffer.alloc(1 << 24);
  while (readSync(fd, buf, 0, buf.length, null) > 0) { /* read */ }
  closeSync(fd);
  return (performance.now() - t) / 1000;
}

function runOne(model: string, data: string, mode: string, gc: string, o: { steps: number; accum: number; maxLength: number }): Promise<Row & { size: string }> {
  const args = ['dist/src/cli/main.js', 'train', '--model_name_or_path', model, '--dataset_name', data, '--output_dir', join(model, `out-${mode}-${gc}`),
    '--per_device_train_batch_size', '1', '--gradient_accumulation_steps', String(o.accum), '--max_steps', String(o.steps), '--logging_steps', '1',
    '--max_length', String(o.maxLength), '--use_peft', '--lora_r', '16', '--lora_alpha', '32', '--lora_target_modules', 'all-linear', '--save_strategy', 'no',
    '--learning_rate', '2e-4', gc === 'on' ? '--gradient_checkpointing' : '--no_gradient_checkpointing', ...MODES[mode]];
  return new Promise((resolve) => {
    const t0 = performance.now();
    const marks: { model?: number; est?: number; steps: number[] } = { steps: [] };
    let peak = NaN, est = NaN, err = '';
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const now = (performance.now() - t0) / 1000;
        if (line.startsWith('model ')) marks.model = now;
        else if (line.startsWith('memory: estimated peak')) {
          marks.est = now;
          est = gbOf(/estimated peak ([\d.]+ [kMG]B)/.exec(line)?.[1]);
        } else if (/^step \d+\//.test(line)) marks.steps.push(now);
        else if (line.startsWith('memory: measured peak RSS')) peak = gbOf(/RSS ([\d.]+ [kMG]B)/.exec(line)?.[1]);
      }
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => {
      const s = marks.steps;
      const gaps = s.slice(1).map((t, i) => t - s[i]).sort((a, b) => a - b);
      resolve({
        size: '', mode, gc, ok: code === 0, note: code === 0 ? '' : err.trim().split('\n').pop() ?? `exit ${code}`,
        loadS: marks.model ?? NaN, firstS: s.length && marks.est !== undefined ? s[0] - marks.est : NaN,
        stepS: gaps.length ? gaps[Math.floor(gaps.length / 2)] : NaN, peakGb: peak, estGb: est,
      });
    });
  });
}

function gbOf(s: string | undefined): number {
  if (!s) return NaN;
  const [v, u] = s.split(' ');
  return Number(v) * ({ kB: 1e-6, MB: 1e-3, GB: 1 } as Record<string, number>)[u];
}

async function main(): Promise<void> {
  const dir = opt('dir', '/tmp/dpo-quant-bench');
  const sizes = opt('sizes', '0.5b,1.5b').split(','), modes = opt('modes', 'f32,bf16,int8,nf4').split(','), gcs = opt('gc', 'on,off').split(',');
  const o = { steps: Number(opt('steps', '3')), accum: Number(opt('grad_accum', '8')), maxLength: Number(opt('max_length', '1024')) };
  const pw = Number(opt('prompt_words', '49')), cw = Number(opt('completion_words', '73'));
  const data = join(dir, `pairs-${pw}-${cw}.jsonl`);
  // ~200 prompt and ~300 completion tokens with the tiny test tokenizer at the defaults.
  if (!existsSync(data)) await writeSyntheticJsonl(data, Math.max(16, o.steps * o.accum), { seed: 7, promptWords: [pw - 1, pw + 1], completionWords: [cw - 3, cw + 3] });
  const rows: Row[] = [];
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  for (const size of sizes) {
    const model = join(dir, `qwen2.5-${size}`);
    if (!existsSync(join(model, 'model.safetensors'))) makeQwenCheckpoint(size, model);
    const fileS = readOnce(join(model, 'model.safetensors'));
    console.log(`${size}: ${(statSync(join(model, 'model.safetensors')).size / 1e9).toFixed(2)} GB checkpoint, read once in ${fileS.toFixed(1)} s`);
    for (const mode of modes) for (const gc of gcs) {
      const r = await runOne(model, data, mode, gc, o);
      r.size = size;
      rows.push(r);
      console.log(`  ${mode} gc ${gc}: ${r.ok ? `load ${f(r.loadS)} s, first step ${f(r.firstS)} s, ${f(r.stepS)} s/step, peak RSS ${f(r.peakGb, 2)} GB, estimate ${f(r.estGb, 2)} GB` : `failed: ${r.note}`}`);
    }
  }
  console.log(`\nLoRA r=16 all-linear, batch 1 × accumulation ${o.accum}, ${o.steps} steps, max_length ${o.maxLength}\n`);
  console.log('| shape | storage | grad ckpt | load s | first step s | s/step | peak RSS GB | estimate GB | estimate/peak |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.size} | ${r.mode} | ${r.gc} | ${f(r.loadS)} | ${f(r.firstS)} | ${f(r.stepS)} | ${f(r.peakGb, 2)} | ${f(r.estGb, 2)} | ${f(r.estGb / r.peakGb, 2)} |${r.ok ? '' : ` failed: ${r.note}`}`);
}

await main();
