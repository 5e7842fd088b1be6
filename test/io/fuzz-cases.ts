/**
 * The fuzz cases, run in a child process by fuzz.test.ts (under a memory cap and a watchdog):
 * seeded mutations of config.json, safetensors headers and files, the shard index, tokenizer files,
 * data rows and YAML configs, each pushed through the loader a user's input goes through. Every
 * case must load or fail with a DpoError. Prints one JSON line per case: {"start": id, "what"}
 * before it runs (so the parent can name a case that hangs or blows memory), then
 * {"id", "outcome": "ok" | "dpo" | "other", "error"?}.
 *
 * Run only with DPO_FUZZ_WORKER=1 (the test runner also loads every file under test/: then it does nothing).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { DpoError } from '../../src/errors.js';
import { Rng } from '../../src/tensor/rng.js';
import { loadCausalLM } from '../../src/models/load.js';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { Dataset } from '../../src/data/dataset.js';
import { detectFormat, invalidDataError, validateRows } from '../../src/data/validate.js';
import { prepareRows } from '../../src/data/prepare.js';
import { resolveOptions } from '../../src/cli/args.js';
import { TRAIN_SPECS } from '../../src/cli/train.js';
import { TRAINING_OPTIONS } from '../../src/dpo/options.js';
import { DPOConfig } from '../../src/dpo/config.js';
import { LoraConfig } from '../../src/lora/config.js';

const FIXTURES = 'test/fixtures/models';

type Case = { what: string; run: () => unknown | Promise<unknown> };

class Gen {
  constructor(readonly rng: Rng) {}
  int(n: number): number {
    return this.rng.nextInt(n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.rng.nextFloat() < p;
  }
}

/** Values a hostile or broken file might hold where a number belongs. */
const WEIRD: unknown[] = [0, -1, 1e9, 1.5, -0.5, 2 ** 31, 2 ** 53, 1e300, 'NaN', 'Infinity', '12', 'abc', '', null, true, false, [], [1, 2], {}, { a: 1 }];

function mutateValue(g: Gen, v: unknown): unknown {
  if (typeof v === 'number' && g.chance(0.3)) return g.pick([v * 2, v + 1, Math.floor(v / 2), v * 1e6, -v]);
  return g.pick(WEIRD);
}

function mutateObject(g: Gen, obj: Record<string, unknown>, extraKeys: string[] = []): Record<string, unknown> {
  const o = structuredClone(obj);
  const n = 1 + g.int(g.chance(0.2) ? 4 : 1);
  for (let i = 0; i < n; i++) {
    const keys = [...Object.keys(o), ...extraKeys];
    const k = g.pick(keys);
    if (g.chance(0.15)) delete o[k];
    else if (o[k] && typeof o[k] === 'object' && !Array.isArray(o[k]) && g.chance(0.7)) o[k] = mutateObject(g, o[k] as Record<string, unknown>);
    else o[k] = mutateValue(g, o[k]);
  }
  return o;
}

/** A working copy of a fixture whose files a case overwrites and the next case restores. */
class Scratch {
  readonly dir: string;
  constructor(readonly root: string, readonly fixture: string) {
    this.dir = join(root, fixture);
    cpSync(join(FIXTURES, fixture), this.dir, { recursive: true });
  }
  restore(file: string): void {
    cpSync(join(FIXTURES, this.fixture, file), join(this.dir, file));
  }
  original(file: string): Buffer {
    return readFileSync(join(FIXTURES, this.fixture, file));
  }
}

function configCases(g: Gen, s: Map<string, Scratch>, count: number): Case[] {
  const extra = ['head_dim', 'num_key_value_heads', 'rope_scaling', 'rope_theta', 'sliding_window', 'use_sliding_window', 'n_inner', 'attention_bias', 'mlp_bias', 'tie_word_embeddings', 'model_type'];
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const sc = s.get(g.pick(['llama', 'llama-tied', 'mistral', 'qwen2', 'qwen3', 'gpt2', 'llama-sharded']))!;
    const cfg = JSON.parse(sc.original('config.json').toString('utf8'));
    const whole = g.chance(0.05);
    const text = whole ? g.pick(['', '[]', 'null', '1', '{', JSON.stringify(cfg).slice(0, g.int(400))]) : JSON.stringify(mutateObject(g, cfg, extra));
    out.push({
      what: `config.json of ${sc.fixture}: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`,
      run: () => {
        writeFileSync(join(sc.dir, 'config.json'), text);
        try {
          loadCausalLM(sc.dir);
        } finally {
          sc.restore('config.json');
        }
      },
    });
  }
  return out;
}

function headerOf(buf: Buffer): { n: number; header: Record<string, Record<string, unknown>> } {
  const n = Number(buf.readBigUInt64LE(0));
  return { n, header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) };
}

function withHeader(buf: Buffer, n: number, header: unknown): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, buf.subarray(8 + n)]);
}

function safetensorsCases(g: Gen, s: Map<string, Scratch>, count: number): Case[] {
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const sc = s.get(g.pick(['llama', 'gpt2', 'llama-bf16', 'qwen3']))!;
    const orig = sc.original('model.safetensors');
    const { n, header } = headerOf(orig);
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    let bytes: Buffer;
    let what: string;
    const kind = g.int(8);
    if (kind === 0) {
      const len = g.pick([0n, 1n, 7n, BigInt(n - 1), BigInt(n + 1), BigInt(orig.length), 2n ** 63n, 2n ** 64n - 1n, 100_000_001n]);
      bytes = Buffer.from(orig);
      bytes.writeBigUInt64LE(len, 0);
      what = `header length ${len}`;
    } else if (kind === 1) {
      const at = g.pick([0, 3, 8, 9, n, n + 8, n + 9, orig.length - 1, g.int(orig.length)]);
      bytes = orig.subarray(0, at);
      what = `truncated at ${at}`;
    } else if (kind === 2) {
      bytes = Buffer.from(orig);
      const k = 1 + g.int(4);
      for (let j = 0; j < k; j++) bytes[8 + g.int(n)] = g.int(256);
      what = `${k} header bytes flipped`;
    } else {
      const h = structuredClone(header);
      const t = g.pick(names);
      const e = h[t];
      const field = g.pick(['shape', 'dtype', 'data_offsets', 'entry', 'name', 'metadata']);
      if (field === 'shape') {
        const sh = (e.shape as number[]).slice();
        if (g.chance(0.3)) e.shape = g.pick(WEIRD);
        else if (sh.length && g.chance(0.7)) {
          sh[g.int(sh.length)] = g.pick([0, 1, -1, 1.5, 1e9, 2 ** 53, 2 ** 31, sh[0] * 2]) as number;
          e.shape = sh;
        } else e.shape = g.chance(0.5) ? [] : [...sh, 1];
      } else if (field === 'dtype') e.dtype = g.pick(['I64', 'I32', 'F64', 'BOOL', 'U8', 'F8_E4M3', 'XX', 'f32', null, 5]);
      else if (field === 'data_offsets') {
        const [b0, b1] = e.data_offsets as number[];
        e.data_offsets = g.pick([[b1, b0], [b0, b1 + 4], [b0 - 4, b1], [0, 2 ** 53], [-1, b1], [b0], [b0, b1, 3], 'x', [1.5, b1]]);
      } else if (field === 'entry') {
        if (g.chance(0.5)) delete h[t];
        else h[t] = g.pick(WEIRD) as Record<string, unknown>;
      } else if (field === 'name') {
        h[g.pick([`${t}x`, t.replace(/\d+/, '7'), t.replace(/\d+/, '1000000000'), `transformer.${t}`, '', '__proto__'])] = e;
        delete h[t];
      } else h.__metadata__ = g.pick(WEIRD) as Record<string, unknown>;
      bytes = withHeader(orig, n, h);
      what = `${field} of "${t}": ${JSON.stringify(h[t] ?? null)?.slice(0, 200)}`;
    }
    out.push({
      what: `model.safetensors of ${sc.fixture}: ${what}`,
      run: () => {
        writeFileSync(join(sc.dir, 'model.safetensors'), bytes);
        try {
          loadCausalLM(sc.dir);
        } finally {
          sc.restore('model.safetensors');
        }
      },
    });
  }
  // The shard index of a sharded checkpoint.
  const sh = s.get('llama-sharded')!;
  const index = JSON.parse(sh.original('model.safetensors.index.json').toString('utf8'));
  for (let i = 0; i < Math.ceil(count / 8); i++) {
    const m = g.chance(0.2) ? null : mutateObject(g, index, ['weight_map', 'metadata']);
    const wm = m?.weight_map;
    if (m && wm && typeof wm === 'object' && !Array.isArray(wm) && g.chance(0.6)) {
      const keys = Object.keys(wm);
      const k = g.pick(keys);
      (wm as Record<string, unknown>)[k] = g.pick(['model-00009-of-00004.safetensors', '../x.safetensors', 'model.bin', 5, null, '']);
    }
    const text = m ? JSON.stringify(m) : JSON.stringify(index).slice(0, g.int(200));
    if (!m && !text) continue;
    out.push({
      what: `model.safetensors.index.json: ${text.slice(0, 300)}`,
      run: () => {
        writeFileSync(join(sh.dir, 'model.safetensors.index.json'), text);
        try {
          loadCausalLM(sh.dir);
        } finally {
          sh.restore('model.safetensors.index.json');
        }
      },
    });
  }
  return out;
}

function tokenizerCases(g: Gen, s: Map<string, Scratch>, count: number): Case[] {
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const sc = s.get(g.pick(['llama', 'gpt2', 'qwen3']))!;
    const file = g.pick(['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']);
    const orig = sc.original(file).toString('utf8');
    let text: string;
    const kind = g.int(4);
    if (kind === 0) text = orig.slice(0, g.int(orig.length));
    else if (kind === 1) text = g.pick(['', 'null', '[]', '1', '"x"', '{}', '{"model": null}', '{{ broken', '{% for %}', '\u0000']);
    else if (file === 'chat_template.jinja') text = g.pick(['{{ messages[0].content.foo.bar() }}', '{% for m in messages %}{{ m }}', '{{ raise_exception("no") }}', '{{ 1/0 }}', orig.replace('messages', 'mesages')]);
    else {
      const extra = file === 'tokenizer.json' ? ['model', 'added_tokens', 'normalizer', 'pre_tokenizer', 'decoder', 'post_processor'] : ['bos_token', 'eos_token', 'pad_token', 'chat_template', 'added_tokens_decoder', 'model_max_length'];
      text = JSON.stringify(mutateObject(g, JSON.parse(orig), extra));
    }
    out.push({
      what: `${file} of ${sc.fixture}: ${text.slice(0, 300)}`,
      run: () => {
        writeFileSync(join(sc.dir, file), text);
        try {
          const tok = HfTokenizer.fromDir(sc.dir);
          tok.encode('hello world, how are you?');
          void tok.vocabSize;
          void tok.eosTokenId;
          if (tok.chatTemplate) tok.applyChatTemplate([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }], { addGenerationPrompt: true });
        } finally {
          sc.restore(file);
        }
      },
    });
  }
  return out;
}

function randomValue(g: Gen, depth = 0): unknown {
  const k = g.int(depth > 2 ? 6 : 9);
  switch (k) {
    case 0: return 'a short answer';
    case 1: return 'x'.repeat(g.pick([0, 1, 1000, 300_000]));
    case 2: return g.pick([0, -1, 1.5, 1e300]);
    case 3: return null;
    case 4: return g.chance(0.5);
    case 5: return '\u{1F600} \u0000 \ud800';
    case 6: return Array.from({ length: g.int(3) }, () => randomValue(g, depth + 1));
    case 7: return [{ role: g.pick(['user', 'assistant', 'system', 'robot', 5]), content: randomValue(g, depth + 1) }];
    default: return { role: 'user', content: randomValue(g, depth + 1) };
  }
}

function dataCases(g: Gen, root: string, tok: () => HfTokenizer, count: number): Case[] {
  const out: Case[] = [];
  const good = { prompt: 'What is 2+2?', chosen: ' 4', rejected: ' 5' };
  const conv = { prompt: [{ role: 'user', content: 'hi' }], chosen: [{ role: 'assistant', content: 'hello' }], rejected: [{ role: 'assistant', content: 'go away' }] };
  for (let i = 0; i < count; i++) {
    const rows: unknown[] = [];
    const n = 1 + g.int(4);
    for (let j = 0; j < n; j++) {
      const base: Record<string, unknown> = structuredClone(g.chance(0.5) ? good : conv);
      const m = g.int(3);
      for (let k = 0; k < m; k++) {
        const key = g.pick(['prompt', 'chosen', 'rejected', 'extra']);
        if (g.chance(0.3)) delete base[key];
        else base[key] = randomValue(g);
      }
      rows.push(g.chance(0.05) ? randomValue(g) : base);
    }
    const ext = g.pick(['.json', '.jsonl', '.json']);
    let text = ext === '.jsonl' ? rows.map((r) => JSON.stringify(r)).join('\n') : JSON.stringify(g.chance(0.1) ? { train: rows } : rows);
    if (g.chance(0.1)) text = text.slice(0, g.int(text.length));
    const path = join(root, `data-${i}${ext}`);
    out.push({
      what: `data ${ext}: ${text.slice(0, 300)}`,
      run: async () => {
        writeFileSync(path, text);
        try {
          const ds = await Dataset.fromFile(path);
          const format = detectFormat(ds.rows);
          const errors = validateRows(ds.rows, format);
          if (errors.length) throw invalidDataError(path, errors, ds.length);
          prepareRows(ds.rows, tok(), { maxLength: g.pick([null, 8, 1024]), truncationMode: g.pick(['keep_start', 'keep_end']) }, format.conversational);
        } finally {
          rmSync(path, { force: true });
        }
      },
    });
  }
  return out;
}

function yamlCases(g: Gen, root: string, count: number): Case[] {
  const out: Case[] = [];
  const keys = TRAIN_SPECS.map((s) => s.snake).filter((k) => k !== 'config');
  for (let i = 0; i < count; i++) {
    let text: string;
    const kind = g.int(5);
    if (kind === 0) text = g.pick(['', '---', '- a\n- b', '42', 'a: [1, 2', 'a: "unclosed', '\tbeta: 1', 'beta: 0.1\nbeta: 0.2', 'x: &a [*a]', 'a: &a [1]\nb: &b [*a,*a,*a,*a]\nc: [*b,*b,*b,*b]', '!!binary xyz', '{"beta": 0.1}']);
    else {
      const doc: Record<string, unknown> = {};
      const m = 1 + g.int(4);
      for (let j = 0; j < m; j++) doc[g.chance(0.1) ? 'no_such_option' : g.pick(keys)] = g.chance(0.5) ? randomValue(g) : g.pick(WEIRD);
      text = toYaml(doc);
      if (kind === 1) text = text.slice(0, g.int(text.length + 1));
    }
    const path = join(root, `config-${i}.yaml`);
    out.push({
      what: `--config yaml: ${text.slice(0, 300)}`,
      run: () => {
        writeFileSync(path, text);
        try {
          // What `dpo train` does with the options before loading anything.
          const o = resolveOptions(['--config', path], TRAIN_SPECS, 'train');
          const cfg: Record<string, unknown> = {};
          for (const s of TRAINING_OPTIONS) if (['training', 'dpo', 'data'].includes(s.group) && o[s.snake] !== undefined) cfg[s.snake] = o[s.snake];
          new DPOConfig(cfg, 'dpo train');
          if (o.use_peft) new LoraConfig({ r: o.lora_r, lora_alpha: o.lora_alpha, lora_dropout: o.lora_dropout, target_modules: (o.lora_target_modules as string[] | null) ?? null, use_rslora: o.use_rslora });
        } finally {
          rmSync(path, { force: true });
        }
      },
    });
  }
  return out;
}

async function main(): Promise<void> {
  const seed = Number(process.env.DPO_FUZZ_SEED ?? 1);
  const scale = Number(process.env.DPO_FUZZ_SCALE ?? 1);
  const root = mkdtempSync(join(tmpdir(), 'dpo-fuzz-'));
  try {
    const scratch = new Map(['llama', 'llama-tied', 'llama-bf16', 'llama-sharded', 'mistral', 'qwen2', 'qwen3', 'gpt2'].map((f) => [f, new Scratch(root, f)]));
    let tok: HfTokenizer | null = null;
    const g = new Gen(new Rng(seed));
    const cases = [
      ...configCases(g, scratch, Math.round(120 * scale)),
      ...safetensorsCases(g, scratch, Math.round(100 * scale)),
      ...tokenizerCases(g, scratch, Math.round(60 * scale)),
      ...dataCases(g, root, () => (tok ??= HfTokenizer.fromDir(join(FIXTURES, 'llama'))), Math.round(60 * scale)),
      ...yamlCases(g, root, Math.round(60 * scale)),
    ];
    for (const [id, c] of cases.entries()) {
      process.stdout.write(`${JSON.stringify({ start: id, what: c.what })}\n`);
      let line: Record<string, unknown>;
      try {
        await c.run();
        line = { id, outcome: 'ok' };
      } catch (e) {
        line = e instanceof DpoError ? { id, outcome: 'dpo', error: e.message.split('\n')[0].slice(0, 300) } : { id, outcome: 'other', error: `${(e as Error)?.name}: ${(e as Error)?.message ?? String(e)}`.slice(0, 500), stack: (e as Error)?.stack?.split('\n').slice(1, 4).join(' | ') };
      }
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.env.DPO_FUZZ_WORKER === '1') await main();
