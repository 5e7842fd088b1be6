/**
 * A model (merged, or fully fine-tuned) or a LoRA adapter as one GGUF file for llama.cpp, laid out
 * as convert_hf_to_gguf.py / convert_lora_to_gguf.py write it: names and permutations from the
 * architecture's table (gguf-arch.ts), F32 for norms, biases and other 1-D tensors (llama.cpp's
 * kernels expect it), the chosen type for the matrices.
 */
import { DpoError } from '../errors.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { HfTokenizer } from '../tokenizer/tokenizer.js';
import { loraLayers, trainedCopies } from '../lora/apply.js';
import { loraConfigOf } from '../lora/peft-io.js';
import { GGML_TYPES, str, u32, f32, writeGguf, type GgmlType, type GgufTensor, type GgufValue } from './gguf.js';
import { encodeTensor } from './gguf-quant.js';
import { ggufModuleName, ggufTableFor, permuteRows, type GgufArchTable } from './gguf-arch.js';
import { tokenizerMetadata } from './gguf-tokenizer.js';
import { sentencePieceFile, spmTokenizerMetadata } from './gguf-tokenizer-spm.js';

export const GGUF_OUTTYPES = ['f32', 'f16', 'bf16', 'q8_0'] as const;
export type GgufOuttype = (typeof GGUF_OUTTYPES)[number];

/** llama_ftype (general.file_type) and the ggml type of the matrices for each outtype. */
const OUTTYPE: Record<GgufOuttype, { fileType: number; type: GgmlType }> = {
  f32: { fileType: 0, type: 'F32' },
  f16: { fileType: 1, type: 'F16' },
  q8_0: { fileType: 7, type: 'Q8_0' },
  bf16: { fileType: 32, type: 'BF16' },
};

export interface GgufExportResult {
  tensors: number;
  /** What llama.cpp will do differently from this model (printed by the CLI). */
  caveats: string[];
}

/**
 * The type a tensor is stored as: the converter keeps 1-D tensors, norms, position embeddings and
 * anything not named .weight / .lora_a / .lora_b in F32; Q8_0 needs rows of 32 and falls back to
 * F16 otherwise, as the converter does.
 */
export function storedType(name: string, shape: readonly number[], outtype: GgufOuttype): GgmlType {
  if (shape.length <= 1 || name.endsWith('_norm.weight') || name.startsWith('position_embd.')) return 'F32';
  if (!/\.(weight|lora_a|lora_b)$/.test(name)) return 'F32';
  const t = OUTTYPE[outtype].type;
  if (t === 'Q8_0' && shape[shape.length - 1] % GGML_TYPES.Q8_0.blockSize !== 0) return 'F16';
  return t;
}

function tensor(name: string, shape: number[], data: Float32Array, outtype: GgufOuttype): GgufTensor {
  const type = storedType(name, shape, outtype);
  return { name, shape, type, data: () => encodeTensor(data, type) };
}

/** Splits "model.layers.0.self_attn.q_proj.weight" into module and suffix. */
function splitParam(name: string): [string, string] {
  const i = name.lastIndexOf('.');
  return [name.slice(0, i), name.slice(i + 1)];
}

function header(t: GgufArchTable, type: 'model' | 'adapter', name: string): [string, GgufValue][] {
  return [
    ['general.architecture', str(t.arch)],
    ['general.type', str(type)],
    ['general.name', str(name)],
  ];
}

/** The table's SentencePiece vocabulary when the checkpoint has a tokenizer.model, else tokenizer.json's BPE. */
function vocabMetadata(t: GgufArchTable, tok: HfTokenizer, raw: Record<string, unknown>, vocabSize: number, where: string): [string, GgufValue][] {
  const spm = t.sentencePiece ? sentencePieceFile(tok) : null;
  if (t.sentencePiece && !spm && (tok.tokenizerJson.model as Record<string, unknown> | undefined)?.byte_fallback === true) {
    throw new DpoError(`${where}: a SentencePiece-style tokenizer without its tokenizer.model; copy the base model's tokenizer.model next to tokenizer.json, which llama.cpp's ${t.arch} vocabulary is written from`);
  }
  return spm ? spmTokenizerMetadata(tok, spm, t.sentencePiece!, raw, vocabSize) : tokenizerMetadata(tok, raw, vocabSize, where);
}

/**
 * Writes `model` (no LoRA layers: merge first) with its tokenizer as a llama.cpp model file.
 * @example exportModelGguf(model, tokenizer, 'model-f16.gguf', { outtype: 'f16', name: 'my-dpo-model' })
 */
export function exportModelGguf(model: CausalLM, tok: HfTokenizer, path: string, opts: { outtype: GgufOuttype; name: string; where?: string }): GgufExportResult {
  if (loraLayers(model).length) throw new Error('exportModelGguf: merge the adapter first (mergeAndUnload)');
  const a = model.arch;
  const t = ggufTableFor(a.modelType);
  const where = opts.where ?? tok.sourceDir ?? 'tokenizer';
  t.checkName?.(opts.name, (x) => tok.tokenToId(x));
  const tensors: GgufTensor[] = t.extraTensors(a).map((x) => tensor(x.name, [x.data.length], x.data, opts.outtype));
  for (const [pname, p] of model.namedParameters()) {
    const [module, suffix] = splitParam(pname);
    const name = `${ggufModuleName(t, module)}.${suffix}`;
    let data = p.data as Float32Array;
    const heads = t.permuteHeads(module, a);
    if (heads) data = permuteRows(data, p.shape[0], p.shape.length > 1 ? p.shape[1] : 1, heads);
    const shift = t.normShift;
    if (shift && name.endsWith('norm.weight')) data = data.map((x) => Math.fround(x + shift));
    tensors.push(tensor(name, p.shape.slice(), data, opts.outtype));
  }
  const metadata: [string, GgufValue][] = [
    ...header(t, 'model', opts.name),
    ...t.hparams(a),
    ['general.file_type', u32(OUTTYPE[opts.outtype].fileType)],
    ['general.quantization_version', u32(2)],
    ...vocabMetadata(t, tok, a.raw, a.vocabSize, where),
  ];
  writeGguf(path, metadata, tensors);
  return { tensors: tensors.length, caveats: t.caveats(a) };
}

/**
 * Writes the LoRA layers of `model` as a llama.cpp adapter (general.type "adapter"). llama.cpp
 * scales every layer by adapter.lora.alpha / rank; where PEFT's scale differs (rsLoRA's α/√r,
 * rank_pattern / alpha_pattern) the difference is folded into B, so the result is exact.
 * @example exportLoraGguf(policy.model, 'adapter.gguf', { outtype: 'f32', name: 'my-adapter' })
 */
export function exportLoraGguf(model: CausalLM, path: string, opts: { outtype: GgufOuttype; name: string }): GgufExportResult {
  const layers = loraLayers(model);
  if (!layers.length) throw new DpoError('GGUF adapter export: the model has no LoRA adapter (pass --adapter_name_or_path)');
  // A GGUF adapter holds only A and B over the original base; these variants need more (merge them instead).
  const init = loraConfigOf(model)?.initLoraWeights;
  const extra = layers.some(([, l]) => l.lora_magnitude_vector) ? 'DoRA magnitudes' : trainedCopies(model).length ? 'modules_to_save weights' : init === 'pissa' || init === 'olora' ? `a ${init} adapter (its base is the residual W − s·B₀·A₀)` : null;
  if (extra) throw new DpoError(`GGUF adapter export: llama.cpp adapters cannot hold ${extra}; export the merged model instead (--format gguf)`);
  const a = model.arch;
  const t = ggufTableFor(a.modelType);
  t.hparams(a); // refuses what llama.cpp would not run, as the base model's export does
  const alpha = layers[0][1].cfg.alpha;
  if (!alpha) throw new DpoError('GGUF adapter export: lora_alpha is 0, the adapter changes nothing');
  const tensors: GgufTensor[] = [];
  for (const [module, l] of layers) {
    if (module === 'lm_head' && a.tieEmbeddings) throw new DpoError('GGUF adapter export: the adapter targets lm_head, which llama.cpp ties to token_embd for this model; merge it instead (--format gguf)');
    const base = `${ggufModuleName(t, module)}.weight`;
    const r = l.cfg.r;
    const A = l.lora_A.weight.data as Float32Array; // (r, in)
    let B = l.lora_B.weight.data as Float32Array; // (out, r)
    const heads = t.permuteHeads(module, a);
    if (heads) B = permuteRows(B, l.outFeatures, r, heads);
    // llama.cpp's runtime scale is alpha / r; PEFT's is l.scaling.
    const fold = !l.cfg.useRslora && l.cfg.alpha === alpha ? 1 : (l.scaling * r) / alpha;
    if (fold !== 1) B = B.map((x) => x * fold);
    tensors.push(tensor(`${base}.lora_a`, [r, l.inFeatures], A, opts.outtype));
    tensors.push(tensor(`${base}.lora_b`, [l.outFeatures, r], B, opts.outtype));
  }
  const metadata: [string, GgufValue][] = [
    ...header(t, 'adapter', opts.name),
    ['adapter.type', str('lora')],
    ['adapter.lora.alpha', f32(alpha)],
    ['general.quantization_version', u32(2)],
  ];
  writeGguf(path, metadata, tensors);
  return { tensors: tensors.length, caveats: t.caveats(a) };
}
