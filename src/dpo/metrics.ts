/**
 * TRL's metric bookkeeping: every micro-batch appends one value per metric; at each log the lists
 * are averaged and cleared (DPOTrainer.log), and eval metrics get the `eval_` prefix.
 */
import type { TokenStats } from './logps.js';

export class MetricLog {
  private readonly lists = new Map<string, number[]>();

  push(key: string, value: number): void {
    let l = this.lists.get(key);
    if (!l) this.lists.set(key, (l = []));
    l.push(value);
  }

  /** Replaces the list with one value (TRL does this for the running num_tokens). */
  set(key: string, value: number): void {
    this.lists.set(key, [value]);
  }

  /** Averages and clears, in insertion order. */
  drain(prefix = ''): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.lists) out[prefix + k] = v.reduce((a, b) => a + b, 0) / v.length;
    this.lists.clear();
    return out;
  }

  get empty(): boolean {
    return this.lists.size === 0;
  }
}

const mean = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : 0;
};

/**
 * Appends one micro-batch's metrics exactly as TRL 1.13 _compute_loss does.
 * logps are the policy's (2B) completion log-probs; rewards = β·(logp − ref_logp).
 */
export function recordBatchMetrics(log: MetricLog, p: {
  stats: TokenStats;
  numTokens: number;
  beta: number;
  chosenLogps: ArrayLike<number>;
  rejectedLogps: ArrayLike<number>;
  refChosenLogps: ArrayLike<number>;
  refRejectedLogps: ArrayLike<number>;
}): void {
  const s = p.stats;
  const B = p.chosenLogps.length;
  log.push('entropy', s.tokens > 0 ? s.entropySum / s.tokens : 0);
  log.set('num_tokens', p.numTokens);
  log.push('logits/chosen', s.chosenTokens > 0 ? s.chosenLogitMeanSum / s.chosenTokens : 0);
  log.push('logits/rejected', s.rejectedTokens > 0 ? s.rejectedLogitMeanSum / s.rejectedTokens : 0);
  log.push('mean_token_accuracy', s.chosenTokens > 0 ? s.chosenCorrect / s.chosenTokens : 0);
  const rc = new Float64Array(B);
  const rr = new Float64Array(B);
  for (let i = 0; i < B; i++) {
    rc[i] = p.beta * (p.chosenLogps[i] - p.refChosenLogps[i]);
    rr[i] = p.beta * (p.rejectedLogps[i] - p.refRejectedLogps[i]);
  }
  log.push('rewards/chosen', mean(rc));
  log.push('rewards/rejected', mean(rr));
  log.push('rewards/accuracies', mean(rc.map((c, i) => (c > rr[i] ? 1 : 0))));
  log.push('rewards/margins', mean(rc.map((c, i) => c - rr[i])));
  log.push('logps/chosen', mean(p.chosenLogps));
  log.push('logps/rejected', mean(p.rejectedLogps));
}
