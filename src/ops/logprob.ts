/**
 * Fused token log-probs: hidden (N, C) × lm_head (V, C) → log_softmax → gather(targets), computed
 * in vocabulary chunks; the (N, V) logits never exist. Also returns the statistics TRL logs from
 * the logits (entropy, Σ logits for the mean logit, argmax for token accuracy). The lm_head is a
 * tensor, or a frozen stored matrix (quant/storage.ts: the bf16 embedding a LoRA run keeps), read a
 * vocabulary chunk at a time and multiplied as its float32 values; only h gets a gradient then.
 */
import { ShapeError, fmtShape } from '../errors.js';
import { isGradEnabled, leafGradSink, record } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import type { F } from '../backend/types.js';
import { isStorage, type WeightStorage } from '../quant/storage.js';
import { K, sameDType } from './util.js';

export interface TokenLogprobsResult {
  /** (N) log p(target); 0 where the target is negative (ignored) */
  logp: Tensor;
  entropy?: F;
  logitSum?: F;
  argmax?: Int32Array;
  /** (N) logsumexp of the logits and of 2·logits (with `wpo`) */
  lse?: F;
  lse2?: F;
}

/**
 * Vocabulary columns per chunk: small enough that a chunk's logits (N × chunk) stay in cache
 * between the GEMM that writes them and the passes that read them (1,200 × 128,256 × 576 on 2
 * cores: forward 0.55 s at 512–1,024, 0.65 s at 8,192, 0.80 s at 16,384; backward 1.6 vs 1.9 s).
 */
export const DEFAULT_VOCAB_CHUNK = 1024;

/**
 * `softcap` (Gemma 2's final_logit_softcapping): every logit becomes cap·tanh(logit / cap) before
 * the log-softmax and the statistics, as transformers' Gemma2ForCausalLM caps the logits it returns.
 */
export function tokenLogprobs(h: Tensor, w: Tensor | WeightStorage, targets: Int32Array, opts: { chunk?: number; stats?: boolean; wpo?: boolean; softcap?: number } = {}): TokenLogprobsResult {
  const stored = isStorage(w) ? w : null;
  if (!isStorage(w)) sameDType('tokenLogprobs', h, w);
  const wShape = isStorage(w) ? [w.rows, w.cols] : w.shape;
  if (h.ndim !== 2 || wShape.length !== 2 || h.shape[1] !== wShape[1]) throw new ShapeError('tokenLogprobs', `hidden ${fmtShape(h.shape)} does not fit lm_head ${fmtShape(wShape)}`);
  const [N, C] = h.shape;
  const V = wShape[0];
  if (targets.length !== N) throw new ShapeError('tokenLogprobs', `${targets.length} targets for ${N} rows`);
  for (let i = 0; i < N; i++) if (targets[i] >= V) throw new ShapeError('tokenLogprobs', `target id ${targets[i]} at row ${i} is outside the vocabulary [0, ${V})`);
  const softcap = opts.softcap ?? 0;
  if (!(Number.isFinite(softcap) && softcap >= 0)) throw new ShapeError('tokenLogprobs', `softcap ${opts.softcap} must be a non-negative number (0 = none)`);
  const chunk = Math.max(1, Math.min(opts.chunk ?? DEFAULT_VOCAB_CHUNK, V));
  const logp = Tensor.empty([N], h.dtype);
  const lse = Tensor.empty([N], h.dtype);
  const mk = () => (h.dtype === 'float64' ? new Float64Array(N) : new Float32Array(N));
  const entropy = opts.stats ? mk() : null;
  const logitSum = opts.stats ? mk() : null;
  const argmax = opts.stats ? new Int32Array(N) : null;
  const lse2 = opts.wpo ? mk() : null;
  const stats = () => ({ entropy: entropy ?? undefined, logitSum: logitSum ?? undefined, argmax: argmax ?? undefined, lse: opts.wpo ? Float64Array.from(lse.data) : undefined, lse2: lse2 ?? undefined });
  // A frozen lm_head (LoRA) only needs the gradient for h: g·(w[target] − softmax·w), so the forward
  // also makes softmax·w and backward skips its vocabulary pass (two GEMMs over V become one);
  // with a soft-cap the general backward runs (its gradient weighs each token by 1 − tanh²).
  const frozen = stored !== null || !(w as Tensor).requiresGrad;
  const wData = stored ?? (w as Tensor).data;
  const expected = isGradEnabled() && h.requiresGrad && frozen && !softcap ? Tensor.empty([N, C], h.dtype) : null;
  K(h).tokenLogprobs({ h: h.data, w: wData, targets, N, C, V, chunk, logp: logp.data, lse: lse.data, entropy, logitSum, argmax, lse2, expected: expected?.data ?? null, softcap });
  if (expected) {
    return {
      ...stats(),
      logp: record('tokenLogprobs', logp, [h], (g) => {
        const gh = Tensor.empty(h.shape, h.dtype);
        // w[target] per row: a stored head's rows gathered as values (ignored rows read row 0, weighted 0).
        const wt = stored ? targetRows(stored, targets, h) : null;
        for (let r = 0; r < N; r++) {
          const t = targets[r], gr = t < 0 ? 0 : g.data[r];
          for (let c = 0; c < C; c++) gh.data[r * C + c] = gr === 0 ? 0 : gr * ((wt ? wt[r * C + c] : (wData as F)[t * C + c]) - expected.data[r * C + c]);
        }
        return [gh];
      }),
    };
  }
  if (stored) {
    // A stored head is frozen: the general backward (a soft-cap's) for h alone.
    record('tokenLogprobs', logp, [h], (g) => {
      const gh = Tensor.empty(h.shape, h.dtype);
      K(h).tokenLogprobsBackward({ h: h.data, w: stored, targets, N, C, V, chunk, lse: lse.data, gLogp: g.data, gh: gh.data, gw: null, softcap });
      return [gh];
    });
    return { logp, ...stats() };
  }
  const wt = w as Tensor;
  record('tokenLogprobs', logp, [h, wt], (g, needs) => {
    const gh = needs[0] ? Tensor.empty(h.shape, h.dtype) : null;
    const sink = needs[1] ? leafGradSink(wt) : null;
    const gw = needs[1] && !sink ? Tensor.empty(wt.shape, wt.dtype) : null;
    const gwData = sink ? sink.data : gw ? gw.data : null;
    K(h).tokenLogprobsBackward({ h: h.data, w: wt.data, targets, N, C, V, chunk, lse: lse.data, gLogp: g.data, gh: gh ? gh.data : null, gw: gwData, accumulateGw: !!sink, softcap });
    return [gh, gw];
  });
  return { logp, ...stats() };
}

/** (N, C) rows w[targets[r]] of a stored matrix as values (row 0 where the target is negative). */
function targetRows(w: WeightStorage, targets: Int32Array, like: Tensor): F {
  const ids = Int32Array.from(targets, (t) => (t < 0 ? 0 : t));
  const out = like.dtype === 'float64' ? new Float64Array(ids.length * w.cols) : new Float32Array(ids.length * w.cols);
  K(like).storedEmbedding(w, ids, out, ids.length);
  return out;
}
