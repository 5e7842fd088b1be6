/**
 * Where a benchmark ran: the CPU model and, for the native ISA and the AVX2 cap, what runs the
 * math and oneDNN's f32 / bf16 GEMM ceilings, each measured in a fresh process (the ISA is fixed
 * at start-up) during this run. `node dist/bench/machine.js` prints the table alone.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { getBackend } from '../src/backend/index.js';
import { loadNativeBackend } from '../src/backend/native/index.js';
import { matmulCeiling, type NativeAddon } from '../src/backend/native/kernels.js';
import { createRequire } from 'node:module';
import { join } from 'node:path';

export const AVX2_CAP = { ONEDNN_MAX_CPU_ISA: 'AVX2', DPO_MAX_CPU_ISA: 'avx2' };
const M = 2048, N = 1536, K = 576;

export interface Leg {
  leg: string;
  kernelIsa: string;
  onednnIsa: string;
  bf16Units: boolean;
  threads: number;
  f32: number;
  bf16: number;
}

/** oneDNN's GEMM ceiling in this process, GFLOPS at 2048×1536×576 (bf16: the route --bf16 takes here). */
function ceiling(bf16: boolean): number {
  const addon = createRequire(import.meta.url)(join(process.cwd(), 'native/build/Release/dpo_native.node')) as NativeAddon;
  return (2 * M * N * K) / matmulCeiling(addon, M, N, K, 20, bf16) / 1e9;
}

/** This process's leg: what runs the math, and both ceilings. */
function measure(leg: string): Leg {
  return { leg, ...getBackend().describe(), f32: ceiling(false), bf16: ceiling(true) };
}

/**
 * oneDNN's f32 GEMM ceiling in this process now (GFLOPS at 2048×1536×576, about a second), NaN
 * without the addon. On a shared machine it moves by tens of percent between hours, so the scaling
 * benchmark measures it before each run and prints it beside the run's row.
 */
export function f32CeilingNow(): number {
  try {
    return ceiling(false);
  } catch {
    return NaN;
  }
}

/** The legs measured in child processes: as this process runs, and under the AVX2 cap. */
export function machineLegs(): Leg[] {
  const legs: Leg[] = [];
  for (const [leg, env] of [['native', {}], ['AVX2 cap', AVX2_CAP]] as const) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', leg], { encoding: 'utf8', env: { ...process.env, ...env } });
    const line = r.stdout?.split('\n').find((l) => l.startsWith('LEG '));
    if (line) legs.push(JSON.parse(line.slice(4)) as Leg);
    else process.stderr.write(`ceiling leg ${leg} failed (exit ${r.status}): ${r.stderr}\n`);
  }
  return legs;
}

/** The CPU line and the ceilings table as markdown lines (for a report file), with the legs measured. */
export function describeMachine(): { lines: string[]; legs: Leg[] } {
  const c = cpus();
  const legs = machineLegs();
  const lines = [`CPU: ${c[0]?.model?.trim() ?? 'unknown'} (${process.arch}, ${c.length} logical CPUs)`, '',
    `| leg | kernels | oneDNN ISA | bf16 route | threads | f32 ceiling GFLOPS | bf16 ceiling GFLOPS (${M}×${N}×${K}) |`, '|---|---|---|---|---|---|---|'];
  for (const l of legs) lines.push(`| ${l.leg} | ${l.kernelIsa} | ${l.onednnIsa} | ${l.bf16Units ? 'bf16 units' : 'f32 GEMMs on bf16-rounded operands'} | ${l.threads} | ${l.f32.toFixed(0)} | ${l.bf16.toFixed(0)} |`);
  return { lines, legs };
}

export function printMachine(): Leg[] {
  const { lines, legs } = describeMachine();
  console.log(lines.join('\n'));
  return legs;
}

const argv = process.argv.slice(2);
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (argv[0] === '--child') {
    if (!loadNativeBackend().backend) process.exit(1);
    console.log(`LEG ${JSON.stringify(measure(argv[1]))}`);
  } else printMachine();
}
