/** `dpo cpu`: what will run the math on this machine (CPU model, ISA of each layer, bf16 route, threads). */
import { cpus } from 'node:os';
import { describeBf16, describeCompute, getBackend } from '../backend/index.js';

export function cpuModel(): string {
  return cpus()[0]?.model?.trim() || 'unknown CPU';
}

export function cpuCommand(): void {
  const info = getBackend().describe();
  console.log(`cpu: ${cpuModel()} (${process.arch}, ${cpus().length} logical CPUs)`);
  console.log(describeCompute(info));
  console.log(describeBf16(info));
  const caps = ['DPO_MAX_CPU_ISA', 'ONEDNN_MAX_CPU_ISA', 'DPO_NUM_THREADS'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`);
  if (caps.length) console.log(`set: ${caps.join(' ')}`);
}
