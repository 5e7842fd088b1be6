/**
 * Module: a tree of named parameters whose property names equal the Hugging Face weight keys
 * (mlx-lm style), so `model.layers.0.self_attn.q_proj.weight` is found by walking properties and
 * loading needs no mapping table. Properties starting with `_` are not walked (buffers, config).
 */
import { Tensor } from '../tensor/tensor.js';

export abstract class Module {
  /** Training mode enables dropout. */
  training = false;

  /** Every parameter with its dotted HF name, in definition order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    walk(this, prefix, out, new Set());
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Named submodules (including this one as ''), in definition order. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [k, v] of Object.entries(this)) {
      if (k.startsWith('_')) continue;
      const name = prefix ? `${prefix}.${k}` : k;
      if (v instanceof Module) out.push(...v.namedModules(name));
      else if (Array.isArray(v)) v.forEach((m, i) => m instanceof Module && out.push(...m.namedModules(`${name}.${i}`)));
    }
    return out;
  }

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
}

function walk(obj: object, prefix: string, out: [string, Tensor][], seen: Set<Tensor>): void {
  for (const [k, v] of Object.entries(obj)) {
    if (k.startsWith('_') || k === 'training') continue;
    const name = prefix ? `${prefix}.${k}` : k;
    if (v instanceof Tensor) {
      // Tied weights appear once, under their first name.
      if (!seen.has(v)) {
        seen.add(v);
        out.push([name, v]);
      }
    } else if (v instanceof Module) walk(v, name, out, seen);
    else if (Array.isArray(v)) v.forEach((m, i) => m instanceof Module && walk(m, `${name}.${i}`, out, seen));
  }
}
