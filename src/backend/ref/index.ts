// PLACEHOLDER — replaced by the reference backend implementation.
import type { Backend, Kernels } from '../types.js';
export const refBackend: Backend = {
  name: 'ref',
  kernels: {} as Kernels,
  dtypes: ['float32', 'float64'],
  setNumThreads() {},
  getNumThreads: () => 1,
};
