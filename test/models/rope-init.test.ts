/**
 * RoPE parameters, inv_freq, attention scaling and cos/sin against transformers 5.17's own
 * RotaryEmbedding modules (test/fixtures/rope/rope.json, from tools/fixtures/make_rope.py): every
 * rope type, legacy and transformers-5 config layouts, per-layer-type entries, partial rotary, and
 * the state dynamic NTK / longrope keep across forwards of different lengths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ropeInit, ropeParameters, RotaryState, type RopeConfigOptions, type RopeDims } from '../../src/models/rope-init.js';
import { DpoError } from '../../src/errors.js';

interface LayerRec { inv_freq: number[]; attention_scaling: number; positions?: number[]; cos?: number[][]; sin?: number[][] }
interface Case {
  name: string;
  config: Record<string, unknown>;
  head_dim: number;
  layer_types: string[] | null;
  rope_parameters: Record<string, unknown>;
  init: Record<string, LayerRec>;
  calls: { seq_len: number; layers: Record<string, LayerRec> }[];
}
const FIX = JSON.parse(readFileSync(join(process.cwd(), 'test/fixtures/rope/rope.json'), 'utf8')) as { cases: Case[] };

/** How each config class reads RoPE (what the model files' registrations declare). */
function options(c: Case): { opts: RopeConfigOptions; dims: RopeDims } {
  const raw = c.config;
  const maxPositionEmbeddings = raw.max_position_embeddings as number;
  const dims: RopeDims = { headDim: c.head_dim, maxPositionEmbeddings, defaultUsesPartialRotary: raw.model_type === 'phi3' };
  const base: RopeConfigOptions = { maxPositionEmbeddings, layerTypes: c.layer_types, where: c.name };
  if (raw.model_type === 'phi3') {
    return { dims, opts: { ...base, originalMaxPositionEmbeddings: (raw.original_max_position_embeddings as number | undefined) ?? 4096, defaultPartialRotaryFactor: 1, typeAliases: { su: 'longrope', yarn: 'longrope' } } };
  }
  if (raw.model_type === 'gemma3_text') {
    return { dims, opts: { ...base, legacyPerLayer: { full_attention: { thetaKey: 'rope_theta', defaultTheta: 1e6, scaling: true }, sliding_attention: { thetaKey: 'rope_local_base_freq', defaultTheta: 1e4 } } } };
  }
  return { dims, opts: base };
}

const withoutType = (o: unknown): unknown =>
  o && typeof o === 'object' && !Array.isArray(o) ? Object.fromEntries(Object.entries(o).filter(([k, v]) => k !== 'type' && v !== null).map(([k, v]) => [k, withoutType(v)])) : o;

/** Exact float32 bits, or (counted) within `ulps` float32 ulps. */
function sameF32(what: string, got: ArrayLike<number>, want: number[], ulps = 0): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const tol = ulps * Math.abs(want[i]) * 2 ** -23;
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `${what}[${i}]: ${got[i]} vs transformers ${want[i]}`);
  }
}

for (const c of FIX.cases) {
  test(`rope init: ${c.name}`, () => {
    const { opts, dims } = options(c);
    const plan = ropeParameters(c.config, opts);
    assert.deepEqual(withoutType(plan.params), withoutType(c.rope_parameters), 'standardized rope_parameters');
    const key = (lt: string) => (lt === 'None' ? null : lt);
    for (const [lt, rec] of Object.entries(c.init)) {
      const r = ropeInit(plan, key(lt), dims);
      sameF32(`${lt} inv_freq`, r.invFreq, rec.inv_freq);
      assert.ok(Math.abs(r.attentionScaling - rec.attention_scaling) <= 1e-15, `${lt} attention scaling ${r.attentionScaling} vs ${rec.attention_scaling}`);
    }
    const state = new RotaryState(plan, dims);
    for (const call of c.calls) {
      state.update(call.seq_len);
      for (const [lt, rec] of Object.entries(call.layers)) {
        const r = state.get(key(lt))!;
        sameF32(`after seq_len ${call.seq_len}: ${lt} inv_freq`, r.invFreq, rec.inv_freq);
        assert.ok(Math.abs(r.attentionScaling - rec.attention_scaling) <= 1e-15);
        const { cos, sin } = state.tables(key(lt), call.seq_len)!;
        const R = 2 * r.invFreq.length;
        rec.positions!.forEach((p, k) => {
          // float32 cos/sin: ours are correctly rounded, torch's vectorised ones within 1 ulp (2 once scaled)
          const ulps = r.attentionScaling === 1 ? 1 : 2;
          sameF32(`seq_len ${call.seq_len} ${lt} cos[${p}]`, cos.data.subarray(p * R, (p + 1) * R), rec.cos![k], ulps);
          sameF32(`seq_len ${call.seq_len} ${lt} sin[${p}]`, sin.data.subarray(p * R, (p + 1) * R), rec.sin![k], ulps);
        });
      }
    }
  });
}

test('rope config errors are one line naming the key and the fix', () => {
  const o: RopeConfigOptions = { maxPositionEmbeddings: 64, where: 'cfg.json' };
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ rope_scaling: { rope_type: 'proportional', factor: 2 } }, /^cfg\.json: rope_scaling rope type "proportional" is not supported; supported: default, linear, dynamic, yarn, longrope, llama3$/],
    [{ rope_scaling: { type: 'linear' } }, /^cfg\.json: rope_scaling of rope type "linear" needs "factor"; add it/],
    [{ rope_parameters: { rope_type: 'longrope', short_factor: [1], original_max_position_embeddings: 4 } }, /needs "long_factor"/],
    [{ rope_parameters: { rope_type: 'yarn', factor: '4' } }, /^cfg\.json: rope_parameters\.factor must be a number, got "4"$/],
    [{ rope_theta: -1 }, /rope_theta must be a positive number, got -1$/],
    [{ rope_scaling: [1, 2] }, /^cfg\.json: "rope_scaling" must be an object, got \[1,2\]$/],
    [{ partial_rotary_factor: 1.5 }, /partial_rotary_factor must be in \(0, 1\], got 1\.5$/],
    [{ rope_scaling: { rope_type: 'longrope', short_factor: [1, 'x'], long_factor: [1], original_max_position_embeddings: 4 } }, /short_factor must be a list of numbers/],
    [{ rope_scaling: { rope_type: 'yarn', factor: 2, truncate: 'no' } }, /truncate must be true or false/],
  ];
  for (const [raw, re] of bad) assert.throws(() => ropeParameters(raw, o), (e: Error) => e instanceof DpoError && re.test(e.message) && !e.message.includes('\n'), JSON.stringify(raw));
  // per layer type: a layer type without an entry
  assert.throws(() => ropeParameters({ rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 1e4 } } }, { ...o, layerTypes: ['full_attention', 'sliding_attention'] }),
    (e: Error) => /^cfg\.json: rope_parameters has no entry for layer type "sliding_attention" \(it has full_attention\)/.test(e.message));
  // longrope factors shorter than the rotary dims
  const plan = ropeParameters({ rope_scaling: { rope_type: 'longrope', short_factor: [1, 1], long_factor: [1, 1], original_max_position_embeddings: 8 } }, o);
  assert.throws(() => ropeInit(plan, null, { headDim: 16, maxPositionEmbeddings: 64 }), (e: Error) => e.message === 'rope: longrope short_factor has 2 entries; expected rotary dim / 2 = 8');
  // a NoPE layer type (null entry)
  const nope = ropeParameters({ rope_parameters: { full_attention: null, sliding_attention: { rope_type: 'default', rope_theta: 1e4 } } }, { ...o, layerTypes: ['sliding_attention', 'full_attention'] });
  assert.equal(new RotaryState(nope, { headDim: 8, maxPositionEmbeddings: 64 }).get('full_attention'), null);
  assert.throws(() => ropeInit(nope, 'full_attention', { headDim: 8, maxPositionEmbeddings: 64 }), (e: Error) => e.message === 'rope: layer type "full_attention" has no RoPE (rope_parameters.full_attention is null)');
});

test('RotaryState.tables: kept while the frequencies stay, grown by doubling, rebuilt when dynamic NTK changes them', () => {
  const plan = ropeParameters({ rope_scaling: { rope_type: 'dynamic', factor: 2 } }, { maxPositionEmbeddings: 32 });
  const s = new RotaryState(plan, { headDim: 8, maxPositionEmbeddings: 32 });
  s.update(10);
  const a = s.tables(null, 10)!;
  assert.equal(a.cos.shape[0], 256);
  s.update(30);
  assert.equal(s.tables(null, 30), a, 'same frequencies, long enough: the same tables');
  assert.equal(s.tables(null, 300)!.cos.shape[0], 512, 'outgrown: doubled');
  const grown = s.tables(null, 300)!;
  s.update(40); // past max_position_embeddings: new frequencies
  const b = s.tables(null, 40)!;
  assert.notEqual(b, grown);
  assert.notEqual(b.cos.data[1 * 8 + 1], grown.cos.data[1 * 8 + 1]);
  s.update(20); // back under max_position_embeddings: the original frequencies again
  assert.equal(s.tables(null, 20)!.cos.data[1 * 8 + 1], a.cos.data[1 * 8 + 1]);
});
