/**
 * The tokenizer as GGUF metadata, the way convert_hf_to_gguf.py's _set_vocab_gpt2 and gguf-py's
 * SpecialVocab write it: tokens padded to the model's vocab_size, token types, merges, the BPE
 * pre-tokenizer name llama.cpp implements, special-token ids, add_bos/add_eos and the chat
 * template. Byte-level BPE (GPT-2, Llama 3, Qwen, SmolLM) is what llama.cpp calls "gpt2".
 */
import { createHash } from 'node:crypto';
import { DpoError } from '../errors.js';
import type { HfTokenizer } from '../tokenizer/tokenizer.js';
import { arr, bool, str, u32, type GgufValue } from './gguf.js';
import { CHKTXT, PRE_TOKENIZER_BY_HASH } from './gguf-pre-tokenizers.js';

type Json = Record<string, unknown>;

/** gguf-py's TokenType. */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Added tokens llama.cpp's converter treats as control tokens even when not marked special. */
export function looksSpecial(t: string): boolean {
  return ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(t)
    || (t.startsWith('<|') && t.endsWith('|>'))
    || (t.startsWith('<｜') && t.endsWith('｜>'))
    || (t.startsWith('<unused') && t.endsWith('>'));
}

/** Python's str() of a list of ints: "[1, 2, 3]". */
const pyList = (ids: readonly number[]) => `[${ids.join(', ')}]`;

/**
 * The name llama.cpp knows this pre-tokenizer by: the converter's hash of the check text's ids,
 * else (a tokenizer the converter has no hash for) a structural match for a plain ByteLevel
 * pre-tokenizer, which is GPT-2's regex.
 */
export function preTokenizerName(tok: HfTokenizer, where: string): string {
  const hash = createHash('sha256').update(pyList(tok.encode(CHKTXT))).digest('hex');
  const known = PRE_TOKENIZER_BY_HASH[hash];
  if (known) return known;
  const pre = tok.tokenizerJson.pre_tokenizer as Json | null | undefined;
  if (pre && pre.type === 'ByteLevel' && pre.use_regex !== false) return 'gpt-2';
  throw new DpoError(`${where}: llama.cpp has no pre-tokenizer matching this tokenizer (check hash ${hash.slice(0, 16)}…, pre_tokenizer ${JSON.stringify(pre?.type ?? null)}); llama.cpp's convert_hf_to_gguf.py refuses it too. Export safetensors (dpo merge) instead, or use a base model llama.cpp supports`);
}

function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

const SPECIAL_KEYS: Record<string, string> = {
  bos: 'tokenizer.ggml.bos_token_id',
  eos: 'tokenizer.ggml.eos_token_id',
  unk: 'tokenizer.ggml.unknown_token_id',
  sep: 'tokenizer.ggml.seperator_token_id', // (sic) llama.cpp's spelling
  pad: 'tokenizer.ggml.padding_token_id',
  mask: 'tokenizer.ggml.mask_token_id',
};

/**
 * Special-token ids and add_* flags as SpecialVocab resolves them: tokenizer_config.json's
 * *_token matched against added_tokens first, config.json's *_token_id after; a leading / trailing
 * special token in the TemplateProcessing post-processor sets add_bos / add_eos.
 */
export function specialTokens(tok: HfTokenizer, modelConfig: Json, nVocab: number): [string, GgufValue][] {
  const cfg: Json = { ...tok.config };
  const added = (tok.tokenizerJson.added_tokens ?? []) as Json[];
  const addFlags = new Map<string, boolean>();
  const post = tok.tokenizerJson.post_processor as Json | null | undefined;
  for (const p of post ? ((post.processors as Json[] | undefined) ?? [post]) : []) {
    if (p.type !== 'TemplateProcessing') continue;
    const single = (p.single ?? []) as Json[];
    if (single.length <= 1) continue;
    const first = ((single[0].SpecialToken ?? {}) as Json).id as string | undefined;
    const last = ((single[single.length - 1].SpecialToken ?? {}) as Json).id as string | undefined;
    const bos = tokenContent(cfg.bos_token);
    if (first) {
      if (!bos) cfg.bos_token = first;
      addFlags.set('bos', first === (tokenContent(cfg.bos_token) ?? first) || first === tokenContent(cfg.cls_token));
    }
    if (last) {
      if (!tokenContent(cfg.eos_token)) cfg.eos_token = last;
      addFlags.set('eos', last === tokenContent(cfg.eos_token));
    }
  }
  const ids = new Map<string, number>();
  const set = (typ: string, id: unknown) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= nVocab || ids.has(typ)) return;
    ids.set(typ, id);
  };
  for (const typ of ['bos', 'eos', 'unk', 'sep', 'pad', 'cls', 'mask']) {
    const flag = cfg[`add_${typ}_token`];
    if (typeof flag === 'boolean') addFlags.set(typ, flag);
    const content = tokenContent(cfg[`${typ}_token`]);
    if (content === null) continue;
    set(typ, added.find((a) => a.content === content)?.id);
  }
  for (const typ of ['bos', 'eos', 'unk', 'sep', 'pad', 'cls', 'mask']) set(typ, modelConfig[`${typ}_token_id`]);
  const out: [string, GgufValue][] = [];
  for (const [typ, id] of ids) if (SPECIAL_KEYS[typ]) out.push([SPECIAL_KEYS[typ], u32(id)]);
  for (const [typ, v] of addFlags) if (typ === 'bos' || typ === 'eos' || typ === 'sep') out.push([`tokenizer.ggml.add_${typ}_token`, bool(v)]);
  return out;
}

/** merges as "a b" strings; pairs containing spaces encode them as U+0120, as gguf-py does. */
function merges(model: Json, where: string): string[] {
  const m = model.merges;
  if (!Array.isArray(m)) throw new DpoError(`${where}: tokenizer.json has no BPE merges`);
  return m.map((x) => {
    if (typeof x === 'string') return x;
    if (Array.isArray(x) && x.length === 2) return x.map((p: string) => p.replace(/ /g, '\u0120')).join(' ');
    throw new DpoError(`${where}: tokenizer.json merges in an unknown format (${JSON.stringify(x).slice(0, 40)})`);
  });
}

/**
 * tokenizer.* metadata for a model with `vocabSize` embedding rows.
 * @example tokenizerMetadata(policy.tokenizer, model.arch.raw, model.arch.vocabSize, dir)
 */
export function tokenizerMetadata(tok: HfTokenizer, modelConfig: Json, vocabSize: number, where: string): [string, GgufValue][] {
  const model = (tok.tokenizerJson.model ?? {}) as Json;
  const pre = tok.tokenizerJson.pre_tokenizer as Json | null | undefined;
  const byteLevel = JSON.stringify(pre ?? {}).includes('"ByteLevel"');
  if (model.type !== 'BPE' || model.byte_fallback === true || !byteLevel) {
    throw new DpoError(`${where}: GGUF export supports byte-level BPE tokenizers (GPT-2, Llama 3, Qwen, SmolLM); this one is ${String(model.type)}${model.byte_fallback ? ' with byte fallback (SentencePiece-style)' : ''}. Convert the merged safetensors (dpo merge) with llama.cpp's convert_hf_to_gguf.py instead`);
  }
  const vocab = new Map<number, string>();
  for (const [t, id] of Object.entries(model.vocab as Record<string, number>)) vocab.set(id, t);
  const added = new Map<number, Json>();
  for (const a of (tok.tokenizerJson.added_tokens ?? []) as Json[]) {
    vocab.set(a.id as number, a.content as string);
    added.set(a.id as number, a);
  }
  const maxId = Math.max(...vocab.keys());
  if (maxId >= vocabSize) throw new DpoError(`${where}: the tokenizer has token id ${maxId} but the model's vocab_size is ${vocabSize}`);
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    let t = vocab.get(i);
    if (t === undefined) {
      tokens.push(`[PAD${i}]`);
      types.push(TOKEN_TYPE.UNUSED);
      continue;
    }
    const a = added.get(i);
    if (!a) types.push(TOKEN_TYPE.NORMAL);
    else {
      // llama.cpp expects control / user-defined tokens pre-normalised.
      if (a.normalized === false) t = tok.decode(tok.encode(t, { addSpecialTokens: false }));
      if (a.special === true || looksSpecial(t)) types.push(TOKEN_TYPE.CONTROL);
      else {
        t = t.replace(/\u2581/g, ' ');
        types.push(TOKEN_TYPE.USER_DEFINED);
      }
    }
    tokens.push(t);
  }
  const out: [string, GgufValue][] = [
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str(preTokenizerName(tok, where))],
    ['tokenizer.ggml.tokens', arr('string', tokens)],
    ['tokenizer.ggml.token_type', arr('i32', types)],
    ['tokenizer.ggml.merges', arr('string', merges(model, where))],
    ...specialTokens(tok, modelConfig, vocabSize),
  ];
  if (tok.chatTemplate) out.push(['tokenizer.chat_template', str(tok.chatTemplate)]);
  return out;
}
