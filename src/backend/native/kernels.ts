/**
 * The native backend: thin wrappers from the Kernels interface to the addon's exports (positional
 * arguments, caller-owned Float32Arrays, no copies). Kernels with no native twin yet (permute)
 * run the reference implementation on the same arrays.
 */
import { DpoError } from '../../errors.js';
import type { Backend, BackendInfo, BinaryOp, F, KernelTable } from '../types.js';
import { refKernels } from '../ref/index.js';
import { DYNAMIC8, FP4, NF4 } from '../../quant/codes.js';
import { isStorage, type StorageKind, type WeightStorage } from '../../quant/storage.js';

type Fn = (...args: unknown[]) => unknown;
export type NativeAddon = Record<string, Fn>;

/** A native kernel failed (the addon names the kernel, its arguments and the CPU's ISA). */
export class NativeKernelError extends DpoError {
  constructor(message: string) {
    super(`${message}; this is a bug in dpo-ts, please report this line (DPO_BACKEND=ref runs the slower TypeScript backend meanwhile)`);
    this.name = 'NativeKernelError';
  }
}

/** The addon with every export's JS error (C++ exceptions caught in addon.cc) turned into a NativeKernelError. */
function guarded(addon: NativeAddon): NativeAddon {
  const out: NativeAddon = {};
  for (const [name, fn] of Object.entries(addon)) {
    out[name] = (...args: unknown[]) => {
      try {
        return fn(...args);
      } catch (e) {
        throw new NativeKernelError((e as Error).message);
      }
    };
  }
  return out;
}

/** A native file read: its failure (an I/O error, a truncated file) is the file's, not a bug, so it is
 * rethrown as a plain Error with only the reason, for the caller to name the file. */
function ioCall(read: () => unknown): void {
  try {
    read();
  } catch (e) {
    const m = /failed: (.*?) \[arguments/.exec((e as Error).message);
    throw new Error(m ? m[1] : (e as Error).message);
  }
}

/** Storage kinds as native/src/stored-gemm.cc numbers them. */
const STORAGE_CODE: Record<StorageKind, number> = { f32: 0, bf16: 1, f16: 2, nf4: 3, fp4: 4, int8: 5 };

/** A stored matrix as the addon's 9 positional arguments (native/src/stored.h readStored). */
function storedArgs(w: WeightStorage): unknown[] {
  return [STORAGE_CODE[w.kind], w.rows, w.cols, w.data, w.absmax, w.qabsmax, w.kind === 'nf4' ? NF4 : w.kind === 'fp4' ? FP4 : null, w.qabsmax ? DYNAMIC8 : null, w.offset];
}

/** A lm_head argument: the Float32Array, or null followed (at the kernel's tail) by the stored matrix's arguments. */
const head = (w: F | WeightStorage): [F | null, unknown[]] => (isStorage(w) ? [null, storedArgs(w)] : [w, []]);

const BIN: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3 };

export function makeNativeBackend(addon: NativeAddon): Backend {
  const n = guarded(addon);
  const k: KernelTable = {
    matmul: (p) => void n.matmul(p.a, p.b, p.c, p.batch, p.m, p.n, p.k, p.transA, p.transB, p.strideA, p.strideB, p.strideC, p.alpha, p.beta),
    storedMatmul: ({ a, w, c, m, xWt, beta, widen }) => void n.storedMatmul(a, c, m, xWt, beta, ...storedArgs(w), !!widen),
    binary: (op, a, b, out, shape, as, bs) => void n.binary(BIN[op], a, b, out, shape, as, bs),
    unary: (op, x, out, cnt, alpha) => void n.unary(op, x, out, cnt, alpha),
    unaryBackward: (op, x, y, gy, gx, cnt, alpha) => void n.unaryBackward(op, x, y, gy, gx, cnt, alpha),
    swiglu: (g, u, out, cnt, act) => void n.swiglu(g, u, out, cnt, act ?? 'silu'),
    swigluBackward: (g, u, gy, gg, gu, cnt, act) => void n.swigluBackward(g, u, gy, gg, gu, cnt, act ?? 'silu'),
    axpy: (y, x, cnt, alpha) => void n.axpy(y, x, cnt, alpha),
    sumAxis: (x, out, outer, dim, inner) => void n.sumAxis(x, out, outer, dim, inner),
    sumSquares: (x, cnt) => n.sumSquares(x, cnt) as number,
    softmax: (x, out, rows, cols, log) => void n.softmax(x, out, rows, cols, log),
    softmaxBackward: (y, gy, gx, rows, cols, log) => void n.softmaxBackward(y, gy, gx, rows, cols, log),
    embedding: (w, ids, out, cnt, c) => void n.embedding(w, ids, out, cnt, c),
    embeddingBackward: (g, ids, gw, cnt, c) => void n.embeddingBackward(g, ids, gw, cnt, c),
    storedEmbedding: (w, ids, out, cnt) => void n.storedEmbedding(ids, out, cnt, ...storedArgs(w)),
    rmsnorm: (x, w, out, rstd, rows, dim, eps) => void n.rmsnorm(x, w, out, rstd, rows, dim, eps),
    rmsnormBackward: (x, w, rstd, gy, gx, gw, rows, dim) => void n.rmsnormBackward(x, w, rstd, gy, gx, gw, rows, dim),
    layernorm: (x, w, b, out, mean, rstd, rows, dim, eps) => void n.layernorm(x, w, b, out, mean, rstd, rows, dim, eps),
    layernormBackward: (x, w, mean, rstd, gy, gx, gw, gb, rows, dim) => void n.layernormBackward(x, w, mean, rstd, gy, gx, gw, gb, rows, dim),
    rope: (x, out, cos, sin, pos, rows, heads, dim, inverse, rotaryDim) => void n.rope(x, out, cos, sin, pos, rows, heads, dim, inverse, rotaryDim ?? dim),
    attention: (p) => void n.attention(p.q, p.k, p.v, p.out, p.lse, p.B, p.T, p.Hq, p.Hkv, p.D, p.scale, p.causal, p.keyMask, p.segIds, p.window, p.segParents ?? null, p.softcap ?? 0),
    attentionBackward: (p) =>
      void n.attentionBackward(p.q, p.k, p.v, p.out, p.lse, p.B, p.T, p.Hq, p.Hkv, p.D, p.scale, p.causal, p.keyMask, p.segIds, p.window, p.gOut, p.gq, p.gk, p.gv, p.segParents ?? null, p.softcap ?? 0),
    tokenLogprobs: (p) => {
      const [w, stored] = head(p.w);
      n.tokenLogprobs(p.h, w, p.targets, p.N, p.C, p.V, p.chunk, p.logp, p.lse, p.entropy, p.logitSum, p.argmax, p.lse2, p.expected ?? null, p.softcap ?? 0, ...stored);
    },
    tokenLogprobsBackward: (p) => {
      const [w, stored] = head(p.w);
      n.tokenLogprobsBackward(p.h, w, p.targets, p.N, p.C, p.V, p.chunk, p.lse, p.gLogp, p.gh, p.gw, !!p.accumulateGw, p.softcap ?? 0, ...stored);
    },
    permute: refKernels.permute,
    maskScale: (x, mask, out, cnt, scale) => void n.maskScale(x, mask, out, cnt, scale),
    adamw: (p) => void n.adamw(p.param, p.grad, p.m, p.v, p.n, p.lr, p.beta1, p.beta2, p.eps, p.weightDecay, p.step),
  };
  return {
    name: 'native',
    kernels: k,
    dtypes: ['float32'],
    setNumThreads: (t) => void n.setNumThreads(t),
    getNumThreads: () => n.getNumThreads() as number,
    setMatmulPrecision: (p) => void n.setMatmulBf16(p === 'bfloat16'),
    mapFile: (path, offset, length) => (offset === undefined ? n.mapFile(path) : n.mapFile(path, offset, length)) as ArrayBuffer,
    allocLarge: (bytes) => n.allocLarge(bytes) as ArrayBuffer,
    discardLarge: (buffer) => void n.discardLarge(buffer),
    loadKernels: {
      quantize4bit: (w, kind, packed, absmax) => void n.quantize4bit(w, w.length, kind === 'fp4', packed, absmax),
      quantizeNested: (absmax, q, absmax2) => n.quantizeNested(absmax, absmax.length, DYNAMIC8, q, absmax2) as number,
      quantizeInt8Rows: (w, rows, cols, cb, scb) => void n.quantizeInt8Rows(w, rows, cols, cb, scb),
      readBf16AsF32: (fd, offset, out) => ioCall(() => addon.readBf16AsF32(fd, offset, out.length, out)),
      readParallel: (fd, offset, out) => ioCall(() => addon.readParallel(fd, offset, out)),
    },
    describe: (): BackendInfo => {
      const c = n.cpuInfo() as { kernelIsa: string; onednnIsa: string; bf16Units: boolean };
      return { name: 'native', threads: n.getNumThreads() as number, ...c };
    },
  };
}

/** oneDNN's own GEMM time (seconds per call, f32 or bf16 operands) measured inside C++, for benchmarks. */
export function matmulCeiling(n: NativeAddon, m: number, nn: number, k: number, iters: number, bf16 = false): number {
  return n.matmulCeiling(m, nn, k, iters, bf16) as number;
}

