/**
 * How many threads the native core uses: `DPO_NUM_THREADS` when set, else what this process may
 * actually run on: the CPUs in its affinity mask (`os.availableParallelism()`, as `taskset` or a
 * container's cpuset leave them) capped by a cgroup CPU quota (`cpu.max` of cgroup v2, or v1's
 * cfs quota), since OpenMP's default counts every core and oversubscribes a throttled container.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { DpoError } from '../errors.js';

/** CPUs allowed by a cgroup quota (ceil(quota / period)), or null when none is set. */
export function cgroupCpuLimit(read: (p: string) => string | null = readOrNull): number | null {
  const v2 = read('/sys/fs/cgroup/cpu.max');
  if (v2) {
    const [quota, period] = v2.trim().split(/\s+/);
    if (quota !== 'max' && Number(quota) > 0 && Number(period) > 0) return Math.max(1, Math.ceil(Number(quota) / Number(period)));
    return null;
  }
  const q = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
  const p = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  return q > 0 && p > 0 ? Math.max(1, Math.ceil(q / p)) : null;
}

function readOrNull(p: string): string | null {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

/** The thread count to use (see the module comment). */
export function defaultThreadCount(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.DPO_NUM_THREADS;
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 4096) throw new DpoError(`DPO_NUM_THREADS=${raw} is not a thread count; set a whole number ≥ 1 or unset it to use every CPU this process may use`);
    return n;
  }
  const cpus = availableParallelism();
  const quota = cgroupCpuLimit();
  return quota === null ? cpus : Math.min(cpus, quota);
}
