/** Rotary tables against transformers' formulas and values; the rope op's forward and gradient. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as op from '../../src/ops/index.js';
import { gradcheck, randn } from '../helpers/gradcheck.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ropeParameters, RotaryState } from '../../src/models/rope-init.js';

const LLAMA31 = { type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } as const;
const f32ulp = (x: number) => Math.abs(x) * 2 ** -23;

test('invFreq: default rope is 1 / theta^(2i/D), rounded to float32', () => {
  const inv = op.invFreq(16, 1e6);
  for (let i = 0; i < 8; i++) {
    const hand = 1 / 1e6 ** ((2 * i) / 16);
    assert.ok(Math.abs(inv[i] - hand) <= 2 * f32ulp(hand), `inv[${i}] ${inv[i]} vs ${hand}`);
    assert.equal(inv[i], Math.fround(inv[i]));
  }
  // Bits of transformers' LlamaRotaryEmbedding(head_dim 16, rope_theta 1e6).inv_freq (torch float32).
  assert.deepEqual(Array.from(inv), [1.0, 0.17782793939113617, 0.03162277862429619, 0.005623413249850273, 0.0010000000474974513, 0.00017782794020604342, 3.162277425872162e-5, 5.62341347176698e-6]);
});

test('invFreq: llama3 scaling follows _compute_llama3_parameters', () => {
  // head_dim 8, theta 1e4, original context 8: wavelengths 2π, 20π, 200π, 2000π against
  // high_freq_wavelen 8/4 = 2 and low_freq_wavelen 8/1 = 8.
  const s = { ...LLAMA31, original_max_position_embeddings: 8 };
  const inv = op.invFreq(8, 1e4, s);
  // i = 0 is medium (2 ≤ 2π ≤ 8): smooth = (8/2π − 1)/(4 − 1); (1 − smooth)·1/8 + smooth·1
  const smooth = (8 / (2 * Math.PI) - 1) / 3;
  const hand0 = (1 - smooth) / 8 + smooth;
  assert.ok(Math.abs(inv[0] - hand0) <= 2 * f32ulp(hand0), `${inv[0]} vs ${hand0}`);
  // i ≥ 1 are low-frequency (wavelen > 8): inv_freq / factor
  for (let i = 1; i < 4; i++) assert.ok(Math.abs(inv[i] - 1e4 ** (-i / 4) / 8) <= 2 * f32ulp(inv[i]));
  // transformers' float32 bits (torch computes every step in float32; we mirror it exactly).
  assert.deepEqual(Array.from(inv), [0.20469485223293304, 0.012500000186264515, 0.0012499999720603228, 0.0001250000059371814]);

  // Llama 3.1 settings (head_dim 64, theta 5e5): high-, medium- and low-frequency entries.
  const inv64 = op.invFreq(64, 5e5, LLAMA31);
  const want: Record<number, number> = { 0: 1, 1: 0.663601279258728, 10: 0.016560440883040428, 15: 0.0013718936825171113, 16: 0.0005248460220173001, 17: 0.0001785077911335975, 18: 7.784655463183299e-5, 20: 3.428102354519069e-5, 31: 3.76732259610435e-7 };
  for (const [i, v] of Object.entries(want)) assert.equal(inv64[Number(i)], v, `inv_freq[${i}]`);
});

/** Default / llama3 tables of a whole head (what rope-init's RotaryState.tables makes for them). */
const ropeTables = (headDim: number, maxPos: number, theta: number, scaling: op.Llama3Scaling | null, dtype: 'float32' | 'float64' = 'float32') => op.ropeTablesFrom(op.invFreq(headDim, theta, scaling), maxPos, 1, dtype);

test('ropeTablesFrom: cos/sin of p·inv_freq, duplicated halves, within 1 ulp of transformers', () => {
  const { cos, sin } = ropeTables(64, 131072, 5e5, LLAMA31);
  assert.deepEqual(cos.shape, [131072, 64]);
  // transformers LlamaRotaryEmbedding(...)(x, position_ids) values (float32).
  const cos4097: Record<number, number> = { 0: 0.9347719550132751, 5: 0.8496958613395691, 16: -0.5476037263870239, 17: 0.7442758083343506, 40: -0.9910521507263184 };
  const sin131071: Record<number, number> = { 1: 0.6806175708770752, 16: -0.31736260652542114, 17: -0.9864591956138611, 31: 0.049358610063791275, 48: -0.31736260652542114 };
  for (const [d, v] of Object.entries(cos4097)) assert.ok(Math.abs(cos.data[4097 * 64 + Number(d)] - v) <= 6e-8, `cos[4097, ${d}]`);
  for (const [d, v] of Object.entries(sin131071)) assert.ok(Math.abs(sin.data[131071 * 64 + Number(d)] - v) <= 6e-8, `sin[131071, ${d}]`);
  const small = ropeTables(8, 8, 1e4, { ...LLAMA31, original_max_position_embeddings: 8 });
  const c7 = [0.13749542832374573, 0.9961743354797363, 0.9999617338180542, 0.9999996423721313];
  const s7 = [0.9905024170875549, 0.08738838881254196, 0.008749888278543949, 0.0008749999105930328];
  for (let i = 0; i < 8; i++) {
    assert.ok(Math.abs(small.cos.data[7 * 8 + i] - c7[i % 4]) <= 6e-8);
    assert.ok(Math.abs(small.sin.data[7 * 8 + i] - s7[i % 4]) <= 6e-8);
  }
  // position 0: cos 1, sin 0
  for (let i = 0; i < 8; i++) assert.ok(small.cos.data[i] === 1 && small.sin.data[i] === 0);
});

test('rope rotates pairs (i, i + D/2) by the table angle', () => {
  const { cos, sin } = ropeTables(4, 4, 100, null, 'float64');
  const x = Tensor.from([1, 2, 3, 4], [1, 1, 1, 4], 'float64');
  const y = op.rope(x, cos, sin, Int32Array.from([3]));
  const a0 = 3 * Math.fround(1), a1 = Math.fround(3 * Math.fround(1 / Math.fround(100 ** 0.5)));
  const hand = [1 * Math.cos(a0) - 3 * Math.sin(a0), 2 * Math.cos(a1) - 4 * Math.sin(a1), 3 * Math.cos(a0) + 1 * Math.sin(a0), 4 * Math.cos(a1) + 2 * Math.sin(a1)];
  y.data.forEach((v, i) => assert.ok(Math.abs(v - hand[i]) < 1e-12, `${v} vs ${hand[i]}`));
});

test('rope gradients (default and llama3 tables, float32 tables with float64 x)', () => {
  const rng = new Rng(11);
  const pos = Int32Array.from([0, 5, 9, 15, 1, 2]);
  const l3 = ropeTables(8, 16, 10000, { ...LLAMA31, original_max_position_embeddings: 8 }, 'float64');
  gradcheck('rope llama3', (x) => op.rope(x, l3.cos, l3.sin, pos), [randn([2, 3, 2, 8], rng)]);
  const d = ropeTables(6, 16, 500, null);
  gradcheck('rope default', (x) => op.rope(x, d.cos, d.sin, pos), [randn([3, 2, 1, 6], rng)]);
});

test('rope with partial rotary and attention scaling equals transformers Phi-3 apply_rotary_pos_emb', () => {
  const fix = JSON.parse(readFileSync(join(process.cwd(), 'test/fixtures/rope/rope.json'), 'utf8'));
  const a = fix.apply_rotary as { case: string; seq_len: number; q: number[]; q_embed: number[]; shape_bthd: number[] };
  const c = fix.cases.find((x: { name: string }) => x.name === a.case);
  const opts = { maxPositionEmbeddings: c.config.max_position_embeddings, originalMaxPositionEmbeddings: c.config.original_max_position_embeddings, defaultPartialRotaryFactor: 1 };
  const state = new RotaryState(ropeParameters(c.config, opts), { headDim: c.head_dim, maxPositionEmbeddings: c.config.max_position_embeddings, defaultUsesPartialRotary: true });
  state.update(a.seq_len);
  const r = state.get()!;
  assert.ok(r.rotaryDim < c.head_dim && r.attentionScaling > 1, 'the case rotates part of the head, with scaling');
  const { cos, sin } = op.ropeTablesFrom(r.invFreq, a.seq_len, r.attentionScaling);
  const [B, T] = a.shape_bthd;
  const y = op.rope(Tensor.from(a.q, a.shape_bthd, 'float32'), cos, sin, Int32Array.from({ length: B * T }, (_, i) => i % T));
  let maxd = 0;
  y.data.forEach((v, i) => (maxd = Math.max(maxd, Math.abs(v - a.q_embed[i]))));
  assert.ok(maxd <= 1e-6, `max |ours − transformers| ${maxd}`);
  // the pass-through dims are x itself
  const D = a.shape_bthd[3];
  for (let i = 0; i < y.size; i++) if (i % D >= r.rotaryDim) assert.equal(y.data[i], Math.fround(a.q[i]));
});

test('rope gradients with partial rotary and scaled tables', () => {
  const rng = new Rng(12);
  const pos = Int32Array.from([0, 3, 7, 2, 1, 6]);
  const inv = Float64Array.from([1, 0.3, 0.05]);
  const t = op.ropeTablesFrom(inv, 8, 1.25, 'float64'); // R = 6 of D = 10
  gradcheck('rope partial scaled', (x) => op.rope(x, t.cos, t.sin, pos), [randn([2, 3, 2, 10], rng)]);
  const u = op.ropeTablesFrom(inv, 8); // R = D = 6
  gradcheck('rope full from inv_freq', (x) => op.rope(x, u.cos, u.sin, pos), [randn([3, 2, 1, 6], rng)]);
});

test('rope errors: odd or too wide rotary tables', () => {
  const z = (...s: number[]) => Tensor.zeros(s);
  assert.throws(() => op.rope(z(1, 2, 1, 4), z(8, 3), z(8, 3), Int32Array.from([0, 1])), (e: Error) => /^rope: tables cos \[8, 3\], sin \[8, 3\] do not match head dim 4 of x \[1, 2, 1, 4\] \(need equal \(maxPos, R\) tables, R even and at most 4\)$/.test(e.message));
  assert.throws(() => op.rope(z(1, 2, 1, 4), z(8, 2), z(8, 4), Int32Array.from([0, 1])), (e: Error) => /^rope: tables cos \[8, 2\], sin \[8, 4\] do not match/.test(e.message));
});
