/**
 * A faster, identical ByteLevel pre-tokenizer step for @huggingface/tokenizers: the library maps
 * every pre-token through TextEncoder and Array.from(...).join(''), which is about half of all
 * encode time on English text. For pure-ASCII pieces one byte is one char code, so a table lookup
 * gives the same string; anything else goes through the library's own code unchanged.
 */

interface ByteLevelLike {
  add_prefix_space: boolean;
  use_regex: boolean;
  pattern: RegExp;
  byte_encoder: Record<number, string>;
  pre_tokenize_text: (text: string) => string[];
  pre_tokenize: (text: string | string[]) => string[];
  tokenizers?: unknown[];
}

function isByteLevel(x: unknown): x is ByteLevelLike {
  const o = x as ByteLevelLike | null;
  return !!o && typeof o.pre_tokenize_text === 'function' && o.byte_encoder !== undefined && typeof o.use_regex === 'boolean' && o.pattern instanceof RegExp;
}

function speedUp(b: ByteLevelLike): void {
  const table: string[] = Array.from({ length: 128 }, (_, c) => b.byte_encoder[c]);
  if (table.some((s) => typeof s !== 'string')) return; // not the layout we know: keep the original
  const mapPiece = (piece: string): string | null => {
    let out = '';
    for (let i = 0; i < piece.length; i++) {
      const c = piece.charCodeAt(i);
      if (c >= 128) return null;
      out += table[c];
    }
    return out;
  };
  // The library's pre_tokenize_text with the per-piece mapping replaced.
  b.pre_tokenize_text = (text: string): string[] => {
    if (b.add_prefix_space && !text.startsWith(' ')) text = ` ${text}`;
    const pieces = b.use_regex ? text.match(b.pattern) ?? [] : [text];
    const out = new Array<string>(pieces.length);
    for (let i = 0; i < pieces.length; i++) {
      out[i] = mapPiece(pieces[i]) ?? slowMap(b, pieces[i]);
    }
    return out;
  };
  // PreTokenizer.pre_tokenize is map + flat(); flat() costs more than the mapping for one-piece lists.
  b.pre_tokenize = (text: string | string[]): string[] => {
    if (!Array.isArray(text)) return b.pre_tokenize_text(text);
    const out: string[] = [];
    for (const t of text) for (const p of b.pre_tokenize_text(t)) out.push(p);
    return out;
  };
}

/** The library's mapping of one piece: its UTF-8 bytes through byte_encoder. */
const encoder = new TextEncoder();
function slowMap(b: ByteLevelLike, piece: string): string {
  return Array.from(encoder.encode(piece), (byte) => b.byte_encoder[byte]).join('');
}

/** Replaces every ByteLevel pre-tokenizer inside `preTokenizer` (a Sequence or one step) in place. */
export function speedUpByteLevel(preTokenizer: unknown): void {
  if (!preTokenizer) return;
  if (isByteLevel(preTokenizer)) speedUp(preTokenizer);
  const steps = (preTokenizer as { tokenizers?: unknown }).tokenizers;
  if (Array.isArray(steps)) for (const s of steps) speedUpByteLevel(s);
}
