/**
 * The frozen token embedding and (tied or untied) lm_head kept in bf16 / f16 under a stored LoRA
 * base (quant/load-stored.ts, nn/frozen-embedding.ts):
 * - the fused log-prob with a stored head: native = ref (forward, statistics, expected embedding,
 *   the hidden-state gradient, soft-capped too), and both equal the same kernels on the float32
 *   values of the head; the stored gather and the widened stored GEMM likewise;
 * - finite differences of the hidden-state gradient (float64, reference backend);
 * - loading: which storage the embedding keeps (bf16 checkpoint → a view of the mapped file; f32
 *   checkpoint under 4-bit → float32; dtype bfloat16 → bf16), not a parameter; a model with the
 *   stored embedding gives the float32-embedding model's log-probs, gradients and logits;
 * - the one-line errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { constants } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { mapFile } from '../../src/io/mmap.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNativeBackend } from '../../src/backend/native/index.js';
import { refKernels } from '../../src/backend/ref/index.js';
import type { Kernels } from '../../src/backend/types.js';
import { nativeAvailable, setBackend, setMatmulPrecision } from '../../src/backend/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { quantizeWeight, toFloat32, type StorageKind, type WeightStorage } from '../../src/quant/storage.js';
import { embeddingStorageKind, trainsEmbeddings } from '../../src/quant/load-stored.js';
import * as op from '../../src/ops/index.js';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { gradcheck, randn } from '../helpers/gradcheck.js';
import { loadCausalLM, saveCausalLM } from '../../src/models/load.js';
import { FrozenEmbedding } from '../../src/nn/frozen-embedding.js';
import { FrozenLinear } from '../../src/nn/frozen-linear.js';
import { Embedding } from '../../src/nn/embedding.js';
import { makeTrainableCopy } from '../../src/lora/apply.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { lmLogits, numParameters } from '../../src/models/causal-lm.js';

const native = loadNativeBackend();
const NK = native.backend?.kernels as Kernels;
const skip = native.backend ? false : `native core not built (${native.error})`;
const rng = new Rng(21);
const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rng.nextFloat() * 2 - 1) * s);

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Every output of the fused log-prob forward + backward with head `w` on kernels k. */
function logprobRun(k: Kernels, h: Float32Array, w: Float32Array | WeightStorage, targets: Int32Array, N: number, C: number, V: number, chunk: number, softcap: number) {
  const o = { logp: new Float32Array(N), lse: new Float32Array(N), entropy: new Float32Array(N), logitSum: new Float32Array(N), argmax: new Int32Array(N), lse2: new Float32Array(N), expected: softcap ? null : new Float32Array(N * C) };
  k.tokenLogprobs({ h, w, targets, N, C, V, chunk, ...o, softcap });
  const gh = new Float32Array(N * C), gLogp = Float32Array.from({ length: N }, (_, i) => 0.5 - i * 0.3);
  k.tokenLogprobsBackward({ h, w, targets, N, C, V, chunk, lse: o.lse, gLogp, gh, gw: null, softcap });
  return { ...o, gh };
}

const HEADS: [StorageKind, number, number, number, number][] = [['bf16', 5, 37, 7, 8], ['f16', 3, 130, 16, 64], ['bf16', 1, 9, 3, 100], ['nf4', 4, 64, 32, 20]];

for (const prec of ['float32', 'bfloat16'] as const) {
  test(`tokenLogprobs with a stored lm_head (${prec}): native = ref, and each = its run on the head's float32 values`, { skip }, () => {
    setMatmulPrecision(prec);
    try {
      for (const [kind, N, V, C, chunk] of HEADS) {
        const s = quantizeWeight(rand(V * C, 0.5), V, C, kind), wf = toFloat32(s);
        const h = rand(N * C), targets = Int32Array.from({ length: N }, (_, i) => (i === 1 ? -100 : (i * 7) % V));
        for (const cap of [0, 3]) {
          const what = `${kind} N${N} V${V} C${C} chunk ${chunk} softcap ${cap}`;
          const nat = logprobRun(NK, h, s, targets, N, C, V, chunk, cap), natF = logprobRun(NK, h, wf, targets, N, C, V, chunk, cap);
          const ref = logprobRun(refKernels, h, s, targets, N, C, V, chunk, cap), refF = logprobRun(refKernels, h, wf, targets, N, C, V, chunk, cap);
          for (const key of ['logp', 'lse', 'entropy', 'logitSum', 'argmax', 'lse2', 'expected', 'gh'] as const) {
            if (!nat[key]) continue;
            assert.deepEqual(Array.from(nat[key]!), Array.from(natF[key]!), `${what}: native ${key}, stored vs float32 values`);
            assert.deepEqual(Array.from(ref[key]!), Array.from(refF[key]!), `${what}: ref ${key}, stored vs float32 values`);
            const tol = prec === 'float32' ? 1e-4 : 3e-2;
            assert.ok(maxDiff(nat[key]!, ref[key]!) <= tol * Math.max(1, ...Array.from(ref[key]!, Math.abs)), `${what}: ${key} native vs ref ${maxDiff(nat[key]!, ref[key]!)}`);
          }
        }
      }
    } finally {
      setMatmulPrecision('float32');
    }
  });
}

test('storedEmbedding and the widened storedMatmul: native = ref = the float32 values', { skip }, () => {
  for (const kind of ['bf16', 'f16', 'int8'] as StorageKind[]) {
    const [V, C, n] = [50, 24, 9];
    const s = quantizeWeight(rand(V * C), V, C, kind), wf = toFloat32(s);
    const ids = Int32Array.from({ length: n }, (_, i) => (i * 13) % V);
    const a = new Float32Array(n * C), b = new Float32Array(n * C);
    NK.storedEmbedding(s, ids, a, n);
    refKernels.storedEmbedding(s, ids, b, n);
    const want = Float32Array.from({ length: n * C }, (_, i) => wf[ids[Math.floor(i / C)] * C + (i % C)]);
    assert.deepEqual(Array.from(a), Array.from(want), `${kind}: native gather`);
    assert.deepEqual(Array.from(b), Array.from(want), `${kind}: ref gather`);
    // x (m, C) · Wᵀ widened: the float32 GEMM on wf (a bf16 GEMM without widen rounds x too).
    const m = 3, x = rand(m * C), cn = new Float32Array(m * V), cr = new Float32Array(m * V), cf = new Float32Array(m * V);
    NK.storedMatmul({ a: x, w: s, c: cn, m, xWt: true, beta: 0, widen: true });
    refKernels.storedMatmul({ a: x, w: s, c: cr, m, xWt: true, beta: 0, widen: true });
    NK.matmul({ a: x, b: wf, c: cf, batch: 1, m, n: V, k: C, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0 });
    assert.ok(maxDiff(cn, cf) < 1e-5 && maxDiff(cr, cf) < 1e-5, `${kind}: widened GEMM ${maxDiff(cn, cf)} / ${maxDiff(cr, cf)}`);
  }
});

test('hidden-state gradient through a stored (bf16) lm_head: finite differences in float64, with and without a soft-cap', () => {
  const V = 11, C = 5;
  const s = quantizeWeight(rand(V * C, 0.8), V, C, 'bf16');
  const targets = Int32Array.from([3, -100, 0, 10]);
  for (const chunk of [3, 100]) {
    for (const softcap of [0, 2]) gradcheck(`stored head chunk ${chunk} softcap ${softcap}`, (h) => op.tokenLogprobs(h, s, targets, { chunk, softcap }).logp, [randn([4, C], rng)]);
  }
  // The same gradient as a float32 tensor head of the same values that is frozen.
  const wt = Tensor.from(Float64Array.from(toFloat32(s)), [V, C], 'float64');
  const h1 = randn([4, C], rng).param(), h2 = Tensor.from(Float64Array.from(h1.data), [4, C], 'float64').param();
  const g = () => Tensor.from([0.5, -1, 2, 0.25], [4], 'float64');
  backward(op.tokenLogprobs(h1, s, targets, { chunk: 4 }).logp, g());
  backward(op.tokenLogprobs(h2, wt, targets, { chunk: 4 }).logp, g());
  assert.ok(maxDiff(h1.grad!.data, h2.grad!.data) < 1e-12);
});

test('stored lm_head and embedding: one-line shape errors', () => {
  const s = quantizeWeight(rand(7 * 4), 7, 4, 'bf16');
  assert.throws(() => op.tokenLogprobs(Tensor.from(rand(2 * 5), [2, 5]), s, Int32Array.from([0, 1])), /^ShapeError: tokenLogprobs: hidden \[2, 5\] does not fit lm_head \[7, 4\]$/);
  assert.throws(() => op.embeddingStored(s, Int32Array.from([1, 7]), [2]), /^ShapeError: embedding: token id 7 at position 1 is outside the vocabulary \[0, 7\); does the tokenizer belong to this model\?$/);
  const { model } = loadCausalLM('test/fixtures/models/llama-bf16', { storage: { kind: 'nf4' } });
  assert.throws(() => makeTrainableCopy(model, 'lm_head'), /^DpoError: modules_to_save "lm_head": its weight was loaded frozen in bf16 storage; name it in modules_to_save before loading \(dpo train does\) so it loads as float32$/);
});

/** A bf16 copy of a float32 fixture (tied or not) in a temp directory. */
function bf16Copy(fixture: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-bf16-embed-'));
  saveCausalLM(loadCausalLM(fixture).model, dir, { dtype: 'BF16' });
  return dir;
}

test('which storage the frozen embedding keeps: the checkpoint\'s half type under 4-/8-bit, the dtype under bf16, float32 when trained', () => {
  assert.equal(embeddingStorageKind({ kind: 'nf4' }, 'BF16'), 'bf16');
  assert.equal(embeddingStorageKind({ kind: 'int8' }, 'F16'), 'f16');
  assert.equal(embeddingStorageKind({ kind: 'nf4' }, 'F32'), null, 'a float32 checkpoint under 4-bit keeps float32 (transformers\' dtype float32)');
  assert.equal(embeddingStorageKind({ kind: 'bf16' }, 'F32'), 'bf16');
  assert.equal(embeddingStorageKind({ kind: 'bf16', trainedEmbeddings: true }, 'BF16'), null);
  assert.equal(trainsEmbeddings('all-linear', null), false);
  assert.equal(trainsEmbeddings(['q_proj', 'v_proj'], null), false);
  assert.equal(trainsEmbeddings(['q_proj', 'embed_tokens'], null), true);
  assert.equal(trainsEmbeddings('.*(proj|lm_head)', null), true);
  assert.equal(trainsEmbeddings(null, ['lm_head']), true);
});

test('loading: a bf16 checkpoint\'s embedding (tied head) and untied lm_head are frozen bf16, not parameters, views of the mapped file', () => {
  const tied = bf16Copy('test/fixtures/models/llama-tied');
  const { model } = loadCausalLM(tied, { storage: { kind: 'nf4' } });
  const e = (model as unknown as { model: { embed_tokens: Embedding } }).model.embed_tokens;
  assert.ok(e instanceof FrozenEmbedding && e._w.kind === 'bf16');
  assert.equal(model.lmHeadWeight(), e._w, 'the tied head is the same storage');
  assert.equal(model.namedParameters().some(([n]) => n.includes('embed_tokens')), false);
  if (nativeAvailable()) assert.equal(e._w.data.buffer.byteLength, statSync(join(tied, 'model.safetensors')).size, 'a view of the mapped file');
  assert.ok((loadCausalLM(tied, { storage: { kind: 'nf4', trainedEmbeddings: true } }).model as unknown as { model: { embed_tokens: Embedding } }).model.embed_tokens.matrix() instanceof Tensor, 'trained: float32');
  // A float32 checkpoint under 4-bit keeps a float32 embedding; under dtype bfloat16 it is rounded to bf16.
  const f32 = loadCausalLM('test/fixtures/models/llama-tied', { storage: { kind: 'nf4' } }).model as unknown as { model: { embed_tokens: Embedding } };
  assert.ok(!(f32.model.embed_tokens instanceof FrozenEmbedding));
  const b = loadCausalLM('test/fixtures/models/llama-tied', { storage: { kind: 'bf16' } }).model as unknown as { model: { embed_tokens: Embedding } };
  assert.ok(b.model.embed_tokens instanceof FrozenEmbedding && b.model.embed_tokens._w.kind === 'bf16');
  // Untied: the lm_head is a frozen bf16 linear (never quantized, as bitsandbytes skips it).
  const { model: u } = loadCausalLM('test/fixtures/models/llama-bf16', { storage: { kind: 'nf4', nested: true } });
  const head = (u as unknown as { lm_head: FrozenLinear }).lm_head;
  assert.ok(head instanceof FrozenLinear && head._w.kind === 'bf16');
  assert.equal(u.lmHeadWeight(), head._w);
  // The weight count (the "model ... M parameters" line) includes the stored weights: the float32 load's count.
  for (const [dir, m] of [[tied, model], ['test/fixtures/models/llama-bf16', u]] as const) assert.equal(numParameters(m), numParameters(loadCausalLM(dir).model), dir);
});

for (const backend of ['native', 'ref'] as const) {
  test(`a stored bf16 embedding + head gives the float32-embedding model's log-probs, hidden gradients and logits (${backend}, tied and untied)`, { skip: backend === 'native' ? skip : false }, () => {
    setBackend(backend);
    try {
      for (const dir of [bf16Copy('test/fixtures/models/llama-tied'), 'test/fixtures/models/llama-bf16']) {
        const run = (m: CausalLM) => {
          const ids = Int32Array.from({ length: 2 * 6 }, (_, i) => (i * 37 + 5) % m.arch.vocabSize);
          const h = noGrad(() => m.hidden({ ids, B: 2, T: 6 })).param();
          const targets = Int32Array.from(ids, (t, i) => (i % 6 === 5 ? -100 : ids[i + 1]));
          const out = op.tokenLogprobs(h, m.lmHeadWeight(), targets, { stats: true, chunk: 64 });
          backward(out.logp, Tensor.from(Float32Array.from({ length: 12 }, (_, i) => 1 - i / 12), [12]));
          const logits = noGrad(() => lmLogits(m, h));
          return { logp: Array.from(out.logp.data), entropy: Array.from(out.entropy!), gh: Array.from(h.grad!.data), logits: Array.from(logits.data), hidden: Array.from(h.data) };
        };
        const stored = run(loadCausalLM(dir, { storage: { kind: 'nf4' } }).model);
        const f32 = run(loadCausalLM(dir, { storage: { kind: 'nf4', trainedEmbeddings: true } }).model);
        for (const k of ['hidden', 'logp', 'entropy', 'gh', 'logits'] as const) assert.ok(maxDiff(stored[k], f32[k]) <= 1e-6, `${dir} ${k}: ${maxDiff(stored[k], f32[k])}`);
      }
    } finally {
      setBackend(nativeAvailable() ? 'native' : 'ref');
    }
  });
}

test('a file larger than an ArrayBuffer can be (4 GiB on Node 20) is mapped a tensor at a time (mapping it whole aborted the process)', { skip: nativeAvailable() ? false : 'needs the native addon (mmap)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-big-map-'));
  const big = join(dir, 'big.safetensors'), small = join(dir, 'small.bin');
  // A sparse safetensors file (no disk blocks for the padding) whose BF16 tensor lies past 4 GiB.
  const padBytes = Math.ceil((constants.MAX_LENGTH + 4096) / 4) * 4;
  const header = Buffer.from(JSON.stringify({ pad: { dtype: 'F32', shape: [padBytes / 4], data_offsets: [0, padBytes] }, w: { dtype: 'BF16', shape: [4], data_offsets: [padBytes, padBytes + 8] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(big, Buffer.concat([len, header]));
  truncateSync(big, 8 + header.length + padBytes + 8);
  const bits = new Uint16Array([0x3f80, 0xbf80, 0x4000, 0x7f80]);
  const fd = openSync(big, 'r+');
  writeSync(fd, new Uint8Array(bits.buffer), 0, 8, 8 + header.length + padBytes);
  closeSync(fd);
  writeFileSync(small, Buffer.alloc(4096));
  try {
    assert.equal(mapFile(big), null);
    assert.equal(mapFile(small)?.byteLength, 4096);
    const f = new SafetensorsFile(big);
    const v = f.viewRaw16('w');
    f.close();
    assert.deepEqual([...v], [...bits]);
    assert.equal(v.buffer.byteLength, 8, 'the tensor\'s own mapping');
    assert.ok(readFileSync('/proc/self/maps', 'utf8').includes(big), 'mapped, not read');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dpo train --load_in_4bit on a bf16 checkpoint: the header names the frozen bf16 embedding / lm_head; lora_modules_to_save lm_head keeps them float32 and trains', () => {
  const CLI = join(process.cwd(), 'dist/src/cli/main.js');
  const args = (extra: string[]) => ['train', '--model_name_or_path', 'test/fixtures/models/llama-bf16', '--dataset_name', 'examples/dpo_example.json', '--output_dir', mkdtempSync(join(tmpdir(), 'dpo-embed-')),
    '--per_device_train_batch_size', '2', '--max_steps', '1', '--logging_steps', '1', '--max_length', '64', '--use_peft', '--lora_r', '4', '--load_in_4bit', ...extra];
  const r = spawnSync(process.execPath, [CLI, ...args([])], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /base linear weights NF4, dequantized per tile in the GEMMs; embedding and lm_head bf16 \(frozen\);/);
  const t = spawnSync(process.execPath, [CLI, ...args(['--lora_modules_to_save', 'lm_head'])], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /base linear weights NF4, dequantized per tile in the GEMMs; LoRA/);
});
