/**
 * Text generation with a KV cache: prefill the prompt once, then one token per step; greedy or
 * sampled (temperature, top-k, top-p), stopping at EOS or max_new_tokens.
 */
import { noGrad } from '../autograd/tape.js';
import { linear, slice } from '../ops/index.js';
import { scope } from '../tensor/pool.js';
import { Rng } from '../tensor/rng.js';
import type { CausalLM } from '../models/causal-lm.js';
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

/** Picks the next token from logits (V) as transformers' sampling does (temperature → top-k → top-p). */
export function sampleToken(logits: Float32Array, cfg: GenerationConfig, rng: Rng): number {
  const t = cfg.temperature ?? 0;
  if (t <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let idx = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
  if (cfg.topK && cfg.topK > 0) idx = idx.slice(0, cfg.topK);
  const m = logits[idx[0]];
  let p = idx.map((i) => Math.exp((logits[i] - m) / t));
  let z = p.reduce((a, b) => a + b, 0);
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
      const logits = scope(() => noGrad(() => {
        const T = chunk.length;
        const pos = Int32Array.from({ length: T }, (_, i) => cache.len + i);
        const h = model.hidden({ ids: Int32Array.from(chunk), B: 1, T, positionIds: pos, cache });
        const last = slice(h, 0, T - 1, T);
        return Float32Array.from(linear(last, model.lmHeadWeight()).data);
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
