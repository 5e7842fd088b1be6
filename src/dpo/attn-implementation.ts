/**
 * `attn_implementation` on a model with attention-logit soft-capping (Gemma 2; Gemma 3 when its
 * config sets one). transformers 5.17 loads with sdpa unless told otherwise (TRL 1.13 passes
 * ModelConfig.attn_implementation, default None, so sdpa too), and its sdpa kernel silently drops
 * `attn_logit_softcapping` (no warning); eager, flash_attention_2/3 and flex_attention apply it.
 * dpo always applies the soft-cap, as eager does, so `dpo train` says so when a TRL config asks for
 * sdpa, and `dpo export-trl` pins eager so the TRL job computes what dpo train computed.
 *
 * @example
 * attnImplementationNote(50, 'sdpa');  // 'attn_implementation sdpa: transformers\' sdpa kernel ignores ...'
 * trlAttnImplementation(50, null);     // 'eager'
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveModelDir } from '../io/model-source.js';
import { archFromConfig } from '../models/registry.js';

/** transformers' kernels that drop the attention soft-cap (integrations/sdpa_attention.py takes no softcap). */
const DROPS_SOFTCAP = new Set(['sdpa']);

/** A one-line note when `impl` would not soft-cap the attention logits in transformers; null otherwise. */
export function attnImplementationNote(attnSoftcap: number, impl: string | null): string | null {
  if (!(attnSoftcap > 0) || impl === null || !DROPS_SOFTCAP.has(impl)) return null;
  return `attn_implementation ${impl}: transformers' ${impl} kernel ignores this model's attn_logit_softcapping (${attnSoftcap}); dpo applies the soft-cap always, as eager attention does, so TRL with ${impl} computes other log-probs (use attn_implementation eager there)`;
}

/** The attn_implementation a TRL recipe should carry: the user's, else eager where transformers' default (sdpa) would drop the soft-cap. */
export function trlAttnImplementation(attnSoftcap: number, impl: string | null): string | null {
  return impl ?? (attnSoftcap > 0 ? 'eager' : null);
}

/** The attention soft-cap of a model's config.json (0 = none), or 0 when the model is not readable here (export-trl may name a Hub id not in the cache). */
export function attnSoftcapOf(nameOrPath: string): number {
  try {
    return archFromConfig(JSON.parse(readFileSync(join(resolveModelDir(nameOrPath), 'config.json'), 'utf8'))).attnSoftcap;
  } catch {
    return 0;
  }
}
