/**
 * Seeded fuzzing of everything a user hands the loaders (fuzz-cases.ts): every case must load or
 * fail with a DpoError, never another error, a hang, or runaway memory. The cases run in a child
 * process with a 1 GB JS heap, watched every 50 ms: above 2 GB RSS or past the time limit it is
 * killed and the test fails, naming the case that was running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const WORKER = join(process.cwd(), 'dist/test/io/fuzz-cases.js');
const RSS_CAP_KB = 2 * 1024 * 1024;
const TIME_LIMIT_MS = 30_000;

function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

interface Outcome { id: number; outcome: 'ok' | 'dpo' | 'other'; error?: string; stack?: string }

function runWorker(seed: number): Promise<{ starts: Map<number, string>; results: Outcome[]; killed: string | null; code: number | null; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--max-old-space-size=1024', WORKER], { env: { ...process.env, DPO_FUZZ_WORKER: '1', DPO_FUZZ_SEED: String(seed) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let killed: string | null = null;
    let peak = 0;
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (stderr += d));
    const watch = setInterval(() => {
      const kb = rssKb(child.pid!);
      peak = Math.max(peak, kb);
      if (kb > RSS_CAP_KB && !killed) {
        killed = `RSS ${Math.round(kb / 1024)} MB above the ${RSS_CAP_KB / 1024} MB cap`;
        child.kill('SIGKILL');
      } else if (Date.now() - t0 > TIME_LIMIT_MS && !killed) {
        killed = `still running after ${TIME_LIMIT_MS / 1000} s`;
        child.kill('SIGKILL');
      }
    }, 50);
    child.on('close', (code) => {
      clearInterval(watch);
      const starts = new Map<number, string>();
      const results: Outcome[] = [];
      for (const line of out.split('\n')) {
        if (!line.trim()) continue;
        const v = JSON.parse(line);
        if ('start' in v) starts.set(v.start, v.what);
        else results.push(v);
      }
      resolve({ starts, results, killed, code, stderr: `${stderr.slice(-2000)} (peak RSS ${Math.round(peak / 1024)} MB)`, ms: Date.now() - t0 });
    });
  });
}

test('fuzzed configs, checkpoints, tokenizers, data rows and YAML: each loads or fails with a DpoError', async () => {
  const r = await runWorker(20251201);
  const last = r.results.length;
  if (r.killed || r.code !== 0) assert.fail(`fuzz worker ${r.killed ?? `exited with ${r.code}`} during case ${last}: ${r.starts.get(last)}\n${r.stderr}`);
  const other = r.results.filter((x) => x.outcome === 'other');
  assert.deepEqual(other.map((x) => `${r.starts.get(x.id)}\n  → ${x.error}\n  at ${x.stack}`), [], 'cases failing with a non-DpoError');
  assert.ok(r.results.length >= 350, `${r.results.length} cases`);
  // The mutations must reach both outcomes, or the fuzzing means nothing.
  const count = (o: string) => r.results.filter((x) => x.outcome === o).length;
  assert.ok(count('ok') > 20 && count('dpo') > 100, `ok ${count('ok')}, dpo ${count('dpo')}`);
  assert.ok(r.ms < TIME_LIMIT_MS);
});
