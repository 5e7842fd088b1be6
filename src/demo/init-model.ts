/** A freshly initialised small Llama (HF-style normal(0, 0.02) weights, unit norms), deterministic in `seed`. */
import { Rng } from '../tensor/rng.js';
import { archFromConfig } from '../models/arch.js';
import { architectureFor } from '../models/registry.js';
import type { CausalLM } from '../models/causal-lm.js';

export function initModel(config: Record<string, unknown>, seed: number): CausalLM {
  const arch = archFromConfig(config, 'demo config');
  const model = architectureFor(arch).build(arch);
  const rng = new Rng(seed);
  for (const [name, p] of model.namedParameters()) {
    if (name.endsWith('norm.weight')) p.data.fill(1);
    else for (let i = 0; i < p.size; i += 2) {
      const u = Math.max(rng.nextFloat(), 1e-12), v = rng.nextFloat();
      const r = Math.sqrt(-2 * Math.log(u));
      p.data[i] = 0.02 * r * Math.cos(2 * Math.PI * v);
      if (i + 1 < p.size) p.data[i + 1] = 0.02 * r * Math.sin(2 * Math.PI * v);
    }
  }
  return model;
}
