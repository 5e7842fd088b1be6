/**
 * Text generation with a KV cache: prefill the prompt once, then one token per step; greedy or
 * sampled (temperature, top-k, top-p), stopping at EOS or max_new_tokens.
 */
import { noGrad } from '../autograd/tape.js';
import { indexSelect, slice } from '../ops/index.js';
import { scope } from '../tensor/pool.js';
import { Rng } from '../tensor/rng.js';
import { lmLogits, type CausalLM } from '../models/causal-lm.js';
import { KVCache } from './kv-cache.js';

export interface GenerationConfig {
  maxNewTokens?: number;
  /** 0 = greedy */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Token ids that end generation. */
  eosTokenIds?: number[];
  seed?: number;
}

/**
 * The k largest logits' indices, largest first, equal logits by ascending index: exactly
 * `[...keys].sort(desc).slice(0, k)` (a stable sort), in one pass instead of sorting the vocabulary.
 */
export function topKIndices(logits: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    if (idx.length === k && !(x > logits[idx[k - 1]])) continue;
    let j = idx.length === k ? k - 1 : idx.length;
    if (idx.length < k) idx.push(i);
    while (j > 0 && x > logits[idx[j - 1]]) { idx[j] = idx[j - 1]; j--; }
    idx[j] = i;
  }
  return idx;
}

/** softmax(logits / t) sampled in vocabulary order: no sort when nothing is filtered out. */
function sampleUnfiltered(logits: Float32Array, t: number, rng: Rng): number {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > m) m = logits[i];
  const p = new Float64Array(logits.length);
  let z = 0, last = 0;
  for (let i = 0; i < logits.length; i++) {
    z += p[i] = Math.exp((logits[i] - m) / t);
    if (p[i] > 0) last = i;
  }
  let u = rng.nextFloat() * z;
  for (let i = 0; i < p.length; i++) if (p[i] > 0 && (u -= p[i]) < 0) return i;
  return last;
}

/** Picks the next token from logits (V) as transformers' sampling does (temperature → top-k → top-p). */
export function sampleToken(logits: Float32Array, cfg: GenerationConfig, rng: Rng): number {
  const t = cfg.temperature ?? 0;
  if (t <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  if (!(cfg.topK && cfg.topK > 0) && !(cfg.topP !== undefined && cfg.topP < 1)) return sampleUnfiltered(logits, t, rng);
  const V = logits.length;
  const sorted = () => Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
  let idx: number[], p: number[], z: number;
  if ((cfg.topK && cfg.topK > 0) || !(cfg.topP !== undefined && cfg.topP < 1)) {
    idx = cfg.topK && cfg.topK > 0 && cfg.topK < V ? topKIndices(logits, cfg.topK) : sorted();
    const m = logits[idx[0]];
    p = idx.map((i) => Math.exp((logits[i] - m) / t));
    z = p.reduce((a, b) => a + b, 0);
  } else {
    // top-p alone: the nucleus is a prefix of the sorted vocabulary; look for it among the c most
    // likely tokens (c = 64, 256, 1024) before sorting everything. Probabilities stay over the whole vocabulary.
    let m = -Infinity;
    for (let i = 0; i < V; i++) if (logits[i] > m) m = logits[i];
    z = 0;
    for (let i = 0; i < V; i++) z += Math.exp((logits[i] - m) / t);
    for (let c = 64; ; c *= 4) {
      idx = c > 1024 || c * 4 >= V ? sorted() : topKIndices(logits, c);
      p = idx.map((i) => Math.exp((logits[i] - m) / t));
      if (idx.length === V || p.reduce((a, b) => a + b, 0) / z >= cfg.topP!) break;
    }
  }
  p = p.map((x) => x / z);
  if (cfg.topP !== undefined && cfg.topP < 1) {
    let c = 0, keep = 0;
    while (keep < p.length && c < cfg.topP) c += p[keep++];
    idx = idx.slice(0, Math.max(keep, 1));
    p = p.slice(0, idx.length);
    z = p.reduce((a, b) => a + b, 0);
    p = p.map((x) => x / z);
  }
  let u = rng.nextFloat();
  for (let i = 0; i < p.length; i++) {
    u -= p[i];
    if (u <= 0) return idx[i];
  }
  return idx[idx.length - 1];
}

/** Whether a forward over `total` tokens with `cached` of them cached recomputes all of them instead (CausalLM.recomputeCacheAt). */
function recomputeNow(model: CausalLM, cached: number, total: number): boolean {
  const at = model.recomputeCacheAt;
  return at !== undefined && cached > 0 && total >= at && cached < at;
}

/** Generates a continuation of `promptIds`; returns only the new token ids. */
export function generate(model: CausalLM, promptIds: number[], cfg: GenerationConfig = {}): number[] {
  const maxNew = cfg.maxNewTokens ?? 64;
  const a = model.arch;
  const maxLen = promptIds.length + maxNew;
  if (a.family === 'gpt2' && maxLen > a.maxPositions) throw new Error(`prompt + max_new_tokens = ${maxLen} exceeds GPT-2's ${a.maxPositions} positions`);
  const cache = new KVCache(a.numLayers, maxLen, a.numKvHeads, a.headDim);
  const rng = new Rng(cfg.seed ?? 0);
  const eos = new Set(cfg.eosTokenIds ?? []);
  const out: number[] = [];
  const wasTraining = model.training;
  model.eval();
  try {
    let chunk = promptIds;
    while (out.length < maxNew && chunk.length) {
      if (recomputeNow(model, cache.len, cache.len + chunk.length)) {
        chunk = [...promptIds, ...out];
        cache.len = 0;
      }
      const logits = scope(() => noGrad(() => {
        const T = chunk.length;
        const pos = Int32Array.from({ length: T }, (_, i) => cache.len + i);
        const h = model.hidden({ ids: Int32Array.from(chunk), B: 1, T, positionIds: pos, cache });
        const last = slice(h, 0, T - 1, T);
        return Float32Array.from(lmLogits(model, last).data);
      }));
      cache.len += chunk.length;
      const next = sampleToken(logits, cfg, rng);
      out.push(next);
      if (eos.has(next)) break;
      chunk = [next];
    }
  } finally {
    if (wasTraining) model.train();
  }
  return out;
}

/**
 * Samples `seeds.length` continuations of one prompt together: the prompt is prefilled once, then
 * every step runs one forward over all unfinished rows (B = seeds.length, one token each) through a
 * batched KV cache. Row r draws from its own Rng(seeds[r]), so each row is the continuation
 * `generate(model, promptIds, { ...cfg, seed: seeds[r] })` gives (up to float rounding of batched
 * matrix products). Returns the new token ids of every row.
 *
 * @example
 * const rows = generateBatch(model, tokenizer.encode('Once upon'), [1, 2, 3, 4], { maxNewTokens: 32, temperature: 0.8 });
 */
export function generateBatch(model: CausalLM, promptIds: number[], seeds: readonly number[], cfg: GenerationConfig = {}): number[][] {
  const maxNew = cfg.maxNewTokens ?? 64;
  const a = model.arch;
  const N = seeds.length;
  const maxLen = promptIds.length + maxNew;
  if (a.family === 'gpt2' && maxLen > a.maxPositions) throw new Error(`prompt + max_new_tokens = ${maxLen} exceeds GPT-2's ${a.maxPositions} positions`);
  const cache = new KVCache(a.numLayers, maxLen, a.numKvHeads, a.headDim, N);
  const rngs = seeds.map((s) => new Rng(s));
  const eos = new Set(cfg.eosTokenIds ?? []);
  const outs: number[][] = seeds.map(() => []);
  const done = new Array<boolean>(N).fill(false);
  const wasTraining = model.training;
  model.eval();
  const step = (ids: number[], B: number): Float32Array => scope(() => noGrad(() => {
    const T = ids.length / B;
    const pos = Int32Array.from({ length: B * T }, (_, i) => cache.len + (i % T));
    const h = model.hidden({ ids: Int32Array.from(ids), B, T, positionIds: pos, cache }); // (B·T, C)
    const rows = T === 1 ? h : B === 1 ? slice(h, 0, T - 1, T) : indexSelect(h, 0, Int32Array.from({ length: B }, (_, b) => b * T + T - 1));
    return Float32Array.from(lmLogits(model, rows).data); // (B, V)
  }));
  try {
    if (!promptIds.length || maxNew <= 0) return outs;
    const first = step(promptIds, 1); // (1, V)
    cache.len += promptIds.length;
    cache.replicateFirstRow();
    let logits = first, shared = true;
    const V = a.vocabSize;
    while (true) {
      for (let r = 0; r < N; r++) {
        if (done[r]) continue;
        const row = shared ? logits : logits.subarray(r * V, (r + 1) * V);
        const next = sampleToken(row, cfg, rngs[r]);
        outs[r].push(next);
        if (eos.has(next) || outs[r].length >= maxNew) done[r] = true;
      }
      if (done.every(Boolean)) break;
      // Finished rows still run (fed their last token) so every row keeps the same length; their output is ignored.
      if (recomputeNow(model, cache.len, cache.len + 1)) {
        // each row's whole sequence; a finished row's is padded with the last token it has been fed since
        const L = cache.len + 1;
        const rows = outs.map((o) => [...promptIds, ...o, ...new Array<number>(L - promptIds.length - o.length).fill(o[o.length - 1])]);
        cache.len = 0;
        logits = step(rows.flat(), N);
        cache.len = L;
      } else {
        logits = step(outs.map((o) => o[o.length - 1]), N);
        cache.len += 1;
      }
      shared = false;
    }
  } finally {
    if (wasTraining) model.train();
  }
  return outs;
}
