/**
 * The reference policy π_ref, in the four ways TRL obtains it:
 *  - `copy`: a frozen in-memory copy of the initial weights (full fine-tuning; TRL reloads from disk);
 *  - `adapters-off`: the policy with its LoRA adapters disabled (a fresh adapter: no second copy);
 *  - `ref-adapter`: a frozen copy of the initial adapter swapped in (continuing an existing adapter);
 *  - precomputed log-probs (see ref-cache.ts), which bypass this module during training.
 * All reference forwards run under noGrad and keep no activations.
 */
import type { Hash } from 'node:crypto';
import { DpoError } from '../errors.js';
import { noGrad } from '../autograd/tape.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { Tensor } from '../tensor/tensor.js';
import { architectureFor } from '../models/registry.js';
import { adapterParameters, loraLayers, trainedCopies, withAdaptersDisabled } from '../lora/apply.js';
import { Linear } from '../nn/linear.js';
import { FrozenBf16Linear } from '../nn/frozen-bf16-linear.js';
import { sequenceLogps, type PairBatch, type SequenceLogpsOptions } from './logps.js';

export type ReferenceKind = 'copy' | 'adapters-off' | 'ref-adapter';

export interface Reference {
  readonly kind: ReferenceKind;
  /** The frozen copy, for `copy` references (saved in checkpoints when it changes under TR-DPO). */
  readonly model?: CausalLM;
  /** (2B) reference completion log-probs of the batch. */
  logps(b: PairBatch, opts: RefLogpsOptions): Float64Array;
  /** TR-DPO: ref ← α·policy + (1−α)·ref. */
  mixup(policy: CausalLM, alpha: number): void;
  /** Feeds the reference's own weights to `h` (the precomputed log-probs' cache key): what it computes with, not the policy. */
  hashWeights(h: Hash): void;
}

/** Names and bytes of `model`'s parameters into `h`; `skip` leaves some out (the adapters of an adapters-off reference). */
function hashParameters(h: Hash, model: CausalLM, skip: (name: string) => boolean = () => false): void {
  for (const [n, p] of model.namedParameters()) if (!skip(n)) hashTensor(h, n, p);
}

/** One tensor's name and bytes into `h`. */
function hashTensor(h: Hash, name: string, t: Tensor): void {
  h.update(name);
  h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

/** The LoRA settings that change an adapter's output (rank, scaling), so two adapters with equal tensors still differ. */
function hashAdapterSettings(h: Hash, model: CausalLM): void {
  for (const [n, l] of loraLayers(model)) h.update(JSON.stringify([n, l.cfg]));
}

export type RefLogpsOptions = Pick<SequenceLogpsOptions, 'ldAlpha' | 'paddingFree' | 'sharePrompt'>;

function run(model: CausalLM, b: PairBatch, opts: RefLogpsOptions): Float64Array {
  return noGrad(() => Float64Array.from(sequenceLogps(model, b, opts).logps.data));
}

/** A frozen copy of a (non-LoRA) model's current weights. */
export function cloneModel(model: CausalLM): CausalLM {
  const copy = architectureFor(model.arch).build(model.arch);
  const src = new Map(model.namedParameters());
  for (const [name, p] of copy.namedParameters()) {
    p.data.set(src.get(name)!.data);
    p.requiresGrad = false;
  }
  return copy.eval();
}

/**
 * Under bf16 (without TR-DPO, which updates the copy), every Linear of the copy keeps its weight
 * as bf16 bits: the GEMMs round weights to bf16 anyway, so the log-probs are the same bits and
 * the copy's linear weights take half the memory. Embeddings, lm_head and norms stay float32.
 */
function storeLinearsInBf16(model: CausalLM): void {
  for (const [name, m] of model.namedModules()) {
    for (const [key, child] of Object.entries(m)) {
      // lm_head stays: the fused log-prob op reads its weight as a tensor.
      if (child instanceof Linear && key !== 'lm_head') (m as unknown as Record<string, unknown>)[key] = new FrozenBf16Linear(child);
      else if (Array.isArray(child) && child.some((c) => c instanceof Linear)) throw new DpoError(`reference copy: unexpected list of linear layers at ${name}.${key}`);
    }
  }
}

export function copyReference(policy: CausalLM, opts: { bf16Weights?: boolean } = {}): Reference {
  const ref = cloneModel(policy);
  if (opts.bf16Weights) storeLinearsInBf16(ref);
  return {
    kind: 'copy',
    model: ref,
    logps: (b, o) => run(ref, b, o),
    hashWeights: (h) => hashParameters(h, ref),
    mixup(p, alpha) {
      if (opts.bf16Weights) throw new DpoError('sync_ref_model needs a float32 reference copy; it is not stored in bf16 when sync_ref_model is on');
      const src = new Map(p.namedParameters());
      for (const [name, r] of ref.namedParameters()) {
        const s = src.get(name)!.data;
        const d = r.data;
        for (let i = 0; i < d.length; i++) d[i] = alpha * s[i] + (1 - alpha) * d[i];
      }
    },
  };
}

/** A given frozen model used as is (an explicit ref_model, or the untouched policy before training). */
export function fixedReference(model: CausalLM): Reference {
  return {
    kind: 'copy',
    logps: (b, o) => run(model, b, o),
    hashWeights(h) {
      hashParameters(h, model);
      hashAdapterSettings(h, model);
    },
    mixup() {
      throw new DpoError('sync_ref_model needs the built-in reference copy; do not pass ref_model or precompute_ref_log_probs');
    },
  };
}

export function adaptersOffReference(policy: CausalLM): Reference {
  return {
    kind: 'adapters-off',
    logps: (b, o) => withAdaptersDisabled(policy, () => run(policy, b, o)),
    // Adapters off: the base weights alone (a fresh adapter's seeded A does not change the reference),
    // with modules_to_save's frozen originals in place of their trained copies.
    hashWeights(h) {
      const copies = trainedCopies(policy);
      hashParameters(h, policy, (n) => n.includes('.lora_') || copies.some(([m]) => n.startsWith(`${m}.`)));
      for (const [m, c] of copies) for (const [k, t] of c._mts.original) hashTensor(h, `${m}.${k}`, t);
    },
    mixup() {
      throw new DpoError('sync_ref_model is not supported with LoRA (as in TRL): the reference is the adapter-free or initial-adapter model');
    },
  };
}

/** Keeps a copy of the adapter's initial tensors (A, B, DoRA magnitudes, modules_to_save copies) and swaps it in for reference forwards. */
export function refAdapterReference(policy: CausalLM): Reference {
  const params = adapterParameters(policy);
  const frozen: Float32Array[] = params.map((t) => Float32Array.from(t.data as Float32Array));
  const swap = () => {
    params.forEach((t, i) => {
      const cur = t.data as Float32Array;
      t.data = frozen[i];
      frozen[i] = cur;
    });
  };
  return {
    kind: 'ref-adapter',
    logps(b, o) {
      swap();
      try {
        return run(policy, b, o);
      } finally {
        swap();
      }
    },
    hashWeights(h) {
      swap();
      try {
        hashParameters(h, policy);
        hashAdapterSettings(h, policy);
      } finally {
        swap();
      }
    },
    mixup() {
      throw new DpoError('sync_ref_model is not supported with LoRA (as in TRL): the reference is the adapter-free or initial-adapter model');
    },
  };
}
