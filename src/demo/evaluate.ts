/**
 * The demo model's configuration and its held-out measurement: greedy answers of many addition
 * prompts at once (they all have the same length, so one (B, T) forward per new token).
 */
import { noGrad } from '../autograd/tape.js';
import { scope } from '../tensor/pool.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { HfTokenizer } from '../tokenizer/tokenizer.js';
import { additionJudge, carries, type Problem } from './addition.js';

export const DEMO_MODEL_CONFIG = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 64, intermediate_size: 192, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000,
  tie_word_embeddings: true, hidden_act: 'silu', torch_dtype: 'float32', initializer_range: 0.02,
};

/**
 * Greedy completions of prompts of one token length, decoded together (rows stop at EOS). Returns
 * the decoded completions (special tokens skipped).
 */
export function greedyEqualLength(model: CausalLM, tok: HfTokenizer, prompts: readonly string[], maxNewTokens = 5): string[] {
  const ids = prompts.map((p) => tok.encode(p));
  const P = ids[0].length;
  if (ids.some((x) => x.length !== P)) throw new Error('greedyEqualLength: prompts of different token lengths');
  const B = ids.length, V = model.arch.vocabSize, eos = tok.eosTokenId ?? -1;
  const rows = ids.map((x) => [...x]);
  const done = new Array<boolean>(B).fill(false);
  const wasTraining = model.training;
  model.eval();
  for (let s = 0; s < maxNewTokens && done.includes(false); s++) {
    const T = P + s;
    const flat = Int32Array.from(rows.flat());
    const next = scope(() => noGrad(() => {
      const lg = model.logits({ ids: flat, B, T }).data; // (B, T, V)
      return rows.map((_, b) => {
        const o = (b * T + T - 1) * V;
        let best = 0;
        for (let v = 1; v < V; v++) if (lg[o + v] > lg[o + best]) best = v;
        return best;
      });
    }));
    rows.forEach((r, b) => {
      r.push(done[b] ? eos : next[b]);
      if (next[b] === eos) done[b] = true;
    });
  }
  if (wasTraining) model.train();
  return rows.map((r) => {
    const c = r.slice(P);
    const end = c.indexOf(eos);
    const ans = end < 0 ? c : c.slice(0, end);
    return ans.length ? tok.decode(ans, { skipSpecialTokens: true }) : '';
  });
}

export interface Accuracy {
  accuracy: number;
  /** On problems whose units carry / do not. */
  carry: number;
  noCarry: number;
  answers: string[];
}

/** Greedy accuracy on `problems` (judged by additionJudge). */
export function greedyAccuracy(model: CausalLM, tok: HfTokenizer, problems: readonly Problem[]): Accuracy {
  const answers = greedyEqualLength(model, tok, problems.map((p) => p.prompt));
  const ok = problems.map((p, i) => additionJudge(p.prompt, answers[i]));
  const frac = (f: (p: Problem) => boolean) => {
    const idx = problems.map((p, i) => (f(p) ? i : -1)).filter((i) => i >= 0);
    return idx.length ? idx.reduce((a, i) => a + ok[i], 0) / idx.length : NaN;
  };
  return { accuracy: ok.reduce((a, b) => a + b, 0) / ok.length, carry: frac(carries), noCarry: frac((p) => !carries(p)), answers };
}
