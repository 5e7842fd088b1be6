/**
 * What the CPU offers is decided once in the addon (cpu.cc), capped by DPO_MAX_CPU_ISA for our
 * kernels and ONEDNN_MAX_CPU_ISA for oneDNN; under every cap the kernels still agree with the
 * reference backend, `--bf16` still runs (bf16-rounded operands through float32 GEMMs where there
 * are no bf16 units), and a failing native kernel is a JS error, never an abort.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DpoError } from '../../src/errors.js';
import { loadNativeBackend } from '../../src/backend/native/index.js';
import { NativeKernelError } from '../../src/backend/native/kernels.js';
import { refBackend } from '../../src/backend/ref/index.js';
import { cgroupCpuLimit, defaultThreadCount } from '../../src/backend/threads.js';
import { describeBf16 } from '../../src/backend/index.js';

const native = loadNativeBackend().backend;
const RANK: Record<string, number> = { generic: 0, avx2: 1, avx512: 2 };

/** Runs a snippet in a fresh process (the ISA is fixed at start-up) and returns its JSON output. */
function inChild(env: Record<string, string>, body: string): Record<string, unknown> {
  const script = `
    import { loadNativeBackend } from './dist/src/backend/native/index.js';
    import { refBackend } from './dist/src/backend/ref/index.js';
    const nb = loadNativeBackend().backend;
    const out = {};
    ${body}
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

// A bf16 GEMM and a SwiGLU on odd sizes, native against ref (which emulates the same rounding).
const KERNELS_BODY = `
  out.info = nb.describe();
  const m = 37, n = 29, k = 53;
  const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37));
  const b = Float32Array.from({ length: n * k }, (_, i) => Math.cos(i * 0.11));
  const run = (be, p) => { be.setMatmulPrecision(p); const c = new Float32Array(m * n);
    be.kernels.matmul({ a, b, c, batch: 1, m, n, k, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
    be.setMatmulPrecision('float32'); return c; };
  const diff = (x, y) => x.reduce((s, v, i) => Math.max(s, Math.abs(v - y[i])), 0);
  out.bf16Diff = diff(run(nb, 'bfloat16'), run(refBackend, 'bfloat16'));
  out.bf16Moved = diff(run(nb, 'bfloat16'), run(nb, 'float32'));
  const g = Float32Array.from({ length: 1001 }, (_, i) => (i - 500) / 50), u = g.map((v) => v * 0.5 + 1);
  const o1 = new Float32Array(1001), o2 = new Float32Array(1001);
  nb.kernels.swiglu(g, u, o1, 1001); refBackend.kernels.swiglu(g, u, o2, 1001);
  out.swigluDiff = diff(o1, o2);`;

test('the kernel ISA is capped by DPO_MAX_CPU_ISA and oneDNN by ONEDNN_MAX_CPU_ISA; every cap agrees with ref, bf16 included', { skip: !native && 'native core not built' }, () => {
  const hw = native!.describe();
  assert.ok(hw.kernelIsa in RANK, hw.kernelIsa);
  for (const [dpoCap, onednnCap] of [['generic', 'SSE41'], ['avx2', 'AVX2'], ['avx512', 'ALL']]) {
    const r = inChild({ DPO_MAX_CPU_ISA: dpoCap, ONEDNN_MAX_CPU_ISA: onednnCap }, KERNELS_BODY);
    const info = r.info as { kernelIsa: string; onednnIsa: string; bf16Units: boolean };
    assert.equal(RANK[info.kernelIsa], Math.min(RANK[dpoCap], RANK[hw.kernelIsa]), `${dpoCap}: ${JSON.stringify(info)}`);
    if (onednnCap !== 'ALL') {
      assert.ok(info.onednnIsa.startsWith(onednnCap.toLowerCase()), `oneDNN capped at ${onednnCap}: ${info.onednnIsa}`);
      assert.equal(info.bf16Units, false, 'no bf16 units below avx512_core_bf16');
    }
    // Only the summation order differs between the routes (bf16·bf16 products are exact in f32).
    assert.ok((r.bf16Diff as number) < 1e-4, `${dpoCap}: bf16 GEMM native vs ref ${r.bf16Diff}`);
    assert.ok((r.bf16Moved as number) > 1e-3, `${dpoCap}: bf16 changed nothing (${r.bf16Moved})`);
    assert.ok((r.swigluDiff as number) < 1e-5, `${dpoCap}: swiglu native vs ref ${r.swigluDiff}`);
  }
});

test('a failing native kernel throws a one-line DpoError naming the kernel, its arguments and the CPU (no abort)', { skip: !native && 'native core not built' }, () => {
  const c = new Float32Array(4);
  // A negative dimension makes oneDNN refuse to build the primitive (a dnnl::error in C++).
  const call = () => native!.kernels.matmul({ a: new Float32Array(4), b: new Float32Array(4), c, batch: 1, m: -2, n: 2, k: 2, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
  assert.throws(call, (e: unknown) => {
    assert.ok(e instanceof NativeKernelError && e instanceof DpoError, String(e));
    assert.equal(e.exitCode, 2);
    assert.doesNotMatch(e.message, /\n/);
    assert.match(e.message, /^native kernel matmul failed: matmul -2×2 · 2×2 f32: oneDNN: .* \[arguments: f32\[4\], f32\[4\], f32\[4\], 1, -2, 2, 2, false, false, .*; CPU: kernels \w+, oneDNN \w+, bf16 /);
    return true;
  });
  // The addon is still usable afterwards.
  native!.kernels.matmul({ a: Float32Array.of(1, 2), b: Float32Array.of(3, 4), c, batch: 1, m: 1, n: 1, k: 2, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
  assert.equal(c[0], 11);
});

test('the CLI prints a native failure as one line and exits 2 (DPO_FAIL_KERNEL injects a oneDNN error)', { skip: !native && 'native core not built' }, () => {
  const out = mkdtempSync(join(tmpdir(), 'dpo-native-fail-'));
  const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'train', '--model_name_or_path', 'test/fixtures/models/llama', '--dataset_name', 'examples/dpo_example.json', '--output_dir', out, '--max_steps', '1'], {
    encoding: 'utf8', env: { ...process.env, DPO_FAIL_KERNEL: 'attention' }, timeout: 60_000,
  });
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^dpo: native kernel attention failed: oneDNN: failure injected by DPO_FAIL_KERNEL .*\[arguments: f32\[\d+\], .*CPU: kernels /);
});

test('an exception inside an OpenMP region (attention, SwiGLU backward) is rethrown after it, not a terminate', { skip: !native && 'native core not built' }, () => {
  const r = inChild({ DPO_FAIL_KERNEL: 'region' }, `
    const B = 1, T = 4, H = 2, D = 8, n = B * T * H * D;
    const q = new Float32Array(n).fill(0.1), o = new Float32Array(n), lse = new Float32Array(B * H * T);
    try { nb.kernels.attention({ q, k: q, v: q, out: o, lse, B, T, Hq: H, Hkv: H, D, scale: 0.3, causal: true, keyMask: null, segIds: null, window: 0 }); }
    catch (e) { out.attention = e.message; }
    const g = new Float32Array(100000);
    try { nb.kernels.swigluBackward(g, g, g, new Float32Array(100000), null, 100000); } catch (e) { out.swiglu = e.message; }`);
  assert.match(String(r.attention), /^native kernel attention failed: failure injected inside an OpenMP region/);
  assert.match(String(r.swiglu), /^native kernel swigluBackward failed: failure injected inside an OpenMP region/);
});

test('threads: DPO_NUM_THREADS wins and is validated; otherwise the affinity mask capped by a cgroup quota', () => {
  assert.equal(defaultThreadCount({ DPO_NUM_THREADS: '3' }), 3);
  assert.throws(() => defaultThreadCount({ DPO_NUM_THREADS: 'lots' }), /DPO_NUM_THREADS=lots is not a thread count/);
  assert.ok(defaultThreadCount({}) >= 1);
  const files = (m: Record<string, string>) => (p: string) => m[p] ?? null;
  assert.equal(cgroupCpuLimit(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' })), 2);
  assert.equal(cgroupCpuLimit(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' })), null);
  assert.equal(cgroupCpuLimit(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '50000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' })), 1);
  assert.equal(cgroupCpuLimit(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' })), null);
});

test('the bf16 line says which route runs', () => {
  assert.match(describeBf16(refBackend.describe()), /float32 GEMMs: the same numerics; here bf16 saves memory, not time/);
  assert.match(describeBf16({ name: 'native', threads: 2, kernelIsa: 'avx512', onednnIsa: 'avx512_core_bf16', bf16Units: true }), /bf16 units \(oneDNN avx512_core_bf16\)/);
  assert.match(describeBf16({ name: 'native', threads: 2, kernelIsa: 'avx2', onednnIsa: 'avx2', bf16Units: false }), /no bf16 units \(oneDNN avx2\)/);
});
