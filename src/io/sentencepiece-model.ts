/**
 * A reader of SentencePiece's tokenizer.model (a serialized sentencepiece_model.proto ModelProto)
 * for what the GGUF export needs: the pieces (field 1: piece string 1, score float 2, type enum 3,
 * default NORMAL), trainer_spec (field 2: model_type 3, byte_fallback 35) and normalizer_spec
 * (field 3: add_dummy_prefix 3, default true). Unknown fields are skipped, as protobuf does.
 */
import { readFileSync } from 'node:fs';
import { DpoError } from '../errors.js';

/** sentencepiece_model.proto's SentencePiece.Type (the same numbers as gguf-py's TokenType). */
export const SPM_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface SpmPiece { piece: string; score: number; type: number }

export interface SentencePieceModel {
  pieces: SpmPiece[];
  /** TrainerSpec.model_type: 1 unigram (the default), 2 bpe, 3 word, 4 char. */
  modelType: number;
  byteFallback: boolean;
  addDummyPrefix: boolean;
}

/** One protobuf message's fields: [field number, wire type, varint value or bytes]. */
function* fields(b: Uint8Array, bad: (why: string) => never): Generator<[number, number, number, Uint8Array]> {
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let n = 0; n < 10; n++) {
      if (i >= b.length) bad('a varint runs past the end');
      const x = b[i++];
      v += (x & 0x7f) * mul;
      if (!(x & 0x80)) return v;
      mul *= 128;
    }
    return bad('a varint longer than 10 bytes');
  };
  while (i < b.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 0) bad('field number 0');
    const take = (n: number): Uint8Array => {
      if (i + n > b.length) bad(`field ${field} runs past the end`);
      const s = b.subarray(i, i + n);
      i += n;
      return s;
    };
    if (wire === 0) yield [field, wire, varint(), b.subarray(0, 0)];
    else if (wire === 1) yield [field, wire, 0, take(8)];
    else if (wire === 2) yield [field, wire, 0, take(varint())];
    else if (wire === 5) yield [field, wire, 0, take(4)];
    else bad(`wire type ${wire} of field ${field}`);
  }
}

/**
 * Parses tokenizer.model bytes; `where` names the file in the one-line error of a malformed one.
 * @example parseSentencePieceModel(readFileSync('tokenizer.model'), 'tokenizer.model').pieces[0].piece // '<pad>'
 */
export function parseSentencePieceModel(bytes: Uint8Array, where: string): SentencePieceModel {
  const bad = (why: string): never => {
    throw new DpoError(`${where}: not a SentencePiece model (${why}); the tokenizer.model file is damaged or of another kind: download it again, or remove it to export the tokenizer.json vocabulary`);
  };
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const out: SentencePieceModel = { pieces: [], modelType: 1, byteFallback: false, addDummyPrefix: true };
  for (const [f, w, v, s] of fields(bytes, bad)) {
    if (f === 1 && w === 2) {
      const p: SpmPiece = { piece: '', score: 0, type: SPM_TYPE.NORMAL };
      for (const [pf, pw, pv, ps] of fields(s, bad)) {
        if (pf === 1 && pw === 2) {
          try { p.piece = utf8.decode(ps); } catch { bad(`piece ${out.pieces.length} is not UTF-8`); }
        } else if (pf === 2 && pw === 5) p.score = new DataView(ps.buffer, ps.byteOffset, 4).getFloat32(0, true);
        else if (pf === 3 && pw === 0) p.type = pv;
      }
      if (p.type < 1 || p.type > 6) bad(`piece ${out.pieces.length} has type ${p.type}`);
      out.pieces.push(p);
    } else if (f === 2 && w === 2) {
      for (const [tf, tw, tv] of fields(s, bad)) {
        if (tf === 3 && tw === 0) out.modelType = tv;
        else if (tf === 35 && tw === 0) out.byteFallback = tv !== 0;
      }
    } else if (f === 3 && w === 2) {
      for (const [nf, nw, nv] of fields(s, bad)) if (nf === 3 && nw === 0) out.addDummyPrefix = nv !== 0;
    } else if (f <= 3) bad(`field ${f} has wire type ${w}`);
  }
  if (!out.pieces.length) bad('no pieces');
  return out;
}

/** Reads and parses a tokenizer.model file. */
export function readSentencePieceModel(path: string): SentencePieceModel {
  return parseSentencePieceModel(readFileSync(path), path);
}
