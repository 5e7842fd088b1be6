/**
 * Faster, identical replacements for the hot paths of @huggingface/tokenizers (encoding English
 * text spent ~3/4 of its time in them), installed on one Tokenizer instance:
 * - encode_text: the library's logic with loops instead of nested flatMap (V8's flatMap is slow).
 * - ByteLevel: the library maps every piece through TextEncoder and Array.from(...).join(''); for a
 *   pure-ASCII piece one byte is one char code, so a table lookup gives the same string.
 * - PreTokenizer.pre_tokenize: map + flat(); appending in a loop gives the same list.
 * - DictionarySplitter.split (finding added tokens) walks its trie from every char; jumping to the
 *   next char that starts some added token skips only positions where that walk fails at once.
 * Each replacement is installed only when the library function it replaces has the exact source
 * it was written from (a fingerprint), so a library update falls back to the library's own code.
 */
import { createHash } from 'node:crypto';

type Fn = (...a: never[]) => unknown;
const fingerprint = (f: unknown) => (typeof f === 'function' ? createHash('sha256').update(f.toString()).digest('hex').slice(0, 16) : '');
/** The library's method as found on the prototype chain, if its source is the one we replicate. */
function known(obj: object, name: string, fp: string): boolean {
  let p = Object.getPrototypeOf(obj) as Record<string, unknown> | null;
  while (p && !Object.prototype.hasOwnProperty.call(p, name)) p = Object.getPrototypeOf(p) as Record<string, unknown> | null;
  return !!p && fingerprint(p[name] as Fn) === fp;
}

// @huggingface/tokenizers 0.2.0 (dist/tokenizers.mjs)
const FP = { encodeText: '7d27dab772cde833', byteLevelText: 'e5b2d64db1de045c', preTokenize: 'e1c2429462206ae2', split: '9102ad8ac61b53e4' };

interface AddedTokenLike {
  lstrip?: boolean;
  rstrip?: boolean;
}
interface Trie {
  [ch: string]: Trie | string | undefined;
}
interface SplitterLike {
  trie: Trie;
  split(t: string): string[];
}
interface TokenizerLike {
  splitter_unnormalized: SplitterLike;
  splitter_normalized: SplitterLike;
  added_tokens_map: Map<string, AddedTokenLike>;
  remove_space?: boolean;
  do_lowercase_and_remove_accent: boolean;
  normalizer: ((t: string) => string) | null;
  pre_tokenizer: ((t: string, o: { section_index: number }) => string[]) | null;
  model: (pieces: string[]) => string[];
  encode_text: (text: string | null) => string[] | null;
}

/** Added tokens with lstrip / rstrip eat the whitespace beside them (as the library does). */
function stripAround(parts: string[], map: Map<string, AddedTokenLike>): void {
  for (let i = 0; i < parts.length; i++) {
    const a = map.get(parts[i]);
    if (!a) continue;
    if (a.lstrip && i > 0) parts[i - 1] = parts[i - 1].trimEnd();
    if (a.rstrip && i < parts.length - 1) parts[i + 1] = parts[i + 1].trimStart();
  }
}

function speedUpEncodeText(t: TokenizerLike): void {
  t.encode_text = (text: string | null): string[] | null => {
    if (text === null) return null;
    const out: string[] = [];
    const sections = t.splitter_unnormalized.split(text);
    stripAround(sections, t.added_tokens_map);
    for (let sectionIndex = 0; sectionIndex < sections.length; sectionIndex++) {
      let s = sections[sectionIndex];
      if (s.length === 0) continue;
      if (t.added_tokens_map.has(s)) {
        out.push(s);
        continue;
      }
      if (t.remove_space === true) s = s.trim().split(/\s+/).join(' ');
      if (t.do_lowercase_and_remove_accent) s = s.toLowerCase().replace(/\p{M}/gu, '');
      if (t.normalizer !== null) s = t.normalizer(s);
      if (s.length === 0) continue;
      const subsections = t.splitter_normalized.split(s);
      stripAround(subsections, t.added_tokens_map);
      for (const sub of subsections) {
        if (sub.length === 0) continue;
        if (t.added_tokens_map.has(sub)) {
          out.push(sub);
          continue;
        }
        const pieces = t.pre_tokenizer !== null ? t.pre_tokenizer(sub, { section_index: sectionIndex }) : [sub];
        for (const tok of t.model(pieces)) out.push(tok);
      }
    }
    return out;
  };
}

function speedUpSplitter(d: SplitterLike): void {
  const trie = d.trie;
  const first = Object.keys(trie).filter((k) => k.length === 1);
  // Any code unit that starts an added token (\uXXXX escapes: no char-class syntax can leak in).
  const starts = first.length ? new RegExp(`[${first.map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}]`, 'g') : null;
  d.split = (text: string): string[] => {
    const n = text.length;
    if (!starts) return n ? [text] : [];
    const result: string[] = [];
    let start = 0, i = 0;
    for (;;) {
      starts.lastIndex = i;
      const m = starts.exec(text);
      if (!m) break;
      i = m.index;
      // From here on, the library's walk.
      let node: Trie | undefined = trie, match: string | null = null, j = i;
      while (j < n && (node = node[text[j]] as Trie | undefined)) {
        if (node.end) match = node.end as unknown as string;
        ++j;
      }
      if (match) {
        if (i > start) result.push(text.slice(start, i));
        result.push(match);
        i += match.length;
        start = i;
      } else ++i;
    }
    if (start < n) result.push(text.slice(start));
    return result;
  };
}

interface PreTokenizerLike {
  pre_tokenize_text: (text: string, options?: unknown) => string[];
  pre_tokenize: (text: string | string[], options?: unknown) => string[];
  tokenizers?: unknown[];
}
interface ByteLevelLike extends PreTokenizerLike {
  add_prefix_space: boolean;
  use_regex: boolean;
  pattern: RegExp;
  byte_encoder: Record<number, string>;
}

const isPreTokenizer = (x: unknown): x is PreTokenizerLike => !!x && typeof (x as PreTokenizerLike).pre_tokenize_text === 'function' && typeof (x as PreTokenizerLike).pre_tokenize === 'function';
const encoder = new TextEncoder();

function speedUpByteLevel(b: ByteLevelLike): void {
  const table: string[] = Array.from({ length: 128 }, (_, c) => b.byte_encoder[c]);
  if (table.some((s) => typeof s !== 'string')) return;
  const mapPiece = (piece: string): string => {
    let out = '';
    for (let i = 0; i < piece.length; i++) {
      const c = piece.charCodeAt(i);
      if (c >= 128) return Array.from(encoder.encode(piece), (byte) => b.byte_encoder[byte]).join(''); // the library's mapping
      out += table[c];
    }
    return out;
  };
  b.pre_tokenize_text = (text: string): string[] => {
    if (b.add_prefix_space && !text.startsWith(' ')) text = ` ${text}`;
    const pieces = b.use_regex ? text.match(b.pattern) ?? [] : [text];
    const out = new Array<string>(pieces.length);
    for (let i = 0; i < pieces.length; i++) out[i] = mapPiece(pieces[i]);
    return out;
  };
}

function withoutFlat(p: PreTokenizerLike): void {
  p.pre_tokenize = (text: string | string[], options?: unknown): string[] => {
    const out: string[] = [];
    for (const t of Array.isArray(text) ? text : [text]) for (const piece of p.pre_tokenize_text(t, options)) out.push(piece);
    return out;
  };
}

function speedUpPreTokenizer(p: unknown): void {
  if (!isPreTokenizer(p)) return;
  if ((p as ByteLevelLike).byte_encoder !== undefined && known(p, 'pre_tokenize_text', FP.byteLevelText)) speedUpByteLevel(p as ByteLevelLike);
  if (known(p, 'pre_tokenize', FP.preTokenize)) withoutFlat(p);
  if (Array.isArray(p.tokenizers)) for (const s of p.tokenizers) speedUpPreTokenizer(s);
}

/** Installs the fast paths on a @huggingface/tokenizers Tokenizer (in place). */
export function speedUpTokenizer(tokenizer: object): void {
  const t = tokenizer as TokenizerLike;
  if (known(t, 'encode_text', FP.encodeText)) speedUpEncodeText(t);
  for (const d of [t.splitter_unnormalized, t.splitter_normalized]) if (d && d.trie && known(d, 'split', FP.split)) speedUpSplitter(d);
  speedUpPreTokenizer(t.pre_tokenizer);
}
