/**
 * A SentencePiece vocabulary (tokenizer.model) as GGUF metadata, the way convert_hf_to_gguf.py's
 * _set_vocab_sentencepiece / _create_vocab_sentencepiece write it (llama.cpp's "llama" tokenizer):
 * every piece with its score and type (SentencePiece's user-defined pieces become NORMAL, byte
 * pieces <0xXX> BYTE), ids up to the model's vocab_size without a piece as [PADi] (score −10000,
 * UNUSED), the added tokens of added_tokens.json / tokenizer_config.json / tokenizer.json over them
 * (score −1000), then gguf-py's SpecialVocab ids and add_* flags and the chat template.
 * The architecture table says which added-token files its converter reads (SpmVocab).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../errors.js';
import type { HfTokenizer } from '../tokenizer/tokenizer.js';
import { arr, bool, str, type GgufValue } from './gguf.js';
import { TOKEN_TYPE, looksSpecial, specialTokens } from './gguf-tokenizer.js';
import { SPM_TYPE, readSentencePieceModel } from './sentencepiece-model.js';

type Json = Record<string, unknown>;

/** How an architecture's converter writes a SentencePiece vocabulary (its set_vocab). */
export interface SpmVocab {
  /**
   * Added-token sources laid over the pieces, in order: 'added_tokens.json' (USER_DEFINED),
   * 'added_tokens_decoder' (tokenizer_config.json's), 'tokenizer.json' (its added_tokens).
   */
  added: readonly ('added_tokens.json' | 'added_tokens_decoder' | 'tokenizer.json')[];
  /**
   * _create_vocab_sentencepiece's rule for added tokens: special or looking special → CONTROL, else
   * USER_DEFINED with ▁ as a space (true); Phi3MiniModel's: special → CONTROL, else USER_DEFINED (false).
   */
  looksSpecial: boolean;
  /** tokenizer.ggml.add_space_prefix when the converter writes it (Gemma: false; llama.cpp's default is true). */
  addSpacePrefix?: boolean;
}

/** The SentencePiece file of a checkpoint whose tokenizer has one, else null. */
export function sentencePieceFile(tok: HfTokenizer): string | null {
  const p = tok.sourceDir ? join(tok.sourceDir, 'tokenizer.model') : null;
  return p && existsSync(p) ? p : null;
}

function readJsonIfAny(dir: string, name: string): Json | null {
  const p = join(dir, name);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as Json;
  } catch (e) {
    throw new DpoError(`${p}: not valid JSON (${(e as Error).message}); fix or remove the file`);
  }
}

/**
 * tokenizer.* metadata from `file` (the checkpoint's tokenizer.model) for a model with `vocabSize` rows.
 * @example spmTokenizerMetadata(tok, sentencePieceFile(tok)!, { added: ['added_tokens.json', 'added_tokens_decoder'], looksSpecial: true }, model.arch.raw, model.arch.vocabSize)
 */
export function spmTokenizerMetadata(tok: HfTokenizer, file: string, how: SpmVocab, modelConfig: Json, vocabSize: number): [string, GgufValue][] {
  const spm = readSentencePieceModel(file);
  const dir = tok.sourceDir!;
  const tokens = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const scores = new Array<number>(vocabSize).fill(-10000);
  const types = new Array<number>(vocabSize).fill(TOKEN_TYPE.UNUSED);
  spm.pieces.slice(0, vocabSize).forEach((p, i) => {
    tokens[i] = p.piece;
    scores[i] = p.score;
    types[i] = p.type === SPM_TYPE.USER_DEFINED ? TOKEN_TYPE.NORMAL : p.type;
  });
  const put = (id: number, text: string, type: number) => {
    if (!Number.isInteger(id) || id < 0) throw new DpoError(`${dir}: added token ${JSON.stringify(text)} has id ${id}; fix the tokenizer files`);
    if (id >= vocabSize) return; // (the converter ignores ids past vocab_size)
    tokens[id] = text;
    scores[id] = -1000;
    types[id] = type;
  };
  const entries = (src: SpmVocab['added'][number]): [number, string, boolean][] => {
    if (src === 'added_tokens.json') return Object.entries(readJsonIfAny(dir, src) ?? {}).map(([t, id]) => [id as number, t, false]);
    if (src === 'tokenizer.json') return ((tok.tokenizerJson.added_tokens ?? []) as Json[]).map((a) => [Number(a.id), String(a.content), a.special === true]);
    const dec = (tok.config.added_tokens_decoder ?? {}) as Record<string, Json>;
    return Object.entries(dec).map(([id, a]) => [Number(id), String(a.content), a.special === true]);
  };
  for (const src of how.added) {
    for (const [id, text, special] of entries(src)) {
      if (src === 'added_tokens.json') put(id, text, TOKEN_TYPE.USER_DEFINED);
      else if (special || (how.looksSpecial && looksSpecial(text))) put(id, text, TOKEN_TYPE.CONTROL);
      else put(id, how.looksSpecial ? text.replace(/\u2581/g, ' ') : text, TOKEN_TYPE.USER_DEFINED);
    }
  }
  const out: [string, GgufValue][] = [
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.pre', str('default')],
    ['tokenizer.ggml.tokens', arr('string', tokens)],
    ['tokenizer.ggml.scores', arr('f32', scores)],
    ['tokenizer.ggml.token_type', arr('i32', types)],
    ...specialTokens(tok, modelConfig, vocabSize),
  ];
  if (tok.chatTemplate) out.push(['tokenizer.chat_template', str(tok.chatTemplate)]);
  if (how.addSpacePrefix !== undefined) out.push(['tokenizer.ggml.add_space_prefix', bool(how.addSpacePrefix)]);
  return out;
}
