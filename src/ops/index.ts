/** The autograd ops: every op records its own backward (see autograd/tape.ts). */
export { matmul, linear } from './matmul.js';
export { linearStored } from './linear-stored.js';
export { add, sub, mul, div, scale, neg, addScalar, clamp, exp, log, sqrt, square, sigmoid, logsigmoid, tanh, relu, silu, geluTanh, abs, softcap } from './elementwise.js';
export { sum, mean } from './reduce.js';
export { reshape, transpose, permute, slice, concat, indexSelect } from './shape.js';
export { softmax, logSoftmax } from './softmax.js';
export { embedding, embeddingStored } from './embedding.js';
export { rmsNorm, layerNorm } from './norm.js';
export { rope, ropeTablesFrom, invFreq, type Llama3Scaling } from './rope.js';
export { attention, type AttentionOptions } from './attention.js';
export { swiglu, geglu } from './swiglu.js';
export { dropout, dropoutMask, applyDropoutMask } from './dropout.js';
export { tokenLogprobs, DEFAULT_VOCAB_CHUNK, type TokenLogprobsResult } from './logprob.js';
