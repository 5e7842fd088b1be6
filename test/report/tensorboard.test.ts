/**
 * report_to tensorboard (test/fixtures/tensorboard, from tools/fixtures/make_tensorboard.py): our
 * events are byte-identical to what torch's SummaryWriter summaries framed by TensorBoard's own
 * RecordWriter give; TensorBoard's EventAccumulator reads a dpo train run's file with every logged
 * value under transformers' tag names; a fresh run writes the same tags and steps; none / all /
 * unsupported trackers as transformers, with one-line errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c, scalarEvent, textEvent, tfRecord, versionEvent } from '../../src/report/tfevents.js';
import { resolveReportTo, rewriteLogs, defaultLogdir } from '../../src/report/trackers.js';
import { DPOConfig } from '../../src/dpo/config.js';

interface GoldenEvent { kind: 'version' | 'text' | 'scalar'; tag?: string; text?: string; value?: number; step: number; wall_time: number }
interface Readout { command: string[]; event_file: string; file_version: number; scalars: Record<string, { step: number; value: number }[]>; texts: Record<string, { step: number; text: string }[]>; metrics: Record<string, number>[] }
const FIX = 'test/fixtures/tensorboard';
const fx = JSON.parse(readFileSync(join(FIX, 'tensorboard.json'), 'utf8')) as { versions: Record<string, string>; golden_events: GoldenEvent[]; run: Readout };

test('CRC-32C check value (RFC 3720: "123456789" → 0xe3069283)', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
});

test('event files byte-identical to TensorBoard\'s RecordWriter + torch\'s scalar / text summaries', () => {
  const ours = Buffer.concat(fx.golden_events.map((e) => tfRecord(
    e.kind === 'version' ? versionEvent(e.wall_time) : e.kind === 'text' ? textEvent(e.tag!, e.text!, e.step, e.wall_time) : scalarEvent(e.tag!, e.value!, e.step, e.wall_time))));
  const golden = readFileSync(join(FIX, 'golden.tfevents'));
  assert.equal(ours.length, golden.length);
  assert.ok(ours.equals(golden), 'bytes differ');
});

/** Tags and values TensorBoard should show for a run's metrics.jsonl (transformers' rewrite_logs; float32 values). */
function expectedScalars(metrics: Record<string, number>[]): Record<string, { step: number; value: number }[]> {
  const out: Record<string, { step: number; value: number }[]> = {};
  for (const { step, ...e } of metrics) {
    for (const [k, v] of Object.entries(rewriteLogs(e))) if (typeof v === 'number') (out[k] ??= []).push({ step, value: Math.fround(v) });
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

test('TensorBoard\'s EventAccumulator reads a dpo train run: every logged value at its step, the args text', () => {
  const r = fx.run;
  assert.equal(r.file_version, 2);
  assert.match(r.event_file, /^runs\/[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}_[^/]+\/events\.out\.tfevents\.\d{10}\.[^.]+\.\d+\.\d+$/);
  assert.deepEqual(r.scalars, expectedScalars(r.metrics));
  assert.ok(r.scalars['train/loss'].length === 3 && r.scalars['eval/loss'].length === 2 && 'train/train_runtime' in r.scalars); // eval at step 2 and the final evaluation
  assert.deepEqual(Object.keys(r.texts), ['args/text_summary']);
  assert.equal(JSON.parse(r.texts['args/text_summary'][0].text).learning_rate, 1e-3);
});

/** A reader written from event.proto's field numbers (independent of the writer): records checked by their CRCs. */
function readEvents(buf: Buffer): { step: number; tag?: string; value?: number; text?: string; version?: string }[] {
  const masked = (b: Uint8Array) => { const c = crc32c(b); return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0; };
  const fields = (b: Buffer) => {
    const out: [number, number | bigint | Buffer][] = [];
    let i = 0;
    const vint = () => { let x = 0n, s = 0n; for (;;) { const c = b[i++]; x |= BigInt(c & 0x7f) << s; s += 7n; if (!(c & 0x80)) return x; } };
    while (i < b.length) {
      const k = Number(vint());
      const [f, w] = [k >> 3, k & 7];
      if (w === 0) out.push([f, vint()]);
      else if (w === 1) { out.push([f, b.readDoubleLE(i)]); i += 8; }
      else if (w === 5) { out.push([f, b.readFloatLE(i)]); i += 4; }
      else { const n = Number(vint()); out.push([f, b.subarray(i, i + n)]); i += n; }
    }
    return out;
  };
  const get = (fs: [number, unknown][], n: number) => fs.find(([f]) => f === n)?.[1];
  const events = [];
  for (let off = 0; off < buf.length;) {
    const n = Number(buf.readBigUInt64LE(off));
    assert.equal(buf.readUInt32LE(off + 8), masked(buf.subarray(off, off + 8)));
    const data = buf.subarray(off + 12, off + 12 + n);
    assert.equal(buf.readUInt32LE(off + 12 + n), masked(data));
    off += 16 + n;
    const ev = fields(data);
    const step = Number(get(ev, 2) ?? 0n);
    const version = get(ev, 3) as Buffer | undefined;
    const summary = get(ev, 5) as Buffer | undefined;
    if (version) events.push({ step, version: version.toString() });
    if (summary) {
      const v = fields(get(fields(summary), 1) as Buffer);
      const tensor = get(v, 8) as Buffer | undefined;
      events.push({ step, tag: (get(v, 1) as Buffer).toString(), value: get(v, 2) as number | undefined, text: tensor ? (get(fields(tensor), 8) as Buffer).toString() : undefined });
    }
  }
  return events;
}

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const dpo = (env: Record<string, string>, ...a: string[]) => spawnSync(process.execPath, [CLI, ...a], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });

test('a fresh run writes the tags and steps TensorBoard read, with this run\'s values; TENSORBOARD_LOGGING_DIR and logging_dir move it', () => {
  const out = mkdtempSync(join(tmpdir(), 'dpo-tb-'));
  const cmd = fx.run.command.map((c, i, all) => (all[i - 1] === '--output_dir' ? out : c));
  const r = dpo({}, ...cmd);
  assert.equal(r.status, 0, r.stderr);
  const runs = readdirSync(join(out, 'runs'));
  assert.equal(runs.length, 1);
  assert.match(runs[0], /^[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}_/);
  assert.equal(join('runs', runs[0]).length, defaultLogdir().length);
  const files = readdirSync(join(out, 'runs', runs[0]));
  const events = readEvents(readFileSync(join(out, 'runs', runs[0], files[0])));
  assert.equal(events[0].version, 'brain.Event:2');
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const got: Record<string, { step: number; value: number }[]> = {};
  for (const e of events) if (e.value !== undefined) (got[e.tag!] ??= []).push({ step: e.step, value: e.value });
  const sorted = Object.fromEntries(Object.entries(got).sort(([a], [b]) => (a < b ? -1 : 1)));
  assert.deepEqual(sorted, expectedScalars(metrics));
  const shape = (s: Record<string, { step: number }[]>) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.map((x) => x.step)]));
  assert.deepEqual(shape(sorted), shape(fx.run.scalars));
  for (const k of ['train/loss', 'eval/loss', 'train/rewards/margins']) {
    got[k].forEach((x, i) => assert.ok(Math.abs(x.value - fx.run.scalars[k][i].value) < 1e-4, `${k}: ${x.value} vs TensorBoard's ${fx.run.scalars[k][i].value}`));
  }
  const env = mkdtempSync(join(tmpdir(), 'dpo-tb-env-'));
  const base = ['train', '--model_name_or_path', 'test/fixtures/models/llama', '--dataset_name', 'examples/dpo_example.json', '--max_steps', '1', '--logging_steps', '1', '--no_bf16', '--no_gradient_checkpointing', '--quiet'];
  assert.equal(dpo({ TENSORBOARD_LOGGING_DIR: env }, ...base, '--output_dir', mkdtempSync(join(tmpdir(), 'dpo-tb-')), '--report_to', 'all').status, 0);
  assert.equal(readdirSync(env).filter((f) => f.startsWith('events.out.tfevents.')).length, 1);
  const ld = join(mkdtempSync(join(tmpdir(), 'dpo-tb-')), 'tb');
  assert.equal(dpo({}, ...base, '--output_dir', mkdtempSync(join(tmpdir(), 'dpo-tb-')), '--report_to', 'tensorboard', '--logging_dir', ld).status, 0);
  assert.equal(readdirSync(ld).length, 1);
  const none = mkdtempSync(join(tmpdir(), 'dpo-tb-'));
  assert.equal(dpo({}, ...base, '--output_dir', none, '--report_to', 'none').status, 0);
  assert.ok(!readdirSync(none).includes('runs'));
});

test('report_to: none, all, tensorboard as transformers; anything else stops with what is supported', () => {
  assert.deepEqual(resolveReportTo(['none'], 'x'), []);
  assert.deepEqual(resolveReportTo([], 'x'), []);
  assert.deepEqual(resolveReportTo(['all'], 'x'), ['tensorboard']);
  assert.deepEqual(resolveReportTo('tensorboard', 'x'), ['tensorboard']);
  assert.throws(() => new DPOConfig({ reportTo: ['wandb'] }), /^DpoError: DPOConfig: report_to wandb is not supported \(it needs its service or package, which dpo train does not use\); supported: tensorboard, none, all \(= tensorboard\)$/);
  assert.throws(() => resolveReportTo(['tensorboard', 'none'], 'x'), /report_to none cannot be combined with tensorboard/);
  assert.throws(() => resolveReportTo(['tensorbord'], 'x'), /report_to tensorbord is not supported; supported: tensorboard/);
  const r = dpo({}, 'train', '--model_name_or_path', 'test/fixtures/models/llama', '--dataset_name', 'examples/dpo_example.json', '--report_to', 'trackio');
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), 'dpo: dpo train: report_to trackio is not supported (it needs its service or package, which dpo train does not use); supported: tensorboard, none, all (= tensorboard)');
});
