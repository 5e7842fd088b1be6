/**
 * The Python behaviour our chat-template renderer adds to @huggingface/jinja (strftime_now, `| string`),
 * checked against what Python prints, and the one-line errors of templates that fail.
 * (The real templates are checked end to end against transformers in tables.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { strftime } from '../../src/tokenizer/strftime.js';

const tinyDir = 'test/fixtures/tokenizers/tiny-bpe';
const tiny = (template: string) => {
  const t = HfTokenizer.fromDir(tinyDir);
  return new HfTokenizer(t.tokenizerJson, t.config, template);
};
const user = [{ role: 'user', content: 'hi' }];

test('strftime: Python datetime.strftime in the C locale', () => {
  const d = new Date(2026, 0, 5, 9, 7, 3); // a Monday
  // Python: datetime(2026, 1, 5, 9, 7, 3).strftime(...)
  assert.equal(strftime(d, '%d %B %Y'), '05 January 2026');
  assert.equal(strftime(d, '%B %d, %Y'), 'January 05, 2026');
  assert.equal(strftime(d, '%d %b %Y'), '05 Jan 2026');
  assert.equal(strftime(d, '%A %a %m/%y %H:%M:%S %I %p %j %%'), 'Monday Mon 01/26 09:07:03 09 AM 005 %');
  assert.equal(strftime(d, '%-d %-m %e'), '5 1  5');
  assert.equal(strftime(d, '%Q stays'), '%Q stays');
  assert.equal(strftime(new Date(2026, 11, 31, 23, 0, 0), '%j %I %p'), '365 11 PM');
});

test('strftime_now in a template reads the clock given (default: now)', () => {
  const tok = tiny("{{ strftime_now('%d %B %Y') }}");
  assert.equal(tok.applyChatTemplate(user, { now: new Date(2025, 5, 30) }), '30 June 2025');
  assert.equal(tok.applyChatTemplate(user), strftime(new Date(), '%d %B %Y'));
});

test("'| string' of dicts, lists, booleans and None is Python's str()", () => {
  const tok = tiny('{{ x | string }}|{{ y | string }}|{{ b | string }}|{{ n | string }}|{{ s | string }}|{{ 3 | string }}');
  const x = { name: "it's", q: 'say "hi"', both: `'"`, nl: 'a\nb', list: [1, 2.5, true, null], nested: { e: {} } };
  const out = tok.applyChatTemplate(user, { extra: { x, y: ['a', ['b']], b: false, n: null, s: 'plain' } });
  // Python: str({'name': "it's", ...}) etc.
  assert.equal(out, `{'name': "it's", 'q': 'say "hi"', 'both': '\\'"', 'nl': 'a\\nb', 'list': [1, 2.5, True, None], 'nested': {'e': {}}}|['a', ['b']]|False|None|plain|3`);
});

test('a template that raises or does not parse: one-line errors', () => {
  assert.throws(() => tiny("{{ raise_exception('System role not supported') }}").applyChatTemplate(user), /^DpoError: chat template failed to render: System role not supported$/);
  assert.throws(() => tiny('{% if %}').applyChatTemplate(user), (e: Error) => e.name === 'DpoError' && /^the chat template does not parse: /.test(e.message) && !e.message.includes('\n'));
});

test('the fixture tokenizers carry the real chat templates verbatim', () => {
  for (const [dir, file] of [['olmo2', 'olmo2'], ['granite', 'granite'], ['phi3.5', 'phi3.5'], ['phi4-mini', 'phi4-mini'], ['smollm3', 'smollm3']]) {
    const tok = HfTokenizer.fromDir(`test/fixtures/tokenizers/${dir}`);
    assert.equal(tok.chatTemplate, readFileSync(`tools/fixtures/chat_templates/${file}.jinja`, 'utf8'), dir);
  }
});
