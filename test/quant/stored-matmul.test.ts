/**
 * The stored-weight GEMM (per-tile dequantization) native vs reference for every storage kind,
 * both directions (x·Wᵀ and g·W), beta 0/1, several tiles, float32 and bf16 precision; and the
 * linear op on a stored weight against the plain linear on its dequantized float32 copy
 * (the quantized path adds no error of its own).
 */
import { test } from 'node:test';
// Small tiles (64K values), so the shapes below span several tiles (read once, at the first call).
process.env.DPO_STORED_TILE_VALUES = '65536';
import assert from 'node:assert/strict';
import { loadNativeBackend } from '../../src/backend/native/index.js';
import { refKernels } from '../../src/backend/ref/index.js';
import { setMatmulPrecision as setRefPrecision } from '../../src/backend/ref/matmul.js';
import type { Kernels } from '../../src/backend/types.js';
import { Rng } from '../../src/tensor/rng.js';
import { quantizeWeight, toFloat32, STORAGE_KINDS, type StorageKind } from '../../src/quant/storage.js';
import { setBackend, setMatmulPrecision } from '../../src/backend/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { linear, linearStored, sum } from '../../src/ops/index.js';
import { backward } from '../../src/autograd/tape.js';

const native = loadNativeBackend();
const N = native.backend?.kernels as Kernels;
const skip = native.backend ? false : `native core not built (${native.error})`;
const rng = new Rng(5);
const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rng.nextFloat() * 2 - 1) * s);

function maxRel(a: Float32Array, b: Float32Array): number {
  let m = 0, scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / Math.max(scale, 1e-30);
}

const SHAPES: [number, number, number][] = [[5, 600, 512], [3, 33, 45], [1, 64, 64], [7, 2, 130]];

for (const prec of ['float32', 'bfloat16'] as const) {
  for (const kind of STORAGE_KINDS) {
    test(`storedMatmul ${kind} (${prec}): native = ref on ${SHAPES.length} shapes, both directions, beta 0 and 1`, { skip }, () => {
      native.backend!.setMatmulPrecision(prec);
      setRefPrecision(prec);
      try {
        for (const [m, rows, cols] of SHAPES) {
          const w = quantizeWeight(rand(rows * cols, 0.1), rows, cols, kind, { nested: kind === 'nf4' });
          for (const xWt of [true, false]) {
            const a = rand(m * (xWt ? cols : rows));
            for (const beta of [0, 1]) {
              const c0 = rand(m * (xWt ? rows : cols));
              const cn = c0.slice(), cr = c0.slice();
              N.storedMatmul({ a, w, c: cn, m, xWt, beta });
              refKernels.storedMatmul({ a, w, c: cr, m, xWt, beta });
              const err = maxRel(cn, cr);
              assert.ok(err < (prec === 'float32' ? 1e-5 : 2e-3), `${kind} ${m}×${rows}×${cols} xWt=${xWt} beta=${beta}: rel err ${err}`);
            }
          }
        }
      } finally {
        native.backend!.setMatmulPrecision('float32');
        setRefPrecision('float32');
      }
    });
  }
}

for (const backend of ['native', 'ref'] as const) {
  test(`linearStored (${backend}): 4-bit, 8-bit and f16 weights give linear() on the dequantized float32 weight (≤1e-5), output and input gradient`, { skip: backend === 'native' ? skip : false }, () => {
    setBackend(backend);
    setMatmulPrecision('float32');
    try {
      const [rows, cols, m] = [96, 320, 6];
      for (const kind of ['nf4', 'fp4', 'int8', 'f16', 'f32'] as StorageKind[]) {
        const s = quantizeWeight(rand(rows * cols, 0.05), rows, cols, kind, { nested: kind === 'fp4' });
        const wf = Tensor.from(toFloat32(s), [rows, cols]);
        const bias = Tensor.from(rand(rows), [rows]);
        const xd = rand(m * cols);
        const x1 = Tensor.from(xd, [2, 3, cols]); x1.requiresGrad = true;
        const x2 = Tensor.from(xd, [2, 3, cols]); x2.requiresGrad = true;
        const y1 = linearStored(x1, s, bias), y2 = linear(x2, wf, bias);
        assert.ok(maxRel(y1.data as Float32Array, y2.data as Float32Array) <= 1e-5, `${kind}: forward`);
        backward(sum(y1)); backward(sum(y2));
        assert.ok(maxRel(x1.grad!.data as Float32Array, x2.grad!.data as Float32Array) <= 1e-5, `${kind}: input gradient`);
      }
    } finally {
      setBackend(native.backend ? 'native' : 'ref');
    }
  });
}

test('native dequantization is the reference\'s bit for bit: I · W returns every stored value, whole 64-blocks per row and not, nested or not', { skip }, () => {
  native.backend!.setMatmulPrecision('float32');
  for (const kind of ['nf4', 'fp4', 'int8', 'bf16'] as StorageKind[]) {
    for (const nested of [false, true]) {
      for (const [rows, cols] of [[40, 1024], [9, 130], [3, 64]]) {
        const w = quantizeWeight(rand(rows * cols, 0.2), rows, cols, kind, { nested });
        // C (rows × cols) = I (rows × rows) · W: 1·w plus exact zeros, so C holds the dequantized values.
        const eye = new Float32Array(rows * rows);
        for (let i = 0; i < rows; i++) eye[i * rows + i] = 1;
        const c = new Float32Array(rows * cols);
        N.storedMatmul({ a: eye, w, c, m: rows, xWt: false, beta: 0 });
        // (=== equates FP4's −0 with the +0 that adding the zeros makes of it)
        const ref = toFloat32(w);
        const bad = ref.findIndex((v, i) => c[i] !== v);
        assert.equal(bad, -1, `${kind} nested=${nested} ${rows}×${cols}: element ${bad} ${c[bad]} vs ${ref[bad]}`);
      }
    }
  }
});
