/**
 * Load time vs reading the checkpoint once (issue 14's target: load ≤ 2× read-once). For a
 * checkpoint directory and each storage mode, one fresh process does what `dpo train` does before
 * its first step with LoRA r=16 on all linear layers: the model load (config, headers, weights in
 * the mode's storage), the tokenizer, the LoRA wrapping and the reference setup (adapters off), each
 * timed, and its peak RSS. "read once" reads every safetensors file of the directory through the page
 * cache as it is (as bench/quant-scaling.ts does). Figures on a shared machine are indicative.
 *
 *   node dist/bench/load-time.js DIR [--modes f32,bf16,int8,nf4,fp4] [--repeat 1] [--prof DIR]
 *
 * Modes: f32 (bf16 checkpoint widened to float32), bf16 (`--dtype bfloat16`: zero-copy views of the
 * memory map), int8 (`--load_in_8bit`), nf4 (`--load_in_4bit`, nf4, nested quant), fp4 (`--load_in_4bit
 * --bnb_4bit_quant_type fp4`). `--prof DIR` writes a V8 CPU profile of each child (node --cpu-prof).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCausalLM } from '../src/models/load.js';
import { HfTokenizer } from '../src/tokenizer/tokenizer.js';
import { applyLoraConfig } from '../src/lora/apply.js';
import { loraConfigFromOptions } from '../src/lora/config.js';
import { adaptersOffReference } from '../src/dpo/reference.js';
import { weightStorageFor } from '../src/quant/options.js';

/** Each mode's TRL flags, as `dpo train` takes them. */
export const LOAD_MODES: Record<string, Record<string, unknown>> = {
  f32: {},
  bf16: { dtype: 'bfloat16' },
  int8: { load_in_8bit: true },
  nf4: { load_in_4bit: true, bnb_4bit_quant_type: 'nf4', use_bnb_nested_quant: true },
  fp4: { load_in_4bit: true, bnb_4bit_quant_type: 'fp4' },
};

interface Timing { modelS: number; tokenizerS: number; loraS: number; referenceS: number; totalS: number; cpuS: number; peakMb: number; startMb: number }

/** The safetensors files of a checkpoint directory (one file or the shards). */
export function weightFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort().map((f) => join(dir, f));
}

/** Seconds (wall and CPU) to read `files` once, front to back (page cache as it is). */
export function readOnce(files: readonly string[]): { wallS: number; cpuS: number } {
  const t = performance.now(), c0 = process.cpuUsage(), buf = Buffer.alloc(1 << 24);
  for (const f of files) {
    const fd = openSync(f, 'r');
    while (readSync(fd, buf, 0, buf.length, null) > 0) { /* read */ }
    closeSync(fd);
  }
  const c = process.cpuUsage(c0);
  return { wallS: (performance.now() - t) / 1000, cpuS: (c.user + c.system) / 1e6 };
}

/** In this process: what `dpo train` does before the first step, timed part by part. */
function child(dir: string, mode: string): Timing {
  const startMb = process.memoryUsage().rss / 2 ** 20;
  const s = (t: number) => (performance.now() - t) / 1000;
  const t0 = performance.now(), c0 = process.cpuUsage();
  const storage = weightStorageFor(LOAD_MODES[mode], { lora: true, where: 'load-time' });
  const { model } = loadCausalLM(dir, { storage });
  const modelS = s(t0);
  let t = performance.now();
  HfTokenizer.fromDir(dir);
  const tokenizerS = s(t);
  t = performance.now();
  const cfg = loraConfigFromOptions({ lora_r: 16, lora_alpha: 32, lora_dropout: 0.05, use_rslora: false, use_dora: false, lora_target_modules: ['all-linear'] });
  applyLoraConfig(model, cfg, 42);
  const loraS = s(t);
  t = performance.now();
  adaptersOffReference(model);
  const referenceS = s(t);
  const totalS = s(t0), c = process.cpuUsage(c0);
  return { modelS, tokenizerS, loraS, referenceS, totalS, cpuS: (c.user + c.system) / 1e6, peakMb: process.resourceUsage().maxRSS / 1024, startMb };
}

function runChild(dir: string, mode: string, prof: string | null): Timing | string {
  const args = [...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof, '--cpu-prof-name', `load-${mode}.cpuprofile`] : []), fileURLToPath(import.meta.url), '--child', dir, mode];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = r.stdout?.split('\n').find((l) => l.startsWith('LOAD '));
  if (r.status !== 0 || !line) return (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').pop() ?? 'failed';
  return JSON.parse(line.slice(5)) as Timing;
}

function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}

function main(): void {
  if (process.argv[2] === '--child') {
    console.log(`LOAD ${JSON.stringify(child(process.argv[3], process.argv[4]))}`);
    return;
  }
  const dir = process.argv[2];
  if (!dir || dir.startsWith('--')) {
    console.error('usage: node dist/bench/load-time.js DIR [--modes f32,bf16,int8,nf4,fp4] [--repeat 1] [--prof DIR]');
    process.exit(2);
  }
  const modes = opt('modes', Object.keys(LOAD_MODES).join(',')).split(',');
  for (const m of modes) if (!LOAD_MODES[m]) throw new Error(`unknown mode ${m}; modes: ${Object.keys(LOAD_MODES).join(', ')}`);
  const repeat = Number(opt('repeat', '1')), prof = process.argv.includes('--prof') ? opt('prof', '') : null;
  const files = weightFiles(dir);
  const bytes = files.reduce((a, f) => a + statSync(f).size, 0);
  const f = (x: number, d = 2) => x.toFixed(d);
  console.log(`${dir}: ${files.length} safetensors file${files.length > 1 ? 's' : ''}, ${f(bytes / 1e9)} GB`);
  console.log('| mode | read once s | model s | tokenizer s | LoRA s | reference s | total s | total / read | read once CPU s | total CPU s | CPU ratio | peak RSS MB |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const mode of modes) {
    for (let k = 0; k < repeat; k++) {
      const read = readOnce(files);
      const r = runChild(dir, mode, prof);
      if (typeof r === 'string') {
        console.log(`| ${mode} | ${f(read.wallS)} | failed: ${r} |`);
        continue;
      }
      console.log(`| ${mode} | ${f(read.wallS)} | ${f(r.modelS)} | ${f(r.tokenizerS, 3)} | ${f(r.loraS, 3)} | ${f(r.referenceS, 4)} | ${f(r.totalS)} | ${f(r.totalS / read.wallS, 1)} | ${f(read.cpuS)} | ${f(r.cpuS)} | ${f(r.cpuS / read.cpuS, 1)} | ${f(r.peakMb, 0)} |`);
    }
  }
  console.log(`(peak RSS of the loading process, which starts at ~${f(process.memoryUsage().rss / 2 ** 20, 0)} MB; LoRA r=16 all-linear; CPU = user + system seconds of all threads, steadier than wall time on a busy machine)`);
}

main();
