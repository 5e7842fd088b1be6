/**
 * Engine benchmark: matmul GFLOPS through the addon (called from TypeScript) next to oneDNN's
 * ceiling timed inside C++ in the same run, and the fused ops at transformer sizes.
 * Run: npm run bench   (prints a table; never used as a test)
 */
import { performance } from 'node:perf_hooks';
import { loadNativeBackend } from '../src/backend/native/index.js';
import { matmulCeiling, type NativeAddon } from '../src/backend/native/kernels.js';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Rng } from '../src/tensor/rng.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AVX2_CAP, printMachine } from './machine.js';

const nb = loadNativeBackend();
if (!nb.backend) {
  console.error(`native core not built: ${nb.error}`);
  process.exit(1);
}
const K = nb.backend.kernels;
const addon = createRequire(import.meta.url)(join(process.cwd(), 'native/build/Release/dpo_native.node')) as NativeAddon;
const rng = new Rng(1);
const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rng.nextFloat() * 2 - 1) * s);

function time(fn: () => void, minS = 1, minIters = 3): number {
  fn();
  const ts: number[] = [];
  const start = performance.now();
  while (ts.length < minIters || performance.now() - start < minS * 1000) {
    const t0 = performance.now();
    fn();
    ts.push((performance.now() - t0) / 1000);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

// The whole table twice: as this CPU runs it, then in a child under the AVX2 cap (--leg avx2).
const leg = process.argv.includes('--leg') ? process.argv[process.argv.indexOf('--leg') + 1] : 'native';
if (leg === 'native') printMachine();
const info = nb.backend.describe();
console.log(`\n## leg: ${leg} (kernels ${info.kernelIsa}, oneDNN ${info.onednnIsa}, bf16 ${info.bf16Units ? 'on bf16 units' : 'via f32 GEMMs'}, ${info.threads} threads)`);
console.log('\n| matmul (M×N×K, B transposed) | precision | addon GFLOPS | oneDNN ceiling GFLOPS | ratio |');
console.log('|---|---|---|---|---|');
for (const [m, n, k] of [[1024, 1024, 1024], [2048, 576, 576], [2048, 1536, 576], [2048, 576, 1536], [1024, 128256, 576]]) {
  const a = rand(m * k), b = rand(n * k), c = new Float32Array(m * n);
  const flop = 2 * m * n * k;
  // bf16: the addon's time includes rounding both f32 operands; the ceiling gets them pre-rounded.
  for (const bf16 of [false, true]) {
    nb.backend.setMatmulPrecision(bf16 ? 'bfloat16' : 'float32');
    const t = time(() => K.matmul({ a, b, c, batch: 1, m, n, k, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 }));
    const iters = Math.max(3, Math.round(1 / t));
    const ceil = matmulCeiling(addon, m, n, k, iters, bf16);
    console.log(`| ${m}×${n}×${k} | ${bf16 ? 'bf16' : 'f32'} | ${(flop / t / 1e9).toFixed(1)} | ${(flop / ceil / 1e9).toFixed(1)} | ${(ceil / t).toFixed(2)} |`);
  }
  nb.backend.setMatmulPrecision('float32');
}

console.log('\n| fused op | shape | time (ms) | note |');
console.log('|---|---|---|---|');
{
  const N = 1024, C = 576, V = 128256, chunk = 8192;
  const h = rand(N * C), w = rand(V * C, 0.05), targets = Int32Array.from({ length: N }, () => rng.nextInt(V));
  const logp = new Float32Array(N), lse = new Float32Array(N), ent = new Float32Array(N), ls = new Float32Array(N), am = new Int32Array(N);
  const logits = new Float32Array(N * chunk);
  const tMm = time(() => {
    for (let v0 = 0; v0 < V; v0 += chunk) {
      const n = Math.min(chunk, V - v0);
      K.matmul({ a: h, b: w.subarray(v0 * C, (v0 + n) * C), c: logits, batch: 1, m: N, n, k: C, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
    }
  });
  const tF = time(() => K.tokenLogprobs({ h, w, targets, N, C, V, chunk, logp, lse, entropy: ent, logitSum: ls, argmax: am, lse2: null }));
  const gh = new Float32Array(N * C), gw = new Float32Array(V * C), g = rand(N);
  const tB = time(() => K.tokenLogprobsBackward({ h, w, targets, N, C, V, chunk, lse, gLogp: g, gh, gw }));
  console.log(`| lm_head matmul alone | N=${N} C=${C} V=${V} | ${(tMm * 1e3).toFixed(1)} | baseline |`);
  console.log(`| tokenLogprobs fwd (+entropy, logit sum, argmax) | same | ${(tF * 1e3).toFixed(1)} | ${(tF / tMm).toFixed(2)}× matmul; scratch ${(N * chunk * 4 / 2 ** 20).toFixed(0)} MiB = N·chunk (full logits would be ${(N * V * 4 / 2 ** 20).toFixed(0)} MiB) |`);
  console.log(`| tokenLogprobs bwd (gh + gw) | same | ${(tB * 1e3).toFixed(1)} | ${(tB / tMm).toFixed(2)}× matmul (3 GEMMs) |`);
}
{
  const B = 8, T = 256, Hq = 9, Hkv = 3, D = 64;
  const q = rand(B * T * Hq * D), k = rand(B * T * Hkv * D), v = rand(B * T * Hkv * D);
  const out = new Float32Array(q.length), lse = new Float32Array(B * Hq * T);
  const keyMask = new Uint8Array(B * T).fill(1);
  const args = { q, k, v, out, lse, B, T, Hq, Hkv, D, scale: 1 / 8, causal: true, keyMask, segIds: null, window: 0 };
  const tF = time(() => K.attention(args));
  const gq = new Float32Array(q.length), gk = new Float32Array(k.length), gv = new Float32Array(v.length), gOut = rand(q.length);
  const tB = time(() => K.attentionBackward({ ...args, gOut, gq, gk, gv }));
  console.log(`| attention fwd | B=${B} T=${T} Hq=${Hq} Hkv=${Hkv} D=${D} | ${(tF * 1e3).toFixed(1)} | |`);
  console.log(`| attention bwd | same | ${(tB * 1e3).toFixed(1)} | |`);
}
{
  const rowsN = 2048, dim = 576, x = rand(rowsN * dim), w = rand(dim), out = new Float32Array(x.length), r = new Float32Array(rowsN);
  console.log(`| rmsnorm fwd | ${rowsN}×${dim} | ${(time(() => K.rmsnorm(x, w, out, r, rowsN, dim, 1e-5)) * 1e3).toFixed(2)} | |`);
  const sx = rand(64 * 4096), so = new Float32Array(sx.length);
  console.log(`| softmax | 64×4096 | ${(time(() => K.softmax(sx, so, 64, 4096, false)) * 1e3).toFixed(2)} | |`);
}
console.log(`\npeak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
if (leg === 'native' && !process.argv.includes('--no-avx2-leg')) {
  spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--leg', 'avx2'], { stdio: 'inherit', env: { ...process.env, ...AVX2_CAP } });
}
