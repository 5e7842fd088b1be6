/**
 * bitsandbytes' weight formats against tools/fixtures/make_quant.py (an independent numpy
 * implementation of bitsandbytes' algorithms, with torch for create_dynamic_map): code tables,
 * NF4/FP4 codes and absmax, nested quantization of absmax, LLM.int8 rows, dequantized values;
 * then the storage round trip for every kind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DYNAMIC8, FP4, NF4 } from '../../src/quant/codes.js';
import { dequantizeRows, quantizeWeight, storageBytes, toFloat32, STORAGE_KINDS, bytesPerWeight } from '../../src/quant/storage.js';

interface Q4 { packed: number[]; absmax: number[]; dequant?: number[]; qabsmax?: number[]; absmax2?: number[]; offset?: number }
interface Case { rows: number; cols: number; w: number[]; int8?: { cb: number[]; scb: number[]; dequant: number[] }; nf4?: Q4; fp4?: Q4; nf4_nested: Q4; fp4_nested?: Q4 }
const fx = JSON.parse(readFileSync(new URL('../../../test/fixtures/quant/formats.json', import.meta.url), 'utf8')) as { dynamic_map: number[]; nf4: number[]; fp4: number[]; cases: Case[] };
const f32 = (xs: number[]) => Float32Array.from(xs);

function sameF32(name: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  assert.equal(got.length, want.length, `${name}: length`);
  let bad = 0, first = -1;
  for (let i = 0; i < want.length; i++) if (!Object.is(Math.fround(got[i]) + 0, Math.fround(want[i]) + 0)) { bad++; if (first < 0) first = i; }
  assert.equal(bad, 0, `${name}: ${bad} of ${want.length} differ, first [${first}]: ${got[first]} vs ${want[first]}`);
}

test('code tables: NF4, FP4 and the 8-bit dynamic map equal bitsandbytes\' (dynamic map built by torch)', () => {
  sameF32('nf4', NF4, fx.nf4);
  sameF32('fp4', FP4, fx.fp4);
  sameF32('dynamic map', DYNAMIC8, fx.dynamic_map);
});

for (const [ci, c] of fx.cases.entries()) {
  const w = f32(c.w);
  for (const kind of ['nf4', 'fp4'] as const) {
    for (const nested of [false, true]) {
      const want = (c as unknown as Record<string, Q4 | undefined>)[nested ? `${kind}_nested` : kind];
      if (!want) continue;
      test(`case ${ci} (${c.rows}×${c.cols}) ${kind}${nested ? ' nested' : ''}: codes, absmax and dequantized values equal the reference`, () => {
        const s = quantizeWeight(w, c.rows, c.cols, kind, { nested });
        assert.deepEqual(Array.from(s.data), want.packed, 'packed codes');
        if (nested) {
          assert.equal(Math.fround(s.offset), Math.fround(want.offset!), 'offset');
          assert.deepEqual(Array.from(s.qabsmax!), want.qabsmax, 'nested absmax codes');
          sameF32('absmax2', s.absmax!, want.absmax2!);
        } else sameF32('absmax', s.absmax!, want.absmax);
        if (want.dequant) sameF32('dequantized', toFloat32(s), want.dequant);
      });
    }
  }
  if (c.int8) {
    test(`case ${ci} (${c.rows}×${c.cols}) int8 rows: CB, SCB and dequantized values equal the reference`, () => {
      const s = quantizeWeight(w, c.rows, c.cols, 'int8');
      assert.deepEqual(Array.from(s.data), c.int8!.cb, 'CB');
      sameF32('SCB', s.absmax!, c.int8!.scb);
      sameF32('dequantized', toFloat32(s), c.int8!.dequant);
    });
  }
}

test('storage round trip: every kind dequantizes row ranges as the whole; error bounded; bytes as estimated', () => {
  const rows = 37, cols = 128;
  const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37) * 0.1);
  const maxErr: Record<string, number> = { f32: 0, bf16: 0.1 / 128, f16: 0.1 / 1024, int8: 0.1 / 127, nf4: 0.1 * 0.17, fp4: 0.1 * 0.34 };
  for (const kind of STORAGE_KINDS) {
    const s = quantizeWeight(w, rows, cols, kind);
    const all = toFloat32(s);
    const part = new Float32Array(5 * cols);
    dequantizeRows(s, 11, 16, part);
    sameF32(`${kind} rows 11..16`, part, all.subarray(11 * cols, 16 * cols));
    let err = 0;
    for (let i = 0; i < w.length; i++) err = Math.max(err, Math.abs(all[i] - w[i]));
    assert.ok(err <= maxErr[kind], `${kind}: max error ${err}`);
    assert.ok(Math.abs(storageBytes(s) - bytesPerWeight(kind, cols) * rows * cols) < 8, `${kind}: bytes`);
  }
});

test('bad input: a weight whose size does not fit its shape is a one-line error', () => {
  assert.throws(() => quantizeWeight(new Float32Array(10), 3, 4, 'nf4'), /^DpoError: weight storage: 10 values for a 3×4 matrix$/);
});
