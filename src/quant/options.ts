/**
 * TRL's ModelConfig quantization and dtype flags → how the frozen base linears are stored:
 * `load_in_4bit` (`bnb_4bit_quant_type` nf4 | fp4, `use_bnb_nested_quant`), `load_in_8bit`, or,
 * under LoRA, `dtype bfloat16` / `auto` on a bf16 or f16 checkpoint (half-size storage, mmap'd
 * without a copy). Only LoRA bases are stored this way: a full fine-tune keeps float32 master
 * weights. The compute dtype (TRL's bnb_4bit_compute_dtype = dtype) is our --bf16 precision.
 *
 * @example
 * weightStorageFor({ load_in_4bit: true, use_bnb_nested_quant: true }, { lora: true }) // { kind: 'nf4', nested: true }
 */
import { DpoError } from '../errors.js';
import type { StorageSpec } from './load-stored.js';

export function weightStorageFor(given: Record<string, unknown>, o: { lora: boolean; checkpointDtype?: () => string | null; where?: string }): StorageSpec | null {
  const where = o.where ?? 'dpo train';
  const b4 = given.load_in_4bit === true, b8 = given.load_in_8bit === true;
  if (b4 && b8) throw new DpoError(`${where}: --load_in_4bit and --load_in_8bit together; pass only one of them (as TRL's ModelConfig)`);
  if ((b4 || b8) && !o.lora) throw new DpoError(`${where}: --${b4 ? 'load_in_4bit' : 'load_in_8bit'} quantizes the frozen base, which only LoRA can train; add --use_peft (or --adapter_name_or_path)`);
  if (b4) {
    const t = given.bnb_4bit_quant_type ?? 'nf4';
    if (t !== 'nf4' && t !== 'fp4') throw new DpoError(`${where}: --bnb_4bit_quant_type ${String(t)} is not a 4-bit type; use nf4 or fp4`);
    return { kind: t, nested: given.use_bnb_nested_quant === true };
  }
  if (b8) return { kind: 'int8' };
  if (!o.lora) return null;
  const d = (given.dtype ?? given.torch_dtype ?? null) as string | null;
  const resolved = d === 'auto' ? (o.checkpointDtype?.() ?? 'float32') : d;
  if (resolved === 'bfloat16') return { kind: 'bf16' };
  if (resolved === 'float16' && d === 'auto') return { kind: 'f16' };
  return null;
}

/** One line for the run's header: how the base linears are stored, and the frozen embedding / lm_head's half type if kept so. */
export function describeStorage(s: StorageSpec | null, embeddings: string | null = null): string {
  if (!s) return 'base weights float32';
  const what = { f32: 'float32', bf16: 'bf16 (memory-mapped, no copy)', f16: 'f16 (memory-mapped, no copy)', nf4: 'NF4', fp4: 'FP4', int8: 'int8 (LLM.int8 rows)' }[s.kind];
  return `base linear weights ${what}${s.nested ? ' with nested absmax' : ''}, dequantized per tile in the GEMMs${embeddings ? `; embedding and lm_head ${embeddings} (frozen)` : ''}; LoRA, gradients and AdamW state float32`;
}
