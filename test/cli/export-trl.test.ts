/**
 * dpo export-trl (test/fixtures/trl-export, from tools/fixtures/make_trl_export.py): the exported
 * dpo.yaml and data are what the fixture script handed to TRL 1.13; TRL's run of that job and our
 * `dpo train` of the same config agree on every logged metric within 1e-4 relative at step 1 and
 * 1e-3 at step 4 (train and eval entries); the multi-GPU recipe keeps the global batch; bad input is
 * a one-line error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

const FIX = 'test/fixtures/trl-export';
const fx = JSON.parse(readFileSync(join(FIX, 'trl_run.json'), 'utf8')) as {
  versions: Record<string, string>; exported_config: Record<string, unknown>; data: Record<string, Record<string, unknown>[]>; log_history: Record<string, number>[];
};
const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const tmp = () => mkdtempSync(join(tmpdir(), 'dpo-export-trl-'));
const dpo = (env: Record<string, string>, ...a: string[]) => spawnSync(process.execPath, [CLI, ...a], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, ...env } });
const readJsonl = (p: string) => readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

test('the recipe is what TRL 1.13 ran: dpo.yaml, data/ (as datasets.load_dataset reads it), launch.sh, accelerate config', () => {
  assert.equal(fx.versions.trl, '1.13.0');
  const job = tmp();
  const r = dpo({}, 'export-trl', '--config', join(FIX, 'run.yaml'), '--output_dir', job, '--num_processes', '1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /warning: num_threads 2 is not written/);
  const cfg = parseYaml(readFileSync(join(job, 'dpo.yaml'), 'utf8')) as Record<string, unknown>;
  cfg.model_name_or_path = relative(process.cwd(), cfg.model_name_or_path as string);
  assert.deepEqual(cfg, fx.exported_config);
  assert.equal(cfg.warmup_steps, 0.25); // transformers 5's warmup ratio
  assert.deepEqual(readJsonl(join(job, 'data', 'train.jsonl')), fx.data.train);
  assert.deepEqual(readJsonl(join(job, 'data', 'test.jsonl')), fx.data.test);
  const launch = readFileSync(join(job, 'launch.sh'), 'utf8');
  assert.match(launch, /^trl dpo --config dpo\.yaml --accelerate_config accelerate_config\.yaml "\$@"$/m);
  assert.ok(statSync(join(job, 'launch.sh')).mode & 0o100);
  assert.match(readFileSync(join(job, 'README.md'), 'utf8'), /python -m trl\.scripts\.dpo --config dpo\.yaml/);
});

test('dpo train of the config gives TRL\'s run of the exported job (1e-4 at step 1, 1e-3 at step 4, eval too)', () => {
  const out = tmp();
  const r = dpo({}, 'train', '--config', join(FIX, 'run.yaml'), '--output_dir', out, '--quiet');
  assert.equal(r.status, 0, r.stderr);
  const ours = readJsonl(join(out, 'metrics.jsonl')) as Record<string, number>[];
  const pick = (h: Record<string, number>[], key: string) => h.filter((e) => key in e);
  const worst: string[] = [];
  for (const key of ['loss', 'eval_loss']) {
    const ref = pick(fx.log_history, key);
    const got = pick(ours, key);
    assert.equal(got.length, ref.length, key);
    assert.ok(ref.length >= 2);
    ref.forEach((e, i) => {
      assert.equal(got[i].step, e.step);
      const tol = e.step === 1 ? 1e-4 : 1e-3;
      for (const [k, v] of Object.entries(e)) {
        if (k === 'step' || k === 'epoch' || /runtime|per_second/.test(k) || typeof v !== 'number') continue;
        assert.ok(k in got[i], `step ${e.step} lacks ${k}`);
        const err = Math.abs(got[i][k] - v) / Math.max(Math.abs(v), 1e-3);
        if (err > tol) worst.push(`step ${e.step} ${k}: ours ${got[i][k]} vs TRL ${v} (rel ${err.toExponential(2)})`);
      }
    });
  }
  assert.deepEqual(worst, []);
});

test('multi-GPU: ZeRO-3 / FSDP2 accelerate configs, the global batch kept over the processes', () => {
  const job = tmp();
  const r = dpo({}, 'export-trl', '--config', join(FIX, 'run.yaml'), '--output_dir', job, '--distributed', 'zero3', '--gradient_accumulation_steps', '16', '--bf16', 'true');
  assert.equal(r.status, 0, r.stderr);
  const cfg = parseYaml(readFileSync(join(job, 'dpo.yaml'), 'utf8')) as Record<string, unknown>;
  assert.equal(cfg.gradient_accumulation_steps, 2); // 7 × 16 on one process = 7 × 2 × 8 processes
  assert.equal(cfg.bf16, undefined); // TRL's default (on)
  const acc = parseYaml(readFileSync(join(job, 'accelerate_config.yaml'), 'utf8')) as Record<string, unknown>;
  assert.equal(acc.distributed_type, 'DEEPSPEED');
  assert.equal((acc.deepspeed_config as Record<string, unknown>).zero_stage, 3);
  assert.equal(acc.num_processes, 8);
  assert.equal(acc.mixed_precision, 'bf16');
  assert.match(readFileSync(join(job, 'launch.sh'), 'utf8'), /pip install .*deepspeed/);
  const f = tmp();
  const r2 = dpo({}, 'export-trl', '--config', join(FIX, 'run.yaml'), '--output_dir', f, '--num_processes', '3');
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stdout, /warning: the global batch of 7 pairs cannot be split over 3 processes; TRL will step on 21/);
  const acc2 = parseYaml(readFileSync(join(f, 'accelerate_config.yaml'), 'utf8')) as Record<string, unknown>;
  assert.equal(acc2.distributed_type, 'FSDP');
  assert.equal((acc2.fsdp_config as Record<string, unknown>).fsdp_version, 2);
  assert.equal(acc2.mixed_precision, 'no');
});

test('a Hub-cache data set or a datasets: mixture is exported as its resolved rows', () => {
  const env = { HF_HOME: resolve('test/fixtures/hub-cache'), HOME: tmp() };
  const job = tmp();
  const yml = join(job, 'mix.yaml');
  writeFileSync(yml, 'model_name_or_path: test/fixtures/models/llama\ndatasets:\n  - path: trl-lib/tiny-prefs\n    split: train[:3]\n  - path: org/with-configs\n    name: fr\n    columns: [prompt, chosen, rejected]\n');
  const r = dpo(env, 'export-trl', '--config', yml, '--output_dir', join(job, 'out'));
  assert.equal(r.status, 0, r.stderr);
  const rows = readJsonl(join(job, 'out', 'data', 'train.jsonl'));
  assert.equal(rows.length, 5);
  assert.equal(rows[3].prompt, 'fr train question 0');
  const cfg = parseYaml(readFileSync(join(job, 'out', 'dpo.yaml'), 'utf8')) as Record<string, unknown>;
  assert.equal(cfg.dataset_name, 'data');
  assert.ok(!('datasets' in cfg));
});

test('bad input: one-line errors', () => {
  const cases: [string[], RegExp][] = [
    [['export-trl', '--config', join(FIX, 'run.yaml')], /^dpo: dpo export-trl: --output_dir is required/],
    [['export-trl', '--config', join(FIX, 'run.yaml'), '--output_dir', tmp(), '--distributed', 'ddp'], /distributed/],
    [['export-trl', '--config', join(FIX, 'run.yaml'), '--output_dir', tmp(), '--num_processes', '0'], /--num_processes must be ≥ 1, got 0/],
    [['export-trl', '--config', join(FIX, 'run.yaml'), '--output_dir', tmp(), '--adapter_name_or_path', 'x'], /adapter_name_or_path \(continuing an adapter\) has no trl dpo argument/],
    [['export-trl', '--config', join(FIX, 'run.yaml'), '--output_dir', tmp(), '--fp16', 'true'], /dpo export-trl: fp16 true is not supported/],
    [['export-trl', '--output_dir', tmp()], /model_name_or_path is required/],
  ];
  for (const [argv, re] of cases) {
    const r = dpo({}, ...argv);
    assert.equal(r.status, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
