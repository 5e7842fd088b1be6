/**
 * A Hugging Face tokenizer: tokenizer.json through @huggingface/tokenizers, tokenizer_config.json
 * for special tokens, and the chat template rendered by @huggingface/jinja with the variables
 * transformers passes, so ids equal transformers' AutoTokenizer (apply_chat_template included).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { DpoError } from '../errors.js';
import { speedUpTokenizer } from './fast-paths.js';
import { renderTemplate } from './render-template.js';

export interface ChatMessage {
  role: string;
  content: unknown;
  [k: string]: unknown;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  continueFinalMessage?: boolean;
  tools?: unknown[] | null;
  documents?: unknown[] | null;
  /** Extra template variables (transformers' **kwargs). */
  extra?: Record<string, unknown>;
  /** The clock the template's strftime_now reads (default: now); tests pin it. */
  now?: Date;
}

type Json = Record<string, unknown>;

/** A special token in tokenizer_config.json: a string or an AddedToken dict. */
function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

function readJson(path: string, what: string): Json {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Json;
  } catch (e) {
    throw new DpoError(`${path}: cannot read ${what} (${existsSync(path) ? (e as Error).message : 'file missing'})`);
  }
}

export class HfTokenizer {
  private readonly tok: Tokenizer;
  private template: Template | null = null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  padToken: string | null;
  readonly unkToken: string | null;
  readonly chatTemplate: string | null;
  /** Where it was loaded from (files are copied from here on save). */
  readonly sourceDir: string | null;

  constructor(readonly tokenizerJson: Json, readonly config: Json, chatTemplate: string | null = null, sourceDir: string | null = null) {
    try {
      this.tok = new Tokenizer(tokenizerJson, config);
      speedUpTokenizer(this.tok);
      // A broken pipeline (post_processor, normalizer) fails only when used: probe it once here.
      this.tok.encode('a b', { add_special_tokens: true });
    } catch (e) {
      throw new DpoError(`tokenizer.json${sourceDir ? ` in ${sourceDir}` : ''} could not be loaded: ${(e as Error).message}`);
    }
    this.bosToken = tokenString(config.bos_token);
    this.eosToken = tokenString(config.eos_token);
    this.padToken = tokenString(config.pad_token);
    this.unkToken = tokenString(config.unk_token);
    const ct = chatTemplate ?? config.chat_template;
    this.chatTemplate = typeof ct === 'string' ? ct : Array.isArray(ct) ? ((ct as Json[]).find((t) => t.name === 'default')?.template as string) ?? null : null;
    this.sourceDir = sourceDir;
  }

  /** Loads tokenizer.json, tokenizer_config.json and chat_template.jinja (if present) from a directory. */
  static fromDir(dir: string): HfTokenizer {
    const tj = join(dir, 'tokenizer.json');
    if (!existsSync(tj)) throw new DpoError(`${dir}: no tokenizer.json; the model directory must include its tokenizer (tokenizer.json + tokenizer_config.json)`);
    const tokenizerJson = readJson(tj, 'tokenizer.json');
    const cfgPath = join(dir, 'tokenizer_config.json');
    const config = existsSync(cfgPath) ? readJson(cfgPath, 'tokenizer_config.json') : {};
    const stm = join(dir, 'special_tokens_map.json');
    if (existsSync(stm)) {
      const m = readJson(stm, 'special_tokens_map.json');
      for (const k of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) if (config[k] === undefined && m[k] !== undefined) config[k] = m[k];
    }
    const jinja = join(dir, 'chat_template.jinja');
    const ctJson = join(dir, 'chat_template.json');
    const chat = existsSync(jinja) ? readFileSync(jinja, 'utf8') : existsSync(ctJson) ? (readJson(ctJson, 'chat_template.json').chat_template as string) : null;
    return new HfTokenizer(tokenizerJson, config, chat, dir);
  }

  tokenToId(token: string): number | null {
    return this.tok.token_to_id(token) ?? null;
  }

  get bosTokenId(): number | null {
    return this.bosToken === null ? null : this.tokenToId(this.bosToken);
  }
  get eosTokenId(): number | null {
    return this.eosToken === null ? null : this.tokenToId(this.eosToken);
  }
  get padTokenId(): number | null {
    return this.padToken === null ? null : this.tokenToId(this.padToken);
  }

  /** len(tokenizer): the vocabulary including added tokens. */
  get vocabSize(): number {
    let max = -1;
    for (const id of this.tok.get_vocab(true).values()) if (id > max) max = id;
    return max + 1;
  }

  /** Token ids as tokenizer(text)["input_ids"] (special tokens added unless told otherwise). */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.tok.decode(ids as number[], { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** The rendered chat template (transformers' apply_chat_template(..., tokenize=False)). */
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (!this.chatTemplate) {
      throw new DpoError(`the tokenizer${this.sourceDir ? ` in ${this.sourceDir}` : ''} has no chat_template; conversational data needs one (add "chat_template" to tokenizer_config.json) or use plain-text prompt/chosen/rejected`);
    }
    try {
      this.template ??= new Template(this.chatTemplate);
    } catch (e) {
      throw new DpoError(`the chat template${this.sourceDir ? ` in ${this.sourceDir}` : ''} does not parse: ${(e as Error).message}`);
    }
    const special: Record<string, unknown> = {};
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
      const v = tokenString(this.config[k]);
      if (v !== null) special[k] = v;
    }
    let out: string;
    try {
      out = renderTemplate(this.template, {
        ...special,
        messages,
        tools: opts.tools ?? null,
        documents: opts.documents ?? null,
        add_generation_prompt: !!opts.addGenerationPrompt,
        ...opts.extra,
      }, opts.now ?? new Date());
    } catch (e) {
      throw new DpoError(`chat template failed to render: ${(e as Error).message}`);
    }
    if (opts.continueFinalMessage) {
      // transformers: cut everything after the final message's content (drops its end-of-turn tokens).
      const last = messages[messages.length - 1];
      const content = typeof last?.content === 'string' ? last.content : '';
      const at = out.lastIndexOf(content.trim());
      if (at >= 0) out = out.slice(0, at + content.trim().length);
    }
    return out;
  }

  /** apply_chat_template(..., tokenize=True): the rendered text encoded without added special tokens. */
  applyChatTemplateIds(messages: ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, opts), { addSpecialTokens: false });
  }

  /** Writes the tokenizer files so transformers (and this library) load it again. */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const src = this.sourceDir;
    // (tokenizer.model and added_tokens.json too: the GGUF export reads a SentencePiece vocabulary from them.)
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'tokenizer.model', 'added_tokens.json']) {
      if (src && existsSync(join(src, f))) copyFileSync(join(src, f), join(dir, f));
    }
    if (!src) {
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(this.tokenizerJson));
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...this.config, chat_template: this.chatTemplate ?? undefined }, null, 2));
    }
  }
}
