/**
 * GPT-2 (transformers' modeling_gpt2.py). HF stores Conv1D weights as (in, out); `sanitize`
 * transposes them to our Linear layout (out, in) on load and `export` transposes back on save.
 */
import { add, attention, dropout, geluTanh, reshape, slice, type AttentionOptions } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import { Module } from '../nn/module.js';
import { Linear, type LinearForwardOpts, type LinearLike, headWeight } from '../nn/linear.js';
import { Embedding } from '../nn/embedding.js';
import { LayerNorm } from '../nn/norm.js';
import type { ArchConfig } from './arch.js';
import { DpoError } from '../errors.js';
import { MAX_DIM, type ConfigReader } from './config-reader.js';
import type { ModelRegistration, RawTensor } from './registration.js';
import { appendAndAttend, type KVCache } from '../generate/kv-cache.js';
import { defaultPositions, lmLogits, type CausalLM, type LmInputs } from './causal-lm.js';
import type { WeightStorage } from '../quant/storage.js';
import { runLayer } from './run-layer.js';
import { dim, linearWeights, type ExpectedWeight, type WeightTable } from './weight-shapes.js';

/** The Conv1D weights of a GPT-2 block, stored transposed in HF checkpoints. */
export const GPT2_CONV1D = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'];

export class GPT2Attention extends Module {
  c_attn: LinearLike;
  c_proj: LinearLike;
  constructor(private readonly _a: ArchConfig) {
    super();
    this.c_attn = new Linear(_a.hiddenSize, 3 * _a.hiddenSize, true);
    this.c_proj = new Linear(_a.hiddenSize, _a.hiddenSize, true);
  }
  forward(x: Tensor, B: number, T: number, keyMask: Uint8Array | null, segs: Pick<AttentionOptions, 'segIds' | 'segParents'>, cache: KVCache | null = null, layer = 0): Tensor {
    const { hiddenSize: C, numHeads: H, headDim: D } = this._a;
    const qkv = this.c_attn.forward(x); // (B, T, 3C)
    const q = reshape(slice(qkv, 2, 0, C), [B, T, H, D]);
    const k = reshape(slice(qkv, 2, C, 2 * C), [B, T, H, D]);
    const v = reshape(slice(qkv, 2, 2 * C, 3 * C), [B, T, H, D]);
    const a = cache ? appendAndAttend(cache, layer, q, k, v, 0) : attention(q, k, v, { causal: true, keyMask, ...segs });
    return this.c_proj.forward(reshape(a, [B, T, C]));
  }
}

export class GPT2MLP extends Module {
  c_fc: LinearLike;
  c_proj: LinearLike;
  constructor(a: ArchConfig) {
    super();
    this.c_fc = new Linear(a.hiddenSize, a.intermediateSize, true);
    this.c_proj = new Linear(a.intermediateSize, a.hiddenSize, true);
  }
  forward(x: Tensor, opts?: LinearForwardOpts): Tensor {
    return this.c_proj.forward(geluTanh(this.c_fc.forward(x)), opts);
  }
}

export class GPT2Block extends Module {
  ln_1: LayerNorm;
  attn: GPT2Attention;
  ln_2: LayerNorm;
  mlp: GPT2MLP;
  constructor(a: ArchConfig) {
    super();
    this.ln_1 = new LayerNorm(a.hiddenSize, a.normEps);
    this.attn = new GPT2Attention(a);
    this.ln_2 = new LayerNorm(a.hiddenSize, a.normEps);
    this.mlp = new GPT2MLP(a);
  }
}

export class GPT2Model extends Module {
  wte: Embedding;
  wpe: Embedding;
  h: GPT2Block[];
  ln_f: LayerNorm;
  constructor(a: ArchConfig) {
    super();
    this.wte = new Embedding(a.vocabSize, a.hiddenSize);
    this.wpe = new Embedding(a.maxPositions, a.hiddenSize);
    this.h = Array.from({ length: a.numLayers }, () => new GPT2Block(a));
    this.ln_f = new LayerNorm(a.hiddenSize, a.normEps);
  }
}

export class GPT2LMHeadModel extends Module implements CausalLM {
  transformer: GPT2Model;
  lm_head: Linear | null;
  gradientCheckpointing = false;
  /** Seeded dropout stream (resid/embd dropout when training and not disabled). */
  _rng = new Rng(0);
  constructor(readonly arch: ArchConfig) {
    super();
    this.transformer = new GPT2Model(arch);
    this.lm_head = arch.tieEmbeddings ? null : new Linear(arch.hiddenSize, arch.vocabSize);
  }

  hidden(inp: LmInputs): Tensor {
    const { B, T } = inp;
    const a = this.arch;
    if (this.training && a.attnDropout > 0) {
      throw new Error('GPT-2 attention-probability dropout (attn_pdrop > 0) is not supported in training; keep disable_dropout on');
    }
    const pos = inp.positionIds ?? defaultPositions(B, T);
    const tr = this.transformer;
    let h = add(tr.wte.forward(inp.ids, [B, T]), tr.wpe.forward(pos, [B, T]));
    h = dropout(h, a.embdDropout, this._rng, this.training);
    const keyMask = inp.attentionMask ?? null;
    const segs = { segIds: inp.segIds ?? null, segParents: inp.segParents ?? null };
    const cache = inp.cache ?? null;
    const mode = { checkpoint: this.gradientCheckpointing, cache: !!cache };
    for (const [i, blk] of tr.h.entries()) {
      // In the recompute the block's output goes unread, and dropout's and add's backward read no
      // values, so the MLP's last GEMM is skipped (runLayer, nn/linear.ts' valuesUnread).
      const block = (x: Tensor, recompute: boolean): Tensor => {
        const at = blk.attn.forward(blk.ln_1.forward(x), B, T, keyMask, segs, cache, i);
        x = add(x, dropout(at, a.residDropout, this._rng, this.training));
        const m = blk.mlp.forward(blk.ln_2.forward(x), { valuesUnread: recompute });
        return add(x, dropout(m, a.residDropout, this._rng, this.training));
      };
      h = runLayer(block, h, blk.parameters(), mode);
    }
    h = tr.ln_f.forward(h);
    return reshape(h, [B * T, a.hiddenSize]);
  }

  lmHeadWeight(): Tensor | WeightStorage {
    return this.lm_head ? headWeight(this.lm_head) : this.transformer.wte.matrix();
  }

  logits(inp: LmInputs): Tensor {
    return reshape(lmLogits(this, this.hidden(inp)), [inp.B, inp.T, this.arch.vocabSize]);
  }
}

/**
 * The weights GPT2LMHeadModel(a) has, in module layout (Conv1D weights are stored transposed in
 * checkpoints; the registry maps the layouts), by config.json key.
 */
export function gpt2WeightShapes(a: ArchConfig): WeightTable {
  const C = dim(['n_embd', a.hiddenSize]);
  const C3 = dim(['3', 3], ['n_embd', a.hiddenSize]);
  const V = dim(['vocab_size', a.vocabSize]);
  const P = dim(['n_positions', a.maxPositions]);
  const I = dim([a.raw.n_inner === undefined || a.raw.n_inner === null ? '4 × n_embd' : 'n_inner', a.intermediateSize]);
  const norm = (name: string): ExpectedWeight[] => [{ name: `${name}.weight`, shape: [C] }, { name: `${name}.bias`, shape: [C] }];
  const layer = (i: number) => {
    const p = `transformer.h.${i}.`;
    return [
      ...norm(`${p}ln_1`),
      ...linearWeights(`${p}attn.c_attn`, C, C3, true),
      ...linearWeights(`${p}attn.c_proj`, C, C, true),
      ...norm(`${p}ln_2`),
      ...linearWeights(`${p}mlp.c_fc`, C, I, true),
      ...linearWeights(`${p}mlp.c_proj`, I, C, true),
    ];
  };
  return {
    global: [
      { name: 'transformer.wte.weight', shape: [V, C] },
      { name: 'transformer.wpe.weight', shape: [P, C] },
      ...norm('transformer.ln_f'),
      ...(a.tieEmbeddings ? [] : linearWeights('lm_head', C, V, false)),
    ],
    layer, layerPrefix: 'transformer.h.', layersKey: 'n_layer', numLayers: a.numLayers,
  };
}

/** config.json with GPT2Config's defaults (n_positions 1024, n_inner 4·n_embd, dropouts 0.1, tied head). */
function parseGpt2(r: ConfigReader): ArchConfig {
  const C = r.size('n_embd');
  const H = r.size('n_head');
  if (C % H !== 0) throw new DpoError(`${r.where}: "n_head" ${H} does not divide "n_embd" ${C}; expected a divisor of ${C}`);
  const L = r.size('n_layer');
  const act = r.str('activation_function', 'gelu_new');
  if (!['gelu_new', 'gelu_pytorch_tanh'].includes(act)) throw new DpoError(`${r.where}: activation_function "${act}" is not supported for gpt2 (supported: gelu_new, gelu_pytorch_tanh)`);
  for (const k of ['scale_attn_by_inverse_layer_idx', 'reorder_and_upcast_attn']) r.only(k, [false], 'attention scaling variants');
  r.only('scale_attn_weights', [true], 'attention scaling variants');
  return {
    modelType: 'gpt2', family: 'gpt2', raw: r.raw,
    vocabSize: r.size('vocab_size'),
    hiddenSize: C, numLayers: L, numHeads: H, numKvHeads: H, headDim: C / H,
    intermediateSize: r.size('n_inner', Math.min(4 * C, MAX_DIM)),
    maxPositions: r.size('n_positions', 1024),
    normEps: r.inRange('layer_norm_epsilon', 1e-5, 0, 1),
    ropeTheta: 0, ropeScaling: null, rope: null,
    layer: () => ({ type: 'full_attention', window: 0, rope: null }),
    attnScale: 1 / Math.sqrt(C / H),
    qkvBias: true, oBias: true, mlpBias: true, qkNorm: false,
    tieEmbeddings: r.bool('tie_word_embeddings', true), slidingWindow: 0,
    hiddenAct: act, embedScale: 1, residualMultiplier: 1, logitsScaling: 1, attnSoftcap: 0, finalSoftcap: 0,
    residDropout: r.inRange('resid_pdrop', 0.1, 0, 1), embdDropout: r.inRange('embd_pdrop', 0.1, 0, 1),
    attnDropout: r.inRange('attn_pdrop', 0.1, 0, 1),
  };
}

export function transpose2d(t: RawTensor): RawTensor {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { shape: [c, r], data: out };
}

const isConv1D = (name: string) => name.endsWith('.weight') && GPT2_CONV1D.some((m) => name.endsWith(`${m}.weight`));

function renameGpt2(name: string, a: ArchConfig): string | null {
  // Old GPT-2 checkpoints omit the "transformer." prefix.
  if (!name.startsWith('transformer.') && !name.startsWith('lm_head.')) name = `transformer.${name}`;
  if (name.endsWith('.attn.bias') || name.endsWith('.attn.masked_bias')) return null;
  if (a.tieEmbeddings && name === 'lm_head.weight') return null;
  return name;
}

export const gpt2Registration: ModelRegistration = {
  modelTypes: ['gpt2'],
  parse: parseGpt2,
  build: (a) => new GPT2LMHeadModel(a),
  weightShapes: gpt2WeightShapes,
  rename: renameGpt2,
  storedShape: (name, shape) => (isConv1D(name) ? shape.slice().reverse() : shape),
  sanitize(name, t, a) {
    const n = renameGpt2(name, a);
    return n === null ? null : [n, isConv1D(n) ? transpose2d(t) : t];
  },
  export: (name, t) => [name, isConv1D(name) ? transpose2d(t) : t],
  loraTargets: { gpt2: ['c_attn'] },
};
