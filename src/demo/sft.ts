/**
 * Supervised fine-tuning (cross-entropy on completion tokens), the small loss the demo's base model
 * is made with: mean over completion tokens of −log π(y_t | x, y_<t). Batches are prompt+completion
 * rows, right-padded; the per-token log-probs come from the same fused op DPO uses.
 */
import { backward } from '../autograd/tape.js';
import { mean, neg } from '../ops/index.js';
import { scope } from '../tensor/pool.js';
import type { CausalLM } from '../models/causal-lm.js';
import { sequenceLogps, type PairBatch } from '../dpo/logps.js';
import { AdamW } from '../optim/index.js';
import { completionBatch } from '../generate/completion-logps.js';

export interface SftExample {
  promptIds: number[];
  /** Completion token ids, EOS included when the model should learn to stop. */
  completionIds: number[];
}

/** (R, T) rows prompt+completion, right-padded; the completion mask marks the completion. */
export const sftBatch = (ex: readonly SftExample[], padId: number): PairBatch => completionBatch(ex.map((e) => e.promptIds), ex.map((e) => e.completionIds), padId);

export interface SftOptions {
  steps: number;
  batchSize: number;
  lr: number;
  /** Picks each step's examples (returns `batchSize` indices into `examples`). */
  pick: (step: number) => number[];
  weightDecay?: number;
  /** Called every step with the step's mean token loss. */
  onStep?: (step: number, loss: number) => void;
}

/** Trains every parameter of `model` with AdamW on the token cross-entropy, linear warm-up then cosine decay. */
export function sftTrain(model: CausalLM, examples: readonly SftExample[], padId: number, o: SftOptions): void {
  for (const p of model.parameters()) p.requiresGrad = true;
  const opt = new AdamW(model.namedParameters(), { lr: o.lr, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: o.weightDecay ?? 0 });
  const warm = Math.max(1, Math.floor(o.steps / 20));
  model.train();
  for (let s = 0; s < o.steps; s++) {
    const batch = sftBatch(o.pick(s).map((i) => examples[i]), padId);
    const loss = scope(() => {
      const { tokenLogps } = sequenceLogps(model, batch);
      const l = neg(mean(tokenLogps));
      backward(l);
      return l.data[0];
    });
    const lr = s < warm ? (o.lr * (s + 1)) / warm : 0.5 * o.lr * (1 + Math.cos((Math.PI * (s - warm)) / (o.steps - warm)));
    opt.update(lr);
    opt.zeroGrad();
    o.onStep?.(s, loss);
  }
  model.eval();
  for (const p of model.parameters()) p.requiresGrad = false;
}
