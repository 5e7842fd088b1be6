/** The reference backend: plain TypeScript kernels, float32 and float64; the oracle for tests. */
import type { Backend, KernelTable } from '../types.js';
import { matmul, setMatmulPrecision } from './matmul.js';
import { axpy, binary, maskScale, swiglu, swigluBackward, unary, unaryBackward } from './elementwise.js';
import { sumAxis, sumSquares } from './reduce.js';
import { softmax, softmaxBackward } from './softmax.js';
import { embedding, embeddingBackward, storedEmbedding } from './embedding.js';
import { layernorm, layernormBackward, rmsnorm, rmsnormBackward } from './norm.js';
import { rope } from './rope.js';
import { attention, attentionBackward } from './attention.js';
import { tokenLogprobs, tokenLogprobsBackward } from './logprob.js';
import { permute } from './permute.js';
import { adamw } from './adamw.js';
import { storedMatmul } from './stored-matmul.js';

export const refKernels: KernelTable = {
  matmul, storedMatmul, binary, unary, unaryBackward, swiglu, swigluBackward, axpy, sumAxis, sumSquares, softmax, softmaxBackward,
  embedding, embeddingBackward, storedEmbedding, rmsnorm, rmsnormBackward, layernorm, layernormBackward, rope,
  attention, attentionBackward, tokenLogprobs, tokenLogprobsBackward, permute, maskScale, adamw,
};

export const refBackend: Backend = {
  name: 'ref',
  kernels: refKernels,
  dtypes: ['float32', 'float64'],
  setNumThreads() {},
  getNumThreads: () => 1,
  setMatmulPrecision,
  // Plain TypeScript: no vector ISA, bf16 emulated by rounding operands (the oracle's numerics).
  describe: () => ({ name: 'ref', threads: 1, kernelIsa: 'ts', onednnIsa: 'none', bf16Units: false }),
};
